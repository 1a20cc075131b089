"""Metric arithmetic on hand-made cases with known answers (bootstrap, kappa, estimates)."""

from __future__ import annotations

import math

import pytest

from axolotl_mistake.evaluate.metrics import Estimate, bootstrap_interval, cohen_kappa, estimate


def test_bootstrap_of_constant_sample_is_a_point():
    assert bootstrap_interval([7.0] * 25, samples=500, seed=3) == (7.0, 7.0)


def test_bootstrap_matches_normal_approximation_for_a_fair_coin():
    values = [1.0, 0.0] * 200  # p = 0.5, n = 400: normal interval 0.5 ± 1.96 * 0.025
    low, high = bootstrap_interval(values, samples=4000, seed=0)
    half = 1.96 * math.sqrt(0.25 / 400)
    assert low == pytest.approx(0.5 - half, abs=0.008)
    assert high == pytest.approx(0.5 + half, abs=0.008)


def test_bootstrap_is_seeded_and_confidence_widens():
    values = [3, 5, 9, 1, 10, 4, 6, 2]
    assert bootstrap_interval(values, seed=1) == bootstrap_interval(values, seed=1)
    l90, h90 = bootstrap_interval(values, confidence=0.90, seed=1)
    l99, h99 = bootstrap_interval(values, confidence=0.99, seed=1)
    assert l99 < l90 < sum(values) / len(values) < h90 < h99


def test_bootstrap_rejects_empty_and_bad_confidence():
    with pytest.raises(ValueError):
        bootstrap_interval([])
    with pytest.raises(ValueError):
        bootstrap_interval([1.0], confidence=1.0)


def test_estimate_counts_missing_and_computes_rate():
    est = estimate([True, False, True, None, True, None], samples=500)
    assert est.value == pytest.approx(0.75)
    assert est.n == 4 and est.missing == 2
    assert 0.0 <= est.low <= est.value <= est.high <= 1.0


def test_estimate_of_nothing_usable_has_no_value():
    est = estimate([None, None])
    assert (est.value, est.low, est.high, est.n, est.missing) == (None, None, None, 0, 2)
    assert est.fmt() == "–"


def test_estimate_roundtrip_and_format():
    est = Estimate(0.725, 0.6, 0.8, 40, 1, "rate")
    assert Estimate.from_dict(est.to_dict()) == est
    assert est.fmt(digits=1, scale=100) == "72.5 [60.0, 80.0] (n=40)"


def test_kappa_textbook_case():
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> p_o=.7, p_e=.5, kappa=.4
    a = [True] * 20 + [True] * 5 + [False] * 10 + [False] * 15
    b = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    result = cohen_kappa(a, b)
    assert result["kappa"] == pytest.approx(0.4)
    assert result["agreement"] == pytest.approx(0.7)
    assert result["n"] == 50


def test_kappa_perfect_opposite_and_missing():
    assert cohen_kappa([True, False, True], [True, False, True])["kappa"] == pytest.approx(1.0)
    assert cohen_kappa([True, False, True, False], [False, True, False, True])[
        "kappa"
    ] == pytest.approx(-1.0)
    # unparseable verdicts (None) drop out of the comparison
    r = cohen_kappa([True, None, False, True], [True, True, None, True])
    assert r["n"] == 2 and r["agreement"] == 1.0
    assert cohen_kappa([None], [True]) == {"kappa": None, "n": 0, "agreement": None}
    # two constant judges that agree: kappa undefined, agreement reported
    assert cohen_kappa([False] * 4, [False] * 4) == {"kappa": None, "n": 4, "agreement": 1.0}
    # one constant judge: chance agreement equals observed, kappa 0
    assert cohen_kappa([False] * 4, [False, False, False, True])["kappa"] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        cohen_kappa([True], [True, False])
