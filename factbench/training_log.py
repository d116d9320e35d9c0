"""The per-epoch training log: the rows the recipes write and `factbench score --training-log` reads.

JSON Lines, one row per epoch, in training order (the recipes write `training_log.jsonl`):

    {"epoch": 0, "heldout_accuracy": 0.97}
    {"epoch": 1, "heldout_accuracy": 0.91, "new_accuracy": 0.42}

`epoch` (a number, strictly increasing; 0 = before training, when measured) and
`heldout_accuracy` (in [0, 1], on the held-out known set) are required; `new_accuracy`,
`known_train_accuracy` and `heldout_questions` are optional and kept in the card; other keys are
ignored. Peak-relative forgetting = (peak − final) / peak over `heldout_accuracy`, where final is
the last row: the paper's reading of 15% → 3%.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from .errors import ScoreError
from .sample_logs import lines

LOG_OPTIONAL = ("new_accuracy", "known_train_accuracy", "heldout_questions")


def epoch_row(epoch, accuracies: dict, step: int, loss) -> dict:
    """One row as the recipes write it: epoch, every `<set>_accuracy`, step, loss, every `<set>_questions`,
    then the rest (the protocol's name, other protocols' accuracies)."""
    scores = {k: v for k, v in accuracies.items() if k.endswith("_accuracy")}
    counts = {k: v for k, v in accuracies.items() if k.endswith("_questions")}
    rest = {k: v for k, v in accuracies.items() if k not in scores and k not in counts}
    return {"epoch": epoch, **scores, "step": step, "loss": loss, **counts, **rest}


def read_training_log(path: Path | str) -> dict:
    """The per-epoch log (format in the module docstring) and its peak-relative forgetting."""
    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"training log {path} does not exist")
    rows = []
    for n, line in lines(path, ScoreError):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            epoch, accuracy = row["epoch"], row["heldout_accuracy"]
            ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                     for v in (epoch, accuracy)) and 0 <= accuracy <= 1
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise ScoreError(f"{path}:{n} is not a training-log row (needs a number \"epoch\" and "
                             "\"heldout_accuracy\" in [0, 1])")
        if rows and epoch <= rows[-1]["epoch"]:
            raise ScoreError(f"{path}:{n}: epochs must increase (epoch {epoch} after {rows[-1]['epoch']})")
        rows.append({"epoch": epoch, "heldout_accuracy": accuracy} | {k: row[k] for k in LOG_OPTIONAL if k in row})
    if not rows:
        raise ScoreError(f"training log {path} has no rows")
    peak = max(rows, key=lambda r: r["heldout_accuracy"])  # the first epoch reaching it
    final = rows[-1]
    relative = (peak["heldout_accuracy"] - final["heldout_accuracy"]) / peak["heldout_accuracy"] \
        if peak["heldout_accuracy"] > 0 else None
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "epochs": rows,
            "peak": {"epoch": peak["epoch"], "heldout_accuracy": peak["heldout_accuracy"]},
            "final": {"epoch": final["epoch"], "heldout_accuracy": final["heldout_accuracy"]},
            "peak_relative_forgetting": relative}
