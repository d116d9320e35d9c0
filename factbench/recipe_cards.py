"""The recipe card (`recipe_card.json`): what a checkpoint is, written by `factbench train`, read by scoring.

Enough to rerun the fine-tune and to refuse mismatched scoring. `build` / `write` are the recipes'
side (written last into the output folder, so a folder holding a recipe card is a finished run);
`describe` / `read_recipe_card` / `trained_on_split` are what a score card learns from it. Writer and
reader sit together so their field names cannot drift apart; the module imports no training code
(torch only inside `build`), so reading cards needs none.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path

from . import __version__
from .files import write_json

RECIPE_CARD = "recipe_card.json"
CARD_SCHEMA = 1


# ---- writing (the recipes) -----------------------------------------------------------------------

def split_identity(split) -> dict:
    from . import splits

    return {
        "path": str(split.path),
        "manifest_sha256": splits.manifest_sha256(split),
        "protocol_hash": split.manifest.get("protocol_hash"),
        "files": split.manifest.get("files", {}),  # sha256 of train / heldout / ood, verified on load
        "profile": split.manifest.get("profile"),
    }


def versions() -> dict:
    import accelerate
    import torch
    import transformers

    return {"factbench": __version__, "transformers": transformers.__version__, "torch": torch.__version__,
            "accelerate": accelerate.__version__, "python": platform.python_version()}


def build(run, *, stages: list[dict], training_log: list[dict], wall_seconds: float, extra: dict | None = None) -> dict:
    return {
        "schema": CARD_SCHEMA,
        "kind": "factbench recipe card",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "recipe": run.recipe,
        "config": run.config.to_dict(),
        "seed": run.config.seed,
        "base_model": run.identity,
        "split": split_identity(run.split),
        "trainable": run.trainable,
        "stages": stages,
        "training_log": "training_log.jsonl" if training_log else None,
        "final": training_log[-1] if training_log else None,
        "versions": versions(),
        "device": _device(),
        **processes(run.config),
        "wall_seconds": round(wall_seconds, 2),
        **(extra or {}),
    }


def write(card: dict, out_dir) -> None:
    write_json(Path(out_dir) / RECIPE_CARD, card)


def processes(config) -> dict:
    """How many training processes ran (torchrun / accelerate), and the sequences per optimizer step."""
    world = int(getattr(config, "world_size", 1) or 1)
    batch = getattr(config, "train_batch_size", None)  # per process (x GPUs under DataParallel)
    steps = getattr(config, "gradient_accumulation_steps", 1)
    return {"world_size": world, "global_batch_size": batch * steps * world if batch else None,
            "ddp_backend": (getattr(config, "ddp_backend", None) or "default") if world > 1 else None}


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    return f"cpu ({torch.get_num_threads()} threads)"


# ---- reading (score cards) -----------------------------------------------------------------------
SETTINGS = ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "loss_on", "answer_end", "seed")
SELFDISTILL_SETTINGS = ("distill_lambda", "distill_tau", "teacher", "kl_on", "teacher_cache")


def describe(recipe_card: dict) -> dict:
    """{recipe, label, settings}: the recipe, a readable label with what sets it apart, its main settings.

    Raises KeyError or TypeError on a card that lacks what its recipe needs.
    """
    c = recipe_card["config"]
    settings = {k: c.get(k) for k in SETTINGS}
    recipe = recipe_card["recipe"]
    label = recipe
    if recipe == "freeze":
        label += f" (trainable={recipe_card['trainable']['trainable']})"
    if recipe == "selfdistill":
        settings |= {k: c.get(k) for k in SELFDISTILL_SETTINGS}
        label += f" (λ={c['distill_lambda']:g}, τ={c['distill_tau']:g}, KL on {c['kl_on']} tokens)"
    return {"recipe": recipe, "label": label, "settings": settings}


def read_recipe_card(model_dir: Path | str) -> dict | None:
    """`describe` of the recipe card in `model_dir`, with the card's sha256 and the training split's files;
    None without a readable card."""
    try:
        raw = (Path(model_dir) / RECIPE_CARD).read_bytes()
        card = json.loads(raw)
        return describe(card) | {"recipe_card_sha256": hashlib.sha256(raw).hexdigest(),
                                 "split_files": (card.get("split") or {}).get("files")}
    except (ValueError, KeyError, TypeError, OSError, AttributeError):
        return None


def trained_on_split(recipe: dict | None, split_files: dict | None) -> dict:
    """Whether a fine-tune was trained on the scored split, and how factbench knows.

    Only a recipe card whose training split has the scored split's `train.jsonl` (same sha256) shows
    it; without a recipe card factbench cannot know what the fine-tune was trained on.
    """
    if recipe is None:
        return {"trained_on_split": None, "evidence": "unknown: no factbench recipe card beside the fine-tune, so "
                "factbench cannot know what it was trained on; the split's new and known-train facts may not be "
                "its training data (for a fine-tune of unknown origin use `factbench audit`)"}
    train = (recipe.get("split_files") or {}).get("train.jsonl")
    same = train is not None and train == (split_files or {}).get("train.jsonl")
    return {"trained_on_split": same, "evidence": (
        f"the fine-tune's recipe card ({recipe['recipe_card_sha256'][:12]}) names this split's train.jsonl" if same else
        f"the fine-tune's recipe card ({recipe['recipe_card_sha256'][:12]}) names another training split: the "
        "split's new and known-train facts are not its training data")}
