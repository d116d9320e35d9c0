"""Per-epoch evaluation: held-out, new and known-train accuracy into `training_log.jsonl`.

One row per epoch (plus epoch 0, before training, unless switched off):

    {"epoch": 1, "heldout_accuracy": 0.91, "new_accuracy": 0.42, "known_train_accuracy": 0.97,
     "step": 120, "loss": 0.83, "heldout_questions": 500, ...}

`factbench score --training-log` reads `epoch` and `heldout_accuracy` from it for the
peak-relative forgetting of METHOD.md §3, and the rows trace retention against acquisition
epoch by epoch, the frontier METHOD.md §7 asks recipes to be compared on.

The questions are the factforget sets of the split (factbench.question_sets), asked exactly as
`factbench eval --sets` and the lm-eval tasks ask them: greedy, 4-shot, prompt 0, with
factbench's HF engine on the model being trained, in its current dtype and device. Only the main
process evaluates (under DDP the other ranks wait at their next step); with parameters sharded
by FSDP or ZeRO-3 the model cannot generate alone, so set `eval_each_epoch: false` there and
score the saved checkpoint instead.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import TrainerCallback

from .. import asking, question_sets
from ..engines import engine_for
from ..files import write_jsonl
from ..protocol import generation_params
from ..training_log import epoch_row

_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


class EpochEvaluation(TrainerCallback):
    def __init__(self, split, tokenizer, config, log_path: Path, first_row: dict | None = None):
        self.tokenizer = tokenizer
        self.log_path = Path(log_path)
        self.enabled = config.eval_each_epoch
        self.before = config.eval_before_training
        self.batch_size = config.eval_batch_size
        self.first_row = first_row
        self.sets = {name: question_sets.facts(name, split)[:config.eval_limit] for name in config.eval_sets}
        self.params = generation_params()
        self.rows: list[dict] = []
        self.trainer = None  # set by train_stage: the epoch's training loss lives there
        self._engine = None

    # ---- evaluation ----------------------------------------------------------------------------

    def accuracies(self, model) -> dict:
        """Exact-match accuracy and question count of every set, for `model` as it is now."""
        was_training = model.training
        param = next(model.parameters())
        if self._engine is None or self._engine.model is not model:
            # The engine's dtype and device are the model's own, so building it moves and casts nothing.
            self._engine = engine_for(model, self.tokenizer, batch_size=self.batch_size,
                                      dtype=_DTYPE_NAMES.get(param.dtype, "float32"), device=str(param.device))
        out = {}
        for name, facts in self.sets.items():
            if facts:
                out[f"{name}_accuracy"] = asking.answer(self._engine, facts, params=self.params).summary()["em"]
            else:
                out[f"{name}_accuracy"] = None
            out[f"{name}_questions"] = len(facts)
        model.train(was_training)
        return out

    def _write(self, row: dict) -> None:
        self.rows.append(row)
        write_jsonl(self.log_path, self.rows)  # rewritten whole each epoch: never half a line

    # ---- Trainer hooks -------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not (self.enabled and self.before and state.is_world_process_zero):
            return
        if self.first_row is not None:
            self._write(self.first_row | {"epoch": 0, "step": 0, "loss": None})
        else:
            acc = self.accuracies(model)
            self._write(epoch_row(0, acc, 0, None))

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.trainer is not None:
            self.trainer.take_epoch_loss()

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        loss = self.trainer.take_epoch_loss() if self.trainer is not None else None
        if not (self.enabled and state.is_world_process_zero):
            return
        epoch = round(state.epoch, 4)
        epoch = int(epoch) if float(epoch).is_integer() else epoch
        self._write(epoch_row(epoch, self.accuracies(model), state.global_step, loss))
