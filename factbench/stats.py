"""Uncertainty for fact-level results: seeded bootstrap intervals and exact McNemar tests.

Every rate factbench reports is a mean of 0/1 outcomes over questions, so the bootstrap
resamples questions (with replacement) with a fixed seed: the same inputs always give the same
interval. Paired comparisons of two fine-tunes of one base use the same questions for both, so
they are tested on the discordant pairs (exact McNemar) and a paired bootstrap of the difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0


def rate_with_ci(outcomes: Sequence[bool], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                 level: float = 0.95) -> dict:
    """Mean of 0/1 outcomes with a percentile-bootstrap interval; n = 0 gives None values."""
    x = np.asarray(outcomes, dtype=float)
    n = len(x)
    if n == 0:
        return {"value": None, "low": None, "high": None, "n": 0}
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"value": float(x.mean()), "low": float(low), "high": float(high), "n": n}


def paired_difference_ci(a: Sequence[bool], b: Sequence[bool], *, resamples: int = DEFAULT_RESAMPLES,
                         seed: int = DEFAULT_SEED, level: float = 0.95) -> dict:
    """mean(a) - mean(b) over the same questions, with a paired bootstrap interval."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(xa) != len(xb):
        raise ValueError("paired outcomes need the same questions on both sides")
    n = len(xa)
    if n == 0:
        return {"value": None, "low": None, "high": None, "n": 0}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    diffs = xa[idx].mean(axis=1) - xb[idx].mean(axis=1)
    low, high = np.quantile(diffs, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"value": float(xa.mean() - xb.mean()), "low": float(low), "high": float(high), "n": n}


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of only_a vs only_b discordant pairs at p = 1/2."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
