"""`train(recipe, config)`: check everything, load the model, run one recipe, save and card it.

The recipes are the table `RECIPES` below: a name, the function that runs it (in its own file),
the parameters it trains unless `trainable` says otherwise, and one line on what it is.

All bad input (recipe, settings, split, training file, tokenizer, trainable patterns) fails with
one FactbenchError line before the first training step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import models, recipe_cards
from ..errors import FactbenchError
from . import freeze, known_only, l2anchor, selfdistill, sft
from .config import RecipeConfig, load_config
from .examples import check_tokenizer, find_training_split, training_rows
from .trainer import RecipeOutput, Run


@dataclass(frozen=True)
class Recipe:
    name: str
    run: Callable[[Run], RecipeOutput]
    default_trainable: str  # the `trainable` preset when the setting is unset
    description: str


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("sft", sft.run, sft.DEFAULT_TRAINABLE,
           "all parameters, cross-entropy on the answers of Known + Unknown facts"),
    Recipe("freeze", freeze.run, freeze.DEFAULT_TRAINABLE,
           "SFT with a trainable preset (trainable=attention|ffn|all) or patterns"),
    Recipe("selfdistill", selfdistill.run, selfdistill.DEFAULT_TRAINABLE,
           "teacher = 1 epoch SFT on Known facts; student: CE + λτ²·KL to it"),
    Recipe("known-only", known_only.run, known_only.DEFAULT_TRAINABLE,
           "SFT on the Known facts only (the stability reference)"),
    Recipe("l2anchor", l2anchor.run, l2anchor.DEFAULT_TRAINABLE, "SFT + λ·||θ − θ0||² (l2_lambda)"),
)}


@dataclass
class TrainResult:
    output_dir: Path
    card: dict
    log: list[dict]


def find_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise FactbenchError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def train(recipe: str, config: RecipeConfig | dict | str | Path, overrides: list[str] | dict | None = None
          ) -> TrainResult:
    """Run `recipe` with `config` (a RecipeConfig, a dict, or a YAML path / bundled config name)."""
    started = time.perf_counter()
    chosen = find_recipe(recipe)
    config = load_config(config, overrides)
    out_dir = Path(config.output_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not config.overwrite:
        raise FactbenchError(f"output_dir {out_dir} already holds files; choose another, or set overwrite=true")
    split = find_training_split(config.split_dir)
    training_rows(split)  # the whole file must be valid, whatever part a recipe uses
    if recipe == "known-only" or (recipe == "selfdistill" and config.teacher == "stage1"):
        training_rows(split, ("known",))
    loaded = models.load(config.model, config.revision)
    check_tokenizer(loaded.tokenizer)
    run = Run(recipe, config, split, loaded.model, loaded.tokenizer, loaded.identity, out_dir)
    output = chosen.run(run)
    trainer = output.trainer
    if config.save_model:
        trainer.save_model(str(out_dir))  # model + tokenizer, gathered from FSDP/DeepSpeed shards if any
    result_card = recipe_cards.build(run, stages=output.stages, training_log=output.log,
                             wall_seconds=time.perf_counter() - started, extra=output.extra)
    if trainer.is_world_process_zero():
        recipe_cards.write(result_card, out_dir)
    return TrainResult(out_dir, result_card, output.log)
