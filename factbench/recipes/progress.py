"""The training console: one progress bar per stage and one readable line per evaluation point.

`train_stage` (trainer.py) puts `TrainingProgress` in place of transformers' ProgressCallback and
PrinterCallback, so the console never shows the Trainer's raw `{'loss': ..., 'grad_norm': ...}`
dictionaries (they still go to `trainer.state.log_history`). Each stage gets one tqdm bar over its
optimizer steps, named after the stage (`sft`, `stage1-teacher`, `stage2-student`, ...), whose
postfix is the last logged loss; every row the per-epoch evaluation (callbacks.py) adds to
`training_log.jsonl` is written above it as one line:

      epoch 2/4 · step 150 · loss 0.831 · 4-shot: held-out 91.2% new 42.0% known-train 97.0% · 0-shot: held-out 88.0% new 40.0%

Only the main process prints. The bar is drawn only on a terminal (stderr a tty) and not with
`disable_tqdm: true`; otherwise (a log file, a CI job) a `<stage>: N steps` line and the
evaluation lines are printed, so a log gets one line per evaluation point and no bar refreshes.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm
from transformers import TrainerCallback

# Keys a second protocol's accuracies are nested under in a row (callbacks.PROTOCOLS), and their names.
NESTED_PROTOCOLS = {"four_shot": "4-shot", "zero_shot": "0-shot"}
DEFAULT_PROTOCOL = "4-shot"  # a row without `protocol` (written before there was a choice)
SET_NAMES = {"heldout": "held-out", "known_train": "known-train"}


def _number(x) -> str:
    """An epoch count as a person writes it: 2, 1.5, 0.3333."""
    x = round(float(x), 4)
    return str(int(x)) if x.is_integer() else f"{x:g}"


def _accuracies(scores: dict) -> str:
    parts = []
    for key, value in scores.items():
        if not key.endswith("_accuracy"):
            continue
        name = key.removesuffix("_accuracy")
        shown = "n/a" if value is None else f"{100 * value:.1f}%"
        parts.append(f"{SET_NAMES.get(name, name.replace('_', '-'))} {shown}")
    return " ".join(parts)


def epoch_line(row: dict, epochs=None) -> str:
    """One evaluation row (a training_log.jsonl row) as a console line; `epochs` is the stage's length."""
    epoch = row.get("epoch")
    parts = []
    if epoch is not None:
        parts.append(f"epoch {_number(epoch)}" + (f"/{_number(epochs)}" if epochs else ""))
    if epoch == 0:
        parts.append("before training")
    else:
        if row.get("step") is not None:
            parts.append(f"step {row['step']}")
        if row.get("loss") is not None:
            parts.append(f"loss {row['loss']:.3f}")
    scores = _accuracies(row)
    if scores:
        parts.append(f"{row.get('protocol') or DEFAULT_PROTOCOL}: {scores}")
    for key, label in NESTED_PROTOCOLS.items():
        if isinstance(row.get(key), dict) and (scores := _accuracies(row[key])):
            parts.append(f"{label}: {scores}")
    return "  " + " · ".join(parts)


class TrainingProgress(TrainerCallback):
    """One bar over a stage's optimizer steps and one `epoch_line` per new row of `evaluation.rows`.

    Add it after the evaluation callback: the Trainer calls callbacks in order, so the rows of an
    epoch end (or of a mid-epoch point, or of epoch 0 at train begin) are there when it looks.
    `bar`: draw the bar (True), never (False), or when stderr is a terminal and the Trainer's own
    bar would be shown (None, the default).
    """

    def __init__(self, stage: str, evaluation, *, bar: bool | None = None):
        self.stage = stage
        self.evaluation = evaluation
        self.want_bar = bar
        self.bar = None
        self.printed = 0  # rows of evaluation.rows already printed
        self.epochs = None

    def _flush(self, state) -> None:
        if not state.is_world_process_zero:
            return
        rows = getattr(self.evaluation, "rows", None) or []
        for row in rows[self.printed:]:
            tqdm.write(epoch_line(row, self.epochs))
        self.printed = len(rows)

    def on_train_begin(self, args, state, control, **kwargs):
        # The stage's length as set (the Trainer's own count is rounded up to whole epochs); with
        # `max_steps` the epochs follow from the steps, so the lines say the epoch without a total.
        self.epochs = args.num_train_epochs if args.max_steps is None or args.max_steps <= 0 else None
        if state.is_world_process_zero:
            show = self.want_bar
            if show is None:
                show = not args.disable_tqdm and sys.stderr.isatty()
            self.bar = tqdm(total=state.max_steps, desc=self.stage, unit="step", disable=not show,
                            dynamic_ncols=True, mininterval=0.5, file=sys.stderr)
            if not show:  # no bar to name the stage: a line says which stage the lines below are of
                tqdm.write(f"{self.stage}: {state.max_steps} steps")
        self._flush(state)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
        self._flush(state)

    def on_epoch_end(self, args, state, control, **kwargs):
        self._flush(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and logs.get("loss") is not None:
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        self._flush(state)
        if self.bar is not None:
            self.bar.close()
            self.bar = None
