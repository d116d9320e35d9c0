"""Flip tables, accuracies and their intervals (factbench.metrics), checked against hand counts.

The card fixture (conftest) scores scripted "models" that answer exactly a chosen set of facts
right on the scripted split (15 held-out, 30 new, 20 known-train, 5 OOD facts).
"""

import numpy as np
import pytest
from conftest import base_right, flip_counts, ids, tuned_right

from factbench import metrics
from factbench.metrics import Bootstrap, Outcomes, set_metrics


def test_flip_table_and_rates_match_hand_counts(card):
    # (retained, forgotten, acquired, never known), counted by hand from base_right / tuned_right
    assert flip_counts(card, "heldout") == (9, 3, 1, 2)
    assert flip_counts(card, "new") == (1, 0, 19, 10)
    assert flip_counts(card, "known_train") == (18, 2, 0, 0)
    assert flip_counts(card, "ood") == (4, 1, 0, 0)
    s = card["summary"]
    assert s["retention"]["value"] == pytest.approx(10 / 15)
    assert s["forgetting"]["value"] == pytest.approx(5 / 15)
    assert s["base_heldout_accuracy"]["value"] == pytest.approx(12 / 15)
    assert s["heldout_drop"]["value"] == pytest.approx(2 / 15)
    assert s["retained_of_base_right"]["value"] == pytest.approx(9 / 12)
    assert s["acquisition"]["value"] == pytest.approx(20 / 30)
    assert s["known_train_accuracy"]["value"] == pytest.approx(18 / 20)
    assert s["ood_retention"]["value"] == pytest.approx(4 / 5)
    assert s["forgotten_per_acquired"] == {"forgotten": 3, "heldout_questions": 15, "acquired": 19,
                                           "new_questions": 30, "ratio": pytest.approx(3 / 19)}
    assert s["peak_relative_forgetting"] is None
    # forgetting's interval is retention's, mirrored
    assert s["forgetting"]["low"] == pytest.approx(1 - s["retention"]["high"])
    # containment is reported beside exact match (here they agree: the scripted answers are exact)
    assert card["sets"]["heldout"]["contains"]["tuned_accuracy"]["value"] == pytest.approx(10 / 15)


def test_flips_per_relation_and_category_match_an_independent_count(card, split):
    h = ids(split, "heldout")
    b, t = base_right(split), tuned_right(split)
    expected = {}
    for fid in h:
        cell = {(True, True): 0, (True, False): 1, (False, True): 2, (False, False): 3}[(fid in b, fid in t)]
        counts = expected.setdefault(fid.split("/")[0], [0, 0, 0, 0])
        counts[cell] += 1
    by_relation = card["sets"]["heldout"]["flips"]["by_relation"]
    assert {r: [f[k]["count"] for k in metrics.FLIPS] for r, f in by_relation.items()} == expected
    assert list(card["sets"]["heldout"]["flips"]["by_category"]) == ["HighlyKnown"]
    assert card["sets"]["new"]["flips"]["by_category"]["Unknown"]["acquired"]["count"] == 19


def test_every_interval_contains_its_estimate(card):
    def walk(x):
        if isinstance(x, dict):
            if {"value", "low", "high", "n"} <= set(x) and x["value"] is not None:
                yield x
            for v in x.values():
                yield from walk(v)

    rates = list(walk(card))
    assert len(rates) > 100
    for r in rates:
        assert r["low"] - 1e-12 <= r["value"] <= r["high"] + 1e-12


def test_intervals_shrink_with_more_questions():
    def metrics(n):  # a quarter of the facts forgotten, whatever n
        base = np.ones(n, dtype=bool)
        tuned = np.arange(n) % 4 != 0
        o = Outcomes([f"P17/train/{i}" for i in range(n)], ["P17"] * n, ["HighlyKnown"] * n, base, tuned,
                             base, tuned, np.zeros(n, dtype=bool))
        return set_metrics(o, Bootstrap())

    small, large = metrics(40), metrics(4000)
    for key in ("tuned_accuracy", "change"):
        assert small[key]["value"] == pytest.approx(large[key]["value"])
        assert (large[key]["high"] - large[key]["low"]) < (small[key]["high"] - small[key]["low"]) / 5


def test_complement_and_negated_mirror_the_interval():
    rate = {"value": 0.75, "low": 0.6, "high": 0.9, "n": 20}
    assert metrics.complement(rate) == {"value": 0.25, "low": pytest.approx(0.1), "high": pytest.approx(0.4), "n": 20}
    assert metrics.negated({"value": 0.1, "low": -0.05, "high": 0.2, "n": 20}) == {
        "value": -0.1, "low": -0.2, "high": 0.05, "n": 20}
    empty = {"value": None, "low": None, "high": None, "n": 0}
    assert metrics.complement(empty) == empty and metrics.negated(empty) == empty


def test_too_few_resamples_are_refused():
    from factbench.errors import ScoreError

    with pytest.raises(ScoreError, match="--resamples must be at least 100, got 99"):
        metrics.Bootstrap(resamples=99)
