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
process evaluates and writes the log; under DDP the other ranks wait for its row (a broadcast), so
every rank holds the same rows. With parameters sharded
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

    def _record(self, row: dict | None, state) -> None:
        """Keep `row` (the main process's; None on the others, which receive it) and rewrite the log.

        Under DDP only the main process evaluates and writes training_log.jsonl; the others wait
        here for its row, so every rank holds the same rows (the recipe card and stage 2's first
        row are built from them) and no rank trains on before the evaluation is done.
        """
        row = _from_main_process(row)
        self.rows.append(row)
        if state.is_world_process_zero:
            write_jsonl(self.log_path, self.rows)  # rewritten whole each epoch: never half a line

    # ---- Trainer hooks -------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not (self.enabled and self.before):
            return
        if self.first_row is not None:  # the same on every rank: nothing to evaluate or share
            self.rows.append(self.first_row | {"epoch": 0, "step": 0, "loss": None})
            if state.is_world_process_zero:
                write_jsonl(self.log_path, self.rows)
            return
        self._record(epoch_row(0, self.accuracies(model), 0, None) if state.is_world_process_zero else None, state)

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.trainer is not None:
            self.trainer.take_epoch_loss()

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        loss = self.trainer.take_epoch_loss() if self.trainer is not None else None  # every rank: collective
        if not self.enabled:
            return
        epoch = round(state.epoch, 4)
        epoch = int(epoch) if float(epoch).is_integer() else epoch
        row = epoch_row(epoch, self.accuracies(model), state.global_step, loss) if state.is_world_process_zero else None
        self._record(row, state)


def _from_main_process(row):
    """The main process's `row` on every rank (a broadcast under torch.distributed, else `row`)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return row
    box = [row]
    dist.broadcast_object_list(box, src=0)
    return box[0]
