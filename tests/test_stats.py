import pytest
from scipy.stats import binomtest

from factbench.stats import mcnemar_exact, paired_difference_ci, rate_with_ci


def test_mcnemar_by_hand_and_against_scipy():
    # 1 vs 9 discordant pairs: 2 * (C(10,0) + C(10,1)) / 2^10 = 22/1024
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    for a, b in [(0, 5), (3, 12), (20, 31), (7, 7)]:
        assert mcnemar_exact(a, b) == pytest.approx(binomtest(a, a + b, 0.5).pvalue)
    assert mcnemar_exact(0, 0) == 1.0


def test_interval_contains_the_estimate_and_shrinks_with_more_questions():
    small = rate_with_ci([True] * 6 + [False] * 4)
    large = rate_with_ci([True] * 600 + [False] * 400)
    for r in (small, large):
        assert r["low"] <= r["value"] <= r["high"]
        assert r["value"] == pytest.approx(0.6)
    assert (large["high"] - large["low"]) < (small["high"] - small["low"]) / 5
    assert small["n"] == 10 and large["n"] == 1000


def test_interval_is_seeded_and_handles_edges():
    x = [i % 3 == 0 for i in range(40)]
    assert rate_with_ci(x) == rate_with_ci(x)
    assert rate_with_ci(x, seed=1, resamples=200) != rate_with_ci(x, seed=2, resamples=200)
    assert rate_with_ci([]) == {"value": None, "low": None, "high": None, "n": 0}
    assert rate_with_ci([True] * 5) == {"value": 1.0, "low": 1.0, "high": 1.0, "n": 5}


def test_paired_difference():
    a = [True] * 70 + [False] * 30
    b = [True] * 50 + [False] * 50
    d = paired_difference_ci(a, b)
    assert d["value"] == pytest.approx(0.2) and d["low"] <= 0.2 <= d["high"]
    assert d["low"] > 0  # 20 discordant pairs all one way: clearly different
    with pytest.raises(ValueError):
        paired_difference_ci(a, b[:-1])
