"""L2-to-anchor SFT (METHOD.md §4, baseline): SFT + λ·‖θ − θ₀‖², a pull to the starting weights.

    factbench train --recipe l2anchor --config toy.yaml l2_lambda=1e-3 output_dir=runs/toy-l2

The weight-space counterpart of self-distillation's output-space pull: the paper reports that a
gradient-matched L2 pull still forgets about 10 points where self-distillation forgets about 3.
θ₀ is a copy of the trainable parameters as training starts (the base model), so this costs one
extra copy of the trainable weights; the penalty sums over the trainable parameters only.
`l2_lambda` (default 1e-3) is ours: sweep it, and compare at matched acquisition (METHOD.md §7).
Under FSDP each rank sums its own shard, so the penalty is per shard (its gradient is still exact).

Path through `run` below: examples of the Known + Unknown facts (`run.examples`) → trainable
parameters (parameters.py) → the loss, `L2AnchorTrainer.loss_terms` (cross-entropy + λ·penalty,
losses.l2_anchor_penalty) → the shared loop (`train_stage`, trainer.py) → one stage.
"""

from __future__ import annotations

import time

from . import losses, parameters
from .trainer import RecipeOutput, RecipeTrainer, stage_summary, train_stage

DEFAULT_TRAINABLE = "all"


class L2AnchorTrainer(RecipeTrainer):
    def __init__(self, *args, l2_lambda: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.l2_lambda = l2_lambda
        self.anchors = None

    def loss_terms(self, model, inputs, logits, targets, extras):
        params = [p for p in model.parameters() if p.requires_grad]
        if self.anchors is None:
            # Taken at the first step, before any update, on the device the Trainer chose.
            self.anchors = [p.detach().clone() for p in params]
        terms = super().loss_terms(model, inputs, logits, targets, extras)
        ce = terms["loss"]
        l2 = losses.l2_anchor_penalty(params, self.anchors)
        return {"loss": ce + self.l2_lambda * l2, "ce": ce, "l2": l2}


def run(run) -> RecipeOutput:
    examples = run.examples()
    run.trainable = parameters.apply(run.model, run.config.trainable, default=DEFAULT_TRAINABLE)
    started = time.perf_counter()
    trainer, evaluation = train_stage(run, run.model, examples, out_dir=run.out_dir, trainer_cls=L2AnchorTrainer,
                                      l2_lambda=run.config.l2_lambda)
    stage = stage_summary("l2anchor", trainer, examples, time.perf_counter() - started, evaluation.rows)
    return RecipeOutput(trainer, [stage], evaluation.rows, {"l2_lambda": run.config.l2_lambda})
