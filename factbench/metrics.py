"""Per-question outcomes and the metrics of one set (METHOD.md §3): accuracies, flips, intervals.

Per question, base and tuned correctness (exact match, the primary score) make the flip table:
retained (right → right), forgotten (right → wrong), acquired (wrong → right), never known
(wrong → wrong); per set overall, per relation and per SliCK category. Containment (the secondary
score) is reported beside it, never mixed in. Every rate is a mean over questions with a seeded
bootstrap interval (`Bootstrap`, over `factbench.stats`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import stats
from .errors import ScoreError
from .identities import id_order

if TYPE_CHECKING:
    from .answer_sources import Answers
    from .splits import Split

FLIPS = ("retained", "forgotten", "acquired", "never_known")


@dataclass
class Outcomes:
    """One set's per-question results, in id order: the join of base and tuned answers."""

    ids: list[str]
    relation: list[str]
    category: list[str | None]
    base: np.ndarray  # exact match, bool
    tuned: np.ndarray
    base_contains: np.ndarray
    tuned_contains: np.ndarray
    guessable: np.ndarray

    def subset(self, mask: np.ndarray) -> Outcomes:
        pick = np.flatnonzero(mask)
        return Outcomes([self.ids[i] for i in pick], [self.relation[i] for i in pick],
                        [self.category[i] for i in pick], self.base[pick], self.tuned[pick],
                        self.base_contains[pick], self.tuned_contains[pick], self.guessable[pick])


def join(name: str, base: Answers, tuned: Answers, split: Split, guessable: set[str] | None) -> Outcomes:
    """Base and tuned answers to set `name`, question by question, with each fact's SliCK category."""
    # Imported here: question_sets brings the split and profile machinery, which compare and the
    # leaderboard (users of the rest of this module, on cards alone) do not need.
    from . import question_sets

    ids = sorted(base.sets[name], key=id_order)
    category = {r["id"]: r.get("category") for r in question_sets.set_rows(name, split)}
    b, t = base.sets[name], tuned.sets[name]

    def flags(side, key):
        return np.array([side[i][key] for i in ids], dtype=bool)

    return Outcomes(ids, [i.split("/")[0] for i in ids], [category.get(i) for i in ids],
                    flags(b, "em"), flags(t, "em"), flags(b, "contains"), flags(t, "contains"),
                    np.array([i in (guessable or ()) for i in ids], dtype=bool))


@dataclass(frozen=True)
class Bootstrap:
    resamples: int = stats.DEFAULT_RESAMPLES
    seed: int = stats.DEFAULT_SEED
    level: float = 0.95

    def __post_init__(self):
        if self.resamples < 100:
            raise ScoreError(f"--resamples must be at least 100, got {self.resamples}")

    def rate(self, x) -> dict:
        return stats.rate_with_ci(x, resamples=self.resamples, seed=self.seed, level=self.level)

    def paired(self, a, b) -> dict:
        return stats.paired_difference_ci(a, b, resamples=self.resamples, seed=self.seed, level=self.level)


DEFAULT_BOOTSTRAP = Bootstrap()


def flip_cells(base: np.ndarray, tuned: np.ndarray, boot: Bootstrap) -> dict:
    """Counts and shares (with intervals) of retained / forgotten / acquired / never-known questions."""
    cells = {"retained": base & tuned, "forgotten": base & ~tuned, "acquired": ~base & tuned,
             "never_known": ~base & ~tuned}
    return {"questions": len(base)} | {k: {"count": int(v.sum()), "share": boot.rate(v)} for k, v in cells.items()}


def grouped_flips(o: Outcomes, boot: Bootstrap) -> dict:
    def by(keys):
        groups = defaultdict(list)
        for i, k in enumerate(keys):
            groups[k or "none"].append(i)
        return {k: flip_cells(o.base[idx], o.tuned[idx], boot) for k, idx in groups.items()}

    return {"all": flip_cells(o.base, o.tuned, boot),
            "by_relation": dict(sorted(by(o.relation).items(), key=lambda kv: int(kv[0][1:]))),
            "by_category": by(o.category)}


def set_metrics(o: Outcomes, boot: Bootstrap) -> dict:
    """Accuracies, the paired change, the retained share of base-right facts, flips: one set."""
    return {
        "questions": len(o.ids),
        "base_accuracy": boot.rate(o.base),
        "tuned_accuracy": boot.rate(o.tuned),
        "change": boot.paired(o.tuned, o.base),  # tuned - base, in accuracy
        "retained_of_base_right": boot.rate(o.tuned[o.base]),
        "contains": {"base_accuracy": boot.rate(o.base_contains), "tuned_accuracy": boot.rate(o.tuned_contains)},
        "flips": grouped_flips(o, boot),
    }


def complement(rate: dict) -> dict:
    """1 - rate, interval flipped: forgetting from retention."""
    if rate["value"] is None:
        return dict(rate)
    return {"value": 1 - rate["value"], "low": 1 - rate["high"], "high": 1 - rate["low"], "n": rate["n"]}


def negated(diff: dict) -> dict:
    if diff["value"] is None:
        return dict(diff)
    return {"value": -diff["value"], "low": -diff["high"], "high": -diff["low"], "n": diff["n"]}
