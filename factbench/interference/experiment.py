"""What `factbench interference` runs: the `Experiment` settings, its conditions and their names,
the settings every condition trains with, and the checks made before any work.

`identity` is everything that fixes a condition's result except the condition itself
(`settings.json` in the output folder): finished conditions are reused only under the same one.
The known facts measured are the base model's split's (`base_split`, `known_rows`).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import asking, data, models, question_sets, splits, synthetic
from ..errors import FactbenchError

SCHEMA = 1
DEFAULT_SIZES = (100, 300)
DEFAULT_NEW_LIMIT = 200
SET_BY_INTERFERENCE = ("model", "split_dir", "output_dir")
RECIPE_LABELS = {"sft": "SFT", "selfdistill": "self-distillation", "freeze": "freeze", "l2anchor": "L2 anchor"}


@dataclass(frozen=True)
class Experiment:
    """What `factbench interference` runs; the conditions are recipes × keys × sizes."""

    model: str = models.DEFAULT_MODEL
    recipes: tuple[str, ...] = ("sft",)
    sizes: tuple[int, ...] = DEFAULT_SIZES
    keys: tuple[str, ...] = tuple(synthetic.KEY_KINDS)
    relation: str = "P17"
    seed: int = 0
    config: str | None = None  # recipe config; None: `toy` for toy worlds, `smollm2_demo` otherwise
    overrides: tuple[str, ...] = ()  # KEY=VALUE recipe settings on top
    split: str | None = None  # the base model's split; None: bundled (SmolLM2) or the toy world's
    heldout_limit: int | None = None
    new_limit: int = DEFAULT_NEW_LIMIT
    layer: int | None = None
    dtype: str = "auto"
    keep_models: bool = False
    command: str | None = field(default=None, compare=False)

    def __post_init__(self):
        for name in ("recipes", "sizes", "keys", "overrides"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        from ..recipes.runner import find_recipe

        if not self.recipes:
            raise FactbenchError("no recipe given")
        for r in self.recipes:
            find_recipe(r)
            if r == "known-only":
                raise FactbenchError("recipe known-only trains on Known facts only, and this probe trains on "
                                     "synthetic facts only: there is nothing for it to train on")
        synthetic.check_kinds(self.keys)
        data.check_relations([self.relation])
        if not self.sizes or any(n < 1 for n in self.sizes):
            raise FactbenchError(f"--sizes must be whole numbers of at least 1, got {list(self.sizes)}")
        if self.heldout_limit is not None and self.heldout_limit < 1:
            raise FactbenchError(f"--heldout must be at least 1, got {self.heldout_limit}")
        if self.new_limit < 0:
            raise FactbenchError(f"--new-limit must be 0 or more, got {self.new_limit}")
        for key in self.user_overrides():
            if key in SET_BY_INTERFERENCE:
                raise FactbenchError(f"{key} is set by interference itself (use --model; the split and output "
                                     "folder are made per condition)")

    @property
    def is_toy(self) -> bool:
        return self.model == "toy" or self.model.startswith("toy:")

    @property
    def config_name(self) -> str:
        return self.config or ("toy" if self.is_toy else "smollm2_demo")

    def user_overrides(self) -> dict:
        from ..recipes.config import parse_overrides

        return parse_overrides(list(self.overrides))

    def conditions(self) -> list[tuple[str, str, int]]:
        return [(r, k, n) for r in self.recipes for n in sorted(set(self.sizes)) for k in self.keys]


def with_command(exp: Experiment, out: Path | str) -> Experiment:
    """`exp` with the command line that runs it (recorded in the results, shown in the table)."""
    parts = ["factbench", "interference", "--model", exp.model, "--recipe", *exp.recipes,
             "--sizes", *map(str, exp.sizes)]
    rest = []
    for item in exp.overrides:  # the settings that have their own flags are shown with them
        key, _, value = item.partition("=")
        flag = {"num_train_epochs": "--epochs", "learning_rate": "--lr", "per_device_train_batch_size": "--batch-size"}
        if key.strip() in flag:
            parts += [flag[key.strip()], value]
        else:
            rest.append(item)
    defaults = Experiment()
    for flag, value, default in (("--keys", list(exp.keys), list(defaults.keys)), ("--relation", exp.relation, "P17"),
                                 ("--seed", exp.seed, 0), ("--config", exp.config, None), ("--split", exp.split, None),
                                 ("--heldout", exp.heldout_limit, None), ("--new-limit", exp.new_limit,
                                                                          DEFAULT_NEW_LIMIT),
                                 ("--layer", exp.layer, None), ("--dtype", exp.dtype, "auto"),
                                 ("--set", rest, [])):
        if value != default:
            parts += [flag, *(map(str, value) if isinstance(value, list) else [str(value)])]
    if exp.keep_models:
        parts.append("--keep-models")
    parts += ["--out", str(out)]
    return replace(exp, command=shlex.join(parts))


def condition_name(recipe: str, kind: str, size: int) -> str:
    return f"{recipe}-{kind}-{size}"


# ---- settings, checked before any work ----------------------------------------------------------

def shared_settings(exp: Experiment) -> dict:
    """The settings interference puts on top of the recipe config for every condition (paths aside)."""
    settings = {"model": exp.model, "seed": exp.seed, "eval_sets": ["heldout"], "eval_each_epoch": False,
                "eval_before_training": False, "save_model": True}
    if exp.is_toy:
        settings["answer_end"] = "newline"
    return settings


def recipe_settings(exp: Experiment, recipe: str, split_dir: Path, out_dir: Path) -> dict:
    """The recipe's settings on top of its config, for one condition."""
    settings = shared_settings(exp) | {"split_dir": str(split_dir), "output_dir": str(out_dir)}
    if recipe == "selfdistill":
        settings["teacher"] = "base"
    return settings | exp.user_overrides()


def effective_settings(exp: Experiment) -> dict:
    """The values every condition trains with (config file, interference's, the user's), paths left out.

    Values rather than the file's hash, so that a reworded comment in a bundled config does not make
    finished conditions look foreign, while a changed learning rate does.
    """
    import yaml

    from ..recipes.config import find_config

    values = yaml.safe_load(find_config(exp.config_name).read_text()) or {}
    merged = values | shared_settings(exp) | exp.user_overrides()
    return {k: merged[k] for k in sorted(merged) if k not in ("split_dir", "output_dir")}


def base_split(model: str, split: str | Path | None = None) -> splits.Split:
    """The base model's split: `split`, else the bundled SmolLM2 split or the toy world's own."""
    if split:
        return question_sets.find_split(split, split_flag="--split")
    where = models.resolve(model)
    if where["source"] == "toy":
        from ..toyworld import toy_split

        return question_sets.find_split(toy_split(where["preset"]), split_flag="--split")
    if where["source"] == "bundled":
        return question_sets.find_split(None, split_flag="--split")
    raise FactbenchError(f"which facts does {model} know? pass --split DIR, a split made from its knowledge "
                         "profile (`factbench probe`, then `factbench split`)")


def known_rows(split: splits.Split, limit: int | None, seed: int) -> list[dict]:
    """Every fact of the split the base model knew (held-out, Known training and OOD rows), or a sample."""
    rows, seen = [], set()
    for row in [*split.sets["heldout"], *(r for r in split.sets["train"] if r.get("kind") == "known"),
                *split.sets["ood"]]:
        if row["id"] not in seen:
            seen.add(row["id"])
            rows.append(row)
    if not rows:
        raise FactbenchError(f"split {split.path} holds no facts the base model knew")
    facts = asking.pick_questions(data.get(r["id"] for r in rows), limit, seed)
    chosen = {f.id for f in facts}
    return [r for r in rows if r["id"] in chosen]


def identity(exp: Experiment, split: splits.Split, model_identity: dict) -> dict:
    """Everything that fixes a condition's result except the condition itself: reruns must match it."""
    return {
        "schema": SCHEMA,
        "model": model_identity,
        "base_split": {"path": str(split.path), "manifest_sha256": splits.manifest_sha256(split)},
        "relation": exp.relation, "seed": exp.seed, "synthetic_version": synthetic.SYNTHETIC_VERSION,
        "recipe_config": exp.config_name, "recipe_settings": effective_settings(exp),
        "heldout_limit": exp.heldout_limit, "new_limit": exp.new_limit,
        "layer": exp.layer, "dtype": exp.dtype,
        "question_protocol_hash": split.manifest.get("protocol_hash"),
    }


def check_settings(out: Path, ident: dict) -> None:
    path = out / "settings.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            raise FactbenchError(f"{path} (the settings of the results beside it) does not read (truncated?); "
                                 f"delete {out} to start over, or choose another --out") from None
        if not isinstance(saved, dict):
            raise FactbenchError(f"{path} is not an interference settings record; delete {out} to start over, "
                                 "or choose another --out")
        if saved != ident:
            diff = sorted(k for k in set(saved) | set(ident) if saved.get(k) != ident.get(k))
            raise FactbenchError(f"{out} holds results made with other settings ({', '.join(diff)} differ); "
                                 "choose another --out, or delete it to start over")
    elif out.is_dir() and any(p.name != ".lock" for p in out.iterdir()):
        raise FactbenchError(f"{out} already holds files that are not an interference run; choose another --out")
