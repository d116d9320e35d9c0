"""Plain SFT (METHOD.md §4, recipe 1): cross-entropy on the answers of every training fact.

    factbench train --recipe sft --config toy.yaml output_dir=runs/toy-sft

All parameters train unless `trainable` says otherwise. The loss is the mean cross-entropy of the
answer tokens (and the closing eos), `loss_on: all` puts it on the question tokens too.

Path through `run` below: settings `run.config` (config.py) → examples of the Known + Unknown
training facts (`run.examples`, examples.py) → trainable parameters (parameters.py) → the loss,
`RecipeTrainer.loss_terms`'s cross-entropy, and the shared loop (`train_stage`, trainer.py) →
one stage and the per-epoch rows; runner.py saves the model and writes the recipe card.
"""

from __future__ import annotations

import time

from . import parameters
from .trainer import RecipeOutput, stage_summary, train_stage

DEFAULT_TRAINABLE = "all"


def run(run, kinds=("known", "unknown"), default_trainable: str = DEFAULT_TRAINABLE, name: str = "sft"
        ) -> RecipeOutput:
    """SFT of `run.model` on the training facts of `kinds` (shared by freeze and known-only)."""
    examples = run.examples(kinds)
    run.trainable = parameters.apply(run.model, run.config.trainable, default=default_trainable)
    started = time.perf_counter()
    trainer, evaluation = train_stage(run, run.model, examples, out_dir=run.out_dir)
    stage = stage_summary(name, trainer, examples, time.perf_counter() - started, evaluation.rows)
    return RecipeOutput(trainer, [stage], evaluation.rows)
