"""Reading the recipe card (`recipe_card.json`) that `factbench train` leaves beside a checkpoint.

Plain JSON, no training code: a score card names how its fine-tune was made from this alone.
The card's writer is `factbench.recipes.card`; the two should sit together.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

RECIPE_CARD = "recipe_card.json"
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
