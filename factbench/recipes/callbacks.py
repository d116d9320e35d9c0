"""Evaluation along training: held-out, new and known-train accuracy, every question's outcome.

One row per evaluation point in `training_log.jsonl`: before training (epoch 0, unless switched
off), after every epoch and, with `eval_every_steps: N`, every N optimizer steps (fractional epochs):

    {"epoch": 1, "heldout_accuracy": 0.91, "new_accuracy": 0.42, "known_train_accuracy": 0.97,
     "step": 120, "loss": 0.83, "heldout_questions": 500, ..., "protocol": "4-shot",
     "zero_shot": {"heldout_accuracy": 0.88, "new_accuracy": 0.40, ...}}

The top-level accuracies are those of the first of `eval_protocols` (named by `protocol`); a
second protocol's are nested under its key (`zero_shot` for 0-shot, `four_shot` for 4-shot).
`factbench score --training-log` reads `epoch` and `heldout_accuracy` for the peak-relative
forgetting of METHOD.md §3. Every question's outcome at every point goes to `eval_outcomes.jsonl`
(one row per point and protocol: '0'/'1' strings aligned with the ids of `eval_questions.json`,
which also says which held-out facts could be guessed): `factbench frontier` reads them to draw
retention against acquisition and to compare recipes at matched acquisition with intervals paired
by question.

The questions are the factforget sets of the split (factbench.question_sets), asked greedy with
factbench's HF engine on the model being trained, in its current dtype and device, under each of
`eval_protocols`: `4-shot` is exactly how `factbench eval --sets` and the lm-eval tasks ask them
(prompt 0); `0-shot` is the training format `Q: {question}\nA:` without exemplars, as Gekhman et
al. ask a fine-tune. Each protocol has its own protocol hash (factbench.protocol), recorded with the
outcomes. Only the main process evaluates and writes; under DDP the other ranks wait for its row
(a broadcast), so every rank holds the same rows. With parameters sharded by FSDP or ZeRO-3 the
model cannot generate alone, so set `eval_each_epoch: false` there and score the saved checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import TrainerCallback

from .. import asking, question_sets
from ..engines import engine_for
from ..files import write_json, write_jsonl
from ..prompts import DEFAULT_SHOTS
from ..protocol import generation_params, protocol_hash, question_protocol
from ..training_log import epoch_row

_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


# name -> (shots, the key its accuracies are nested under when it is not the first protocol)
PROTOCOLS = {"4-shot": (DEFAULT_SHOTS, "four_shot"), "0-shot": (0, "zero_shot")}
OUTCOMES = "eval_outcomes.jsonl"
QUESTIONS = "eval_questions.json"


def protocol_of(name: str) -> dict:
    """The question protocol (factbench.protocol) of an evaluation protocol name."""
    return question_protocol(shots=PROTOCOLS[name][0])


@dataclass
class Point:
    """One evaluation point: its training-log row and every question's outcome under each protocol."""

    row: dict
    outcomes: dict[str, dict[str, str]]  # protocol -> set -> '0'/'1' string
    base: bool = False  # the untrained base model (a stage's start that is not another stage's end)


class EpochEvaluation(TrainerCallback):
    def __init__(self, split, tokenizer, config, log_path: Path, first_point: Point | None = None):
        self.tokenizer = tokenizer
        self.log_path = Path(log_path)
        self.outcomes_path = self.log_path.with_name(OUTCOMES)
        self.questions_path = self.log_path.with_name(QUESTIONS)
        self.enabled = config.eval_each_epoch
        self.before = config.eval_before_training
        self.every = config.eval_every_steps
        self.batch_size = config.eval_batch_size
        self.reuse_base = config.eval_reuse_base_answers
        self.first_point = first_point
        self.split = split
        self.protocols = list(config.eval_protocols)
        self.sets = {name: question_sets.facts(name, split) for name in config.eval_sets}
        from ..scorecard import guessable_ids

        # read once: which held-out facts the base could guess (None when the split cannot say), and why
        self._guessable, self._guessable_note = guessable_ids(split)
        if not config.eval_guessable:  # only the recalled facts of the sets of facts the base knew
            guessable = self._guessable or set()
            self.sets = {name: [f for f in facts if name not in ("heldout", "ood") or f.id not in guessable]
                         for name, facts in self.sets.items()}
        self.sets = {name: facts[:config.eval_limit] for name, facts in self.sets.items()}
        self.params = generation_params()
        self.rows: list[dict] = []
        self.points: list[Point] = []
        self.trainer = None  # set by train_stage: the epoch's training loss lives there
        self._engine = None

    # ---- evaluation ----------------------------------------------------------------------------

    def evaluate(self, model, base: bool = False) -> tuple[dict, dict]:
        """Accuracies (for the row) and outcomes of every set under every protocol, for `model` as it is now.

        `base`: `model` is the untrained base; its answers come from (or go to) the cache of
        base_answers.py unless `eval_reuse_base_answers` is off.
        """
        was_training = model.training
        started = time.perf_counter()
        param = next(model.parameters())
        if self._engine is None or self._engine.model is not model:
            # The engine's dtype and device are the model's own, so building it moves and casts nothing.
            self._engine = engine_for(model, self.tokenizer, batch_size=self.batch_size,
                                      dtype=_DTYPE_NAMES.get(param.dtype, "float32"), device=str(param.device))
        engine = self._engine
        if base and self.reuse_base:
            from .base_answers import ReusingEngine

            engine = ReusingEngine(self._engine)
        scores, outcomes = {}, {}
        for protocol in self.protocols:
            shots = PROTOCOLS[protocol][0]
            accuracy, bits = {}, {}
            for name, facts in self.sets.items():
                if facts:
                    records = asking.answer(engine, facts, params=self.params, shots=shots).records
                    bits[name] = "".join("1" if r["em"] else "0" for r in records)
                    accuracy[f"{name}_accuracy"] = bits[name].count("1") / len(facts)
                else:
                    accuracy[f"{name}_accuracy"] = None
            scores[protocol], outcomes[protocol] = accuracy, bits
        model.train(was_training)
        first, *others = self.protocols
        row = dict(scores[first]) | {f"{name}_questions": len(facts) for name, facts in self.sets.items()}
        row["protocol"] = first
        row["eval_seconds"] = round(time.perf_counter() - started, 2)  # what the evaluation adds to a run
        if engine is not self._engine:  # how this row's answers were made: read back, or generated now
            row["base_answers"] = ("reused" if not engine.generated else "generated" if not engine.reused
                                   else "partly reused")
        for protocol in others:
            row[PROTOCOLS[protocol][1]] = scores[protocol]
        return row, outcomes

    def last_point(self) -> Point | None:
        return self.points[-1] if self.points else None

    def _record(self, point: Point | None, state) -> None:
        """Keep `point` (the main process's; None on the others, which receive it) and rewrite the files.

        Under DDP only the main process evaluates and writes; the others wait here for its point,
        so every rank holds the same rows (the recipe card and stage 2's first row are built from
        them) and no rank trains on before the evaluation is done.
        """
        point = _from_main_process(point)
        self.points.append(point)
        self.rows.append(point.row)
        if state.is_world_process_zero:
            if len(self.points) == 1:
                write_json(self.questions_path, self._questions())
            # Rewritten whole at each point: never half a line.
            write_jsonl(self.log_path, self.rows)
            write_jsonl(self.outcomes_path, [
                {"epoch": p.row["epoch"], "step": p.row["step"], "protocol": protocol,
                 "protocol_hash": protocol_hash(protocol_of(protocol)), "sets": p.outcomes[protocol]}
                | ({"base": True} if p.base else {})
                for p in self.points for protocol in self.protocols if protocol in p.outcomes])

    def _questions(self) -> dict:
        guessable, note = self._guessable, self._guessable_note
        sets = {}
        for name, facts in self.sets.items():
            flags = None
            if name in ("heldout", "ood") and guessable is not None:
                flags = "".join("1" if f.id in guessable else "0" for f in facts)
            sets[name] = {"ids": [f.id for f in facts], "guessable": flags}
        return {"sets": sets, "guessable": note,
                "protocols": {p: {"hash": protocol_hash(protocol_of(p)), "protocol": protocol_of(p)}
                              for p in self.protocols},
                "split_manifest_sha256": _digest(self.split.manifest.get("files"))}

    def _point(self, epoch, model, state, loss, base: bool = False) -> Point | None:
        if not state.is_world_process_zero:
            return None
        accuracies, outcomes = self.evaluate(model, base=base)
        return Point(epoch_row(epoch, accuracies, state.global_step, loss), outcomes, base=base)

    # ---- Trainer hooks -------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not (self.enabled and self.before):
            return
        if self.first_point is not None:  # the same on every rank: nothing to evaluate or share
            first = Point(self.first_point.row | {"epoch": 0, "step": 0, "loss": None}, self.first_point.outcomes)
            self._record(first, state)
            return
        self._record(self._point(0, model, state, None, base=True), state)

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.trainer is not None:
            self.trainer.take_epoch_loss()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if not (self.enabled and self.every) or state.global_step % self.every:
            return
        epoch = round(state.epoch, 4)
        if float(epoch).is_integer():
            return  # an epoch end: on_epoch_end evaluates it, with the epoch's loss
        self._record(self._point(epoch, model, state, None), state)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        loss = self.trainer.take_epoch_loss() if self.trainer is not None else None  # every rank: collective
        if not self.enabled:
            return
        epoch = round(state.epoch, 4)
        epoch = int(epoch) if float(epoch).is_integer() else epoch
        self._record(self._point(epoch, model, state, loss), state)


def _digest(files) -> str | None:
    """One checksum of the split's file checksums: runs on the same split agree on it."""
    if not files:
        return None
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def _from_main_process(row):
    """The main process's `row` on every rank (a broadcast under torch.distributed, else `row`)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return row
    box = [row]
    dist.broadcast_object_list(box, src=0)
    return box[0]
