"""`train(recipe, config)`: check everything, load the model, run one recipe, save and card it.

All bad input (recipe, settings, split, training file, tokenizer, trainable patterns) fails with
one FactbenchError line before the first training step.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import models, splits
from ..errors import FactbenchError
from . import card, data
from .config import RecipeConfig, load_config

# recipe name -> module; each module has `DEFAULT_TRAINABLE` and `run(run) -> RecipeOutput`
RECIPES = {
    "sft": "sft",
    "freeze": "freeze",
    "selfdistill": "selfdistill",
    "known-only": "known_only",
    "l2anchor": "l2anchor",
}


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
    trainable: dict | None = None

    def examples(self, kinds: tuple[str, ...] = data.KINDS) -> list[dict]:
        rows = data.training_rows(self.split, kinds)
        # Never longer than the model has positions for (packing fills sequences up to the limit).
        positions = getattr(self.model.config, "max_position_embeddings", None) or getattr(
            self.model.config, "n_positions", None)
        limit = min(self.config.max_length, positions or self.config.max_length)
        examples = data.encode_rows(self.tokenizer, rows, limit, self.config.answer_end)
        return data.pack(examples, limit) if self.config.packing else examples

    def load_base(self):
        """A fresh copy of the base model (for a stage that must start from it)."""
        return models.load(self.config.model, self.config.revision).model


@dataclass
class RecipeOutput:
    trainer: object  # the last stage's Trainer: its model is the result
    stages: list[dict]
    log: list[dict]
    extra: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    output_dir: Path
    card: dict
    log: list[dict]


def recipe_module(name: str):
    if name not in RECIPES:
        raise FactbenchError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return importlib.import_module(f".{RECIPES[name]}", __package__)


def train(recipe: str, config: RecipeConfig | dict | str | Path, overrides: list[str] | dict | None = None
          ) -> TrainResult:
    """Run `recipe` with `config` (a RecipeConfig, a dict, or a YAML path / bundled config name)."""
    started = time.perf_counter()
    module = recipe_module(recipe)
    config = load_config(config, overrides)
    out_dir = Path(config.output_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not config.overwrite:
        raise FactbenchError(f"output_dir {out_dir} already holds files; choose another, or set overwrite=true")
    split = data.find_training_split(config.split_dir)
    data.training_rows(split)  # the whole file must be valid, whatever part a recipe uses
    if recipe == "known-only" or (recipe == "selfdistill" and config.teacher == "stage1"):
        data.training_rows(split, ("known",))
    loaded = models.load(config.model, config.revision)
    data.check_tokenizer(loaded.tokenizer)
    run = Run(recipe, config, split, loaded.model, loaded.tokenizer, loaded.identity, out_dir)
    output = module.run(run)
    trainer = output.trainer
    if config.save_model:
        trainer.save_model(str(out_dir))  # model + tokenizer, gathered from FSDP/DeepSpeed shards if any
    result_card = card.build(run, stages=output.stages, training_log=output.log,
                             wall_seconds=time.perf_counter() - started, extra=output.extra)
    if trainer.is_world_process_zero():
        card.write(result_card, out_dir)
    return TrainResult(out_dir, result_card, output.log)


def stage_summary(name: str, trainer, examples: list[dict], seconds: float, log: list[dict]) -> dict:
    """One stage's entry in the recipe card."""
    kinds = [k for e in examples for k in e["kinds"]]
    return {"stage": name, "examples": len(kinds), "sequences": len(examples), "known": kinds.count("known"),
            "unknown": kinds.count("unknown"), "epochs": trainer.args.num_train_epochs,
            "steps": trainer.state.global_step, "seconds": round(seconds, 2),
            "final_epoch": log[-1] if log else None}
