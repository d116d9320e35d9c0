"""`recipe_card.json`: what a checkpoint is, enough to rerun it and to refuse mismatched scoring.

Written last into the output folder, so a folder holding a recipe card is a finished run.
"""

from __future__ import annotations

import platform
import time

import torch

from .. import __version__, splits
from ..files import write_json

CARD_SCHEMA = 1


def split_identity(split) -> dict:
    return {
        "path": str(split.path),
        "manifest_sha256": splits.manifest_sha256(split),
        "protocol_hash": split.manifest.get("protocol_hash"),
        "files": split.manifest.get("files", {}),  # sha256 of train / heldout / ood, verified on load
        "profile": split.manifest.get("profile"),
    }


def versions() -> dict:
    import accelerate
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
        "wall_seconds": round(wall_seconds, 2),
        **(extra or {}),
    }


def write(card: dict, out_dir) -> None:
    write_json(out_dir / "recipe_card.json", card)


def _device() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    return f"cpu ({torch.get_num_threads()} threads)"
