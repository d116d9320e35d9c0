"""What every recipe shares: its input (`Run`), its training loop (`train_stage`), its output.

A recipe is one function `run(run: Run) -> RecipeOutput` (sft.py, freeze.py, known_only.py,
l2anchor.py, selfdistill.py); runner.py checks the settings, loads the base model into a `Run`,
calls it, then saves the model and writes the recipe card (card.py).

The training loop is a transformers `Trainer` whose loss is ours. Recipes differ only in their
data, their trainable parameters and their loss, so each one is a `RecipeTrainer` subclass
overriding `loss_terms` (l2anchor.py, selfdistill.py) or no subclass at all (sft.py, freeze.py,
known_only.py). Everything else (optimizer, schedule, mixed precision, accelerate / torchrun /
FSDP / DeepSpeed, logging) is the stock Trainer's.

Averaging: every term is a mean over its own token positions within a micro-batch, and the Trainer
divides by the gradient-accumulation steps (`loss_is_scaled_for_ga = False`); with accumulation,
micro-batches weigh equally whatever their number of answer tokens (as in torchtune's KD recipe).
Under DDP each rank's micro-batch is one more of them (DDP averages the ranks' gradients), so N
processes x batch B train exactly as one process with batch B and N accumulation steps (up to float
summation order; where the data do not fill the last step, accelerate repeats the first examples
on the ranks left short), and close to (not exactly as) one process with batch N·B, whose one mean
weighs examples by answer tokens (tests/test_distributed_training.py measures both).
The epoch loss in `training_log.jsonl` and the extra loss terms in the log lines are means over
every rank's micro-batches.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import Trainer
from transformers.trainer import DEFAULT_PROGRESS_CALLBACK
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from .. import models, splits
from . import losses
from .callbacks import EpochEvaluation
from .config import RecipeConfig
from .examples import KINDS, Collator, ExampleDataset, encode_rows, pack, training_rows
from .progress import TrainingProgress

MODEL_INPUTS = ("input_ids", "attention_mask")


@dataclass
class Run:
    """What a recipe works with: checked settings, the split, the loaded base model."""

    recipe: str
    config: RecipeConfig
    split: splits.Split
    model: object
    tokenizer: object
    identity: dict
    out_dir: Path
    trainable: dict | None = None  # set by the recipe: parameters.apply's summary, for the card

    def examples(self, kinds: tuple[str, ...] = KINDS) -> list[dict]:
        """The encoded training examples of `kinds`, in split order (packed when `packing` is on)."""
        rows = training_rows(self.split, kinds)
        # Never longer than the model has positions for (packing fills sequences up to the limit).
        positions = getattr(self.model.config, "max_position_embeddings", None) or getattr(
            self.model.config, "n_positions", None)
        limit = min(self.config.max_length, positions or self.config.max_length)
        encoded = encode_rows(self.tokenizer, rows, limit, self.config.answer_end)
        return pack(encoded, limit) if self.config.packing else encoded

    def load_base(self):
        """A fresh copy of the base model (for a stage that must start from it)."""
        return models.load(self.config.model, self.config.revision).model


@dataclass
class RecipeOutput:
    """What a recipe returns: runner.py saves the trainer's model and cards the rest."""

    trainer: object  # the last stage's Trainer: its model is the result
    stages: list[dict]  # one stage_summary per stage
    log: list[dict]  # the training log's rows (training_log.jsonl)
    extra: dict = field(default_factory=dict)  # recipe-specific entries of the recipe card


class RecipeTrainer(Trainer):
    """Cross-entropy on the labelled positions; subclasses add terms in `loss_terms`."""

    loss_is_scaled_for_ga = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._window: dict[str, list] = {}  # loss terms since the last log line
        self.epoch_loss: list = [0.0, 0]  # summed loss and steps of the current epoch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        extras = {k: inputs.pop(k) for k in list(inputs) if k not in MODEL_INPUTS}
        # The model gets no labels: its own loss would run over every position of the full
        # vocabulary logits in float32, only to be thrown away.
        outputs = model(**inputs, use_cache=False)
        logits, targets = outputs.logits[:, :-1], labels[:, 1:]
        terms = self.loss_terms(model, inputs, logits, targets, extras)
        loss = terms["loss"]
        if model.training:
            self.epoch_loss[0] += loss.detach()
            self.epoch_loss[1] += 1
            for name, value in terms.items():
                if name != "loss":
                    acc = self._window.setdefault(name, [0.0, 0])
                    acc[0] += value.detach()
                    acc[1] += 1
        return (loss, outputs) if return_outputs else loss

    def loss_terms(self, model, inputs, logits, targets, extras) -> dict[str, torch.Tensor]:
        """Plain SFT: mean cross-entropy over the labelled (by default: answer) tokens."""
        mask = targets != -100
        ce = losses.answer_cross_entropy(logits[mask], targets[mask])
        return {"loss": ce}

    def log(self, logs: dict, *args, **kwargs) -> None:
        if "loss" in logs:  # a training log line: add the mean of each loss term since the last one
            # (every rank logs this line, as it gathers the Trainer's own loss: the sum is collective)
            names = sorted(self._window)
            sums = self.sum_across_ranks([x for name in names for x in self._window[name]])
            for i, name in enumerate(names):
                logs[name] = round(sums[2 * i] / max(sums[2 * i + 1], 1), 4)
            self._window = {}
        super().log(logs, *args, **kwargs)

    def take_epoch_loss(self) -> float | None:
        """The mean micro-batch loss of the epoch over every rank's micro-batches (collective under DDP)."""
        total, n = self.sum_across_ranks(self.epoch_loss)
        self.epoch_loss = [0.0, 0]
        return round(total / n, 6) if n else None

    def sum_across_ranks(self, values: list) -> list[float]:
        """`values` (floats or 0-d tensors) summed over the training processes; as they are on one."""
        values = [float(v) for v in values]
        if self.args.world_size <= 1 or not torch.distributed.is_initialized() or not values:
            return values
        device = self.args.device if torch.distributed.get_backend() == "nccl" else "cpu"
        t = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return t.tolist()


def train_stage(run, model, examples: list[dict], *, out_dir: Path, epochs: float | None = None,
                trainer_cls: type[RecipeTrainer] = RecipeTrainer, kl_on: str | None = None, stage: str | None = None,
                first_point=None, **trainer_kwargs) -> tuple[RecipeTrainer, EpochEvaluation]:
    """Train `model` on `examples` for one stage; per-epoch rows go to out_dir/training_log.jsonl.

    `first_point` (an evaluation `Point` of callbacks.py), when given, is logged as epoch 0 instead of
    evaluating the model before training (self-distillation's stage 2 starts from the model stage 1
    has just evaluated).

    The console shows one progress bar for the stage, named `stage` (by default the name the recipe
    card gives it: the recipe's, or self-distillation's `stage1-teacher` / `stage2-student`), and
    one readable line per evaluation row (progress.py), in place of the Trainer's bar and its raw
    log dictionaries; those still go to `trainer.state.log_history`.
    """
    config = run.config
    if stage is None:
        stage = run.recipe
        if run.recipe == "selfdistill":  # stage 1 trains into out_dir/stage1, stage 2 into out_dir
            stage = "stage1-teacher" if Path(out_dir) != Path(run.out_dir) else "stage2-student"
    args = dataclasses.replace(config, output_dir=str(out_dir),
                               num_train_epochs=config.num_train_epochs if epochs is None else epochs)
    tokenizer = run.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    evaluation = EpochEvaluation(run.split, tokenizer, config, Path(out_dir) / "training_log.jsonl",
                                 first_point=first_point)
    trainer = trainer_cls(model=model, args=args, train_dataset=ExampleDataset(examples),
                          data_collator=Collator(pad_id, config.loss_on, kl_on), processing_class=tokenizer,
                          callbacks=[evaluation, TrainingProgress(stage, evaluation)], **trainer_kwargs)
    for console in (ProgressCallback, PrinterCallback, DEFAULT_PROGRESS_CALLBACK):  # TrainingProgress's job
        trainer.remove_callback(console)
    evaluation.trainer = trainer
    trainer.train()
    return trainer, evaluation


def stage_summary(name: str, trainer, examples: list[dict], seconds: float, log: list[dict]) -> dict:
    """One stage's entry in the recipe card."""
    kinds = [k for e in examples for k in e["kinds"]]
    return {"stage": name, "examples": len(kinds), "sequences": len(examples), "known": kinds.count("known"),
            "unknown": kinds.count("unknown"), "epochs": trainer.args.num_train_epochs,
            "steps": trainer.state.global_step, "seconds": round(seconds, 2),
            "final_epoch": log[-1] if log else None}
