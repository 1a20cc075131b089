"""Metric arithmetic on hand-made cases with known answers (bootstrap, kappa, estimates, AUC,
balanced accuracy) and the project's semantics around scipy/sklearn (None, point intervals)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from axolotl_mistake.evaluate.metrics import (
    auc_estimate,
    balanced_accuracy_estimate,
    bootstrap_interval,
    cohen_kappa,
    estimate,
    paired_auc_difference_estimate,
)
from axolotl_mistake.evaluate.results import Estimate


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
    est = Estimate(value=0.725, low=0.6, high=0.8, n=40, missing=1, unit="rate")
    assert Estimate.from_dict(est.to_dict()) == est
    assert est.fmt(digits=1, scale=100) == "72.5 [60.0, 80.0] (n=40)"


def test_kappa_textbook_case():
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> p_o=.7, p_e=.5, kappa=.4
    a = [True] * 20 + [True] * 5 + [False] * 10 + [False] * 15
    b = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    result = cohen_kappa(a, b)
    assert result.kappa == pytest.approx(0.4)
    assert result.agreement == pytest.approx(0.7)
    assert result.n == 50


def test_kappa_perfect_opposite_and_missing():
    assert cohen_kappa([True, False, True], [True, False, True]).kappa == pytest.approx(1.0)
    assert cohen_kappa([True, False, True, False], [False, True, False, True]).kappa == (
        pytest.approx(-1.0)
    )
    # unparseable verdicts (None) drop out of the comparison
    r = cohen_kappa([True, None, False, True], [True, True, None, True])
    assert r.n == 2 and r.agreement == 1.0
    assert cohen_kappa([None], [True]).model_dump() == {"kappa": None, "n": 0, "agreement": None}
    # two constant judges that agree: kappa undefined, agreement reported
    k = cohen_kappa([False] * 4, [False] * 4)
    assert k.model_dump() == {"kappa": None, "n": 4, "agreement": 1.0}
    # one constant judge: chance agreement equals observed, kappa 0
    assert cohen_kappa([False] * 4, [False, False, False, True]).kappa == pytest.approx(0.0)
    # scores are categories too (a 3-way table)
    assert cohen_kappa([1, 2, 3, 3], [1, 2, 3, 3]).kappa == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cohen_kappa([True], [True, False])


def _separated(n: int, shift: float, seed: int = 0) -> tuple[list[bool], list[float]]:
    import random

    rng = random.Random(seed)
    labels = [True] * n + [False] * n
    margins = [rng.gauss(shift, 1.0) for _ in range(n)] + [rng.gauss(0.0, 1.0) for _ in range(n)]
    return labels, margins


def test_auc_matches_sklearn_and_its_interval_covers_it():
    from sklearn.metrics import roc_auc_score

    labels, margins = _separated(60, 1.0)
    est = auc_estimate(labels, margins, samples=1000, seed=2)
    assert est.value == pytest.approx(roc_auc_score(labels, margins))
    assert est.n == 120 and est.unit == "auc"
    assert est.low < est.value < est.high and est.high - est.low < 0.3
    assert auc_estimate(labels, margins, samples=1000, seed=2) == est  # seeded


def test_paired_auc_difference_matches_sklearn_and_is_seeded():
    from sklearn.metrics import roc_auc_score

    labels, a = _separated(40, 1.0)
    b = [m * -1.0 for m in a]  # the same scorer read backwards
    est = paired_auc_difference_estimate(labels, a, b, samples=1000, seed=3)
    assert est.value == pytest.approx(roc_auc_score(labels, a) - roc_auc_score(labels, b))
    assert est.n == 80 and est.unit == "auc"
    assert est.low < est.value < est.high
    assert paired_auc_difference_estimate(labels, a, b, samples=1000, seed=3) == est


def test_paired_auc_difference_resamples_both_scorers_together():
    import random

    labels, a = _separated(40, 1.0)
    rng = random.Random(7)
    b = [m + rng.gauss(0.0, 0.3) for m in a]  # nearly the same ranking as a
    paired = paired_auc_difference_estimate(labels, a, b, samples=1000, seed=1)
    alone = auc_estimate(labels, a, samples=1000, seed=1)
    # on the same resample the two AUCs move together, so their difference varies far less
    # than either AUC; resampling them apart would make it vary more (about sqrt(2) times)
    assert paired.high - paired.low < 0.5 * (alone.high - alone.low)
    same = paired_auc_difference_estimate(labels, a, a)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)


def test_paired_auc_difference_refuses_unpaired_input_and_one_class():
    with pytest.raises(ValueError, match="every pair"):
        paired_auc_difference_estimate([True, False], [1.0, 0.0], [1.0])
    one = paired_auc_difference_estimate([True, True], [1.0, 2.0], [2.0, 1.0])
    assert (one.value, one.low, one.high, one.n) == (None, None, None, 2)


def test_auc_hand_cases():
    # perfect ranking, inverted ranking, all ties
    assert auc_estimate([True, True, False], [3.0, 2.0, 1.0]).value == 1.0
    assert auc_estimate([True, False, False], [0.0, 1.0, 2.0]).value == 0.0
    assert auc_estimate([True, False], [1.0, 1.0]).value == 0.5
    # one class: undefined, never a guess
    one = auc_estimate([True, True], [1.0, 2.0])
    assert (one.value, one.low, one.high, one.n) == (None, None, None, 2)


def test_auc_interval_narrows_with_more_pairs():
    small = auc_estimate(*_separated(10, 1.0, seed=4), samples=800)
    large = auc_estimate(*_separated(200, 1.0, seed=4), samples=800)
    assert (large.high - large.low) < (small.high - small.low)


def test_balanced_accuracy_is_the_mean_of_recalls():
    labels = [True] * 8 + [False] * 2
    predictions = [True] * 8 + [True, False]  # harmful recall 1.0, harmless recall 0.5
    est = balanced_accuracy_estimate(labels, predictions, samples=500)
    assert est.value == pytest.approx(0.75) and est.n == 10
    assert est.low <= est.value <= est.high
    # a model that always says "harmful" scores 50 %, whatever the class mix
    always = balanced_accuracy_estimate(labels, [True] * 10, samples=500)
    assert always.value == pytest.approx(0.5)
    # one class present: its recall
    assert balanced_accuracy_estimate([True, True], [True, False]).value == pytest.approx(0.5)
    assert balanced_accuracy_estimate([], []).value is None


def test_estimate_of_one_item_is_a_point():
    est = estimate([4.0])
    assert (est.value, est.low, est.high, est.n) == (4.0, 4.0, 4.0, 1)


def test_difference_of_two_independent_means():
    from axolotl_mistake.evaluate.metrics import difference_estimate

    est = difference_estimate([1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0], samples=500, unit="rate")
    assert est.value == pytest.approx(0.75 - 1 / 3) and est.n == 7 and est.unit == "rate"
    assert est.low < est.value < est.high
    assert difference_estimate([1.0, 1.0], [0.0, 0.0]).low == 1.0  # nothing can vary
    assert difference_estimate([1.0, 0.0, 1.0], [0.0, 1.0], seed=3) == difference_estimate(
        [1.0, 0.0, 1.0], [0.0, 1.0], seed=3
    )
    with pytest.raises(ValueError, match="empty"):
        difference_estimate([], [1.0])


def test_balanced_accuracy_reads_numpy_and_integer_labels_like_sklearn():
    """Labels from an array (numpy bools) or 0/1 ints are the same classes as Python bools:
    nothing is dropped, and the value is sklearn's balanced accuracy."""
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score

    labels = [True, True, False, False, True, False, True]
    predictions = [True, False, False, True, True, False, True]
    expected = balanced_accuracy_score(labels, predictions)
    reference = balanced_accuracy_estimate(labels, predictions, samples=300)
    assert reference.value == pytest.approx(expected) and reference.n == 7
    for ys, ps in (
        (np.array(labels), np.array(predictions)),
        ([int(y) for y in labels], [int(p) for p in predictions]),
    ):
        est = balanced_accuracy_estimate(ys, ps, samples=300)
        assert est == reference


def test_kappa_treats_equal_verdicts_of_different_types_as_equal():
    """A numpy bool and a Python bool (or 1 and True) are the same verdict: identical verdicts
    are full agreement, as sklearn says on the plain values."""
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    a = [True, False, True, True, False, False]
    b = [True, False, False, True, False, True]
    expected = cohen_kappa_score(a, b)
    same = cohen_kappa(list(np.array(a)), a)
    assert (same.kappa, same.agreement, same.n) == (pytest.approx(1.0), 1.0, 6)
    mixed = cohen_kappa(list(np.array(a)), [int(v) for v in b])
    assert mixed.kappa == pytest.approx(expected)
    assert mixed.agreement == pytest.approx(4 / 6)


def test_labels_and_scores_of_different_lengths_are_an_error_not_a_truncation():
    from axolotl_mistake.evaluate.metrics import auc_estimate, balanced_accuracy_estimate

    with pytest.raises(ValueError):
        auc_estimate([True, False, True], [0.5, -0.5])
    with pytest.raises(ValueError):
        balanced_accuracy_estimate([True, False, True], [True, False])


def test_stratified_auc_is_the_auc_of_within_stratum_comparisons():
    from axolotl_mistake.evaluate.metrics import (
        auc_estimate,
        paired_auc_difference_estimate,
        stratified_auc_estimate,
    )

    rng = np.random.default_rng(0)
    labels = rng.random(60) < 0.4
    margins = rng.normal(size=60) + labels
    other = margins + rng.normal(size=60) * 0.3
    boot = {"samples": 400, "seed": 3}
    # one stratum: the plain AUC and the paired difference, intervals included
    assert stratified_auc_estimate(labels, margins, [0] * 60, **boot) == auc_estimate(
        labels, margins, **boot
    )
    assert stratified_auc_estimate(
        labels, margins, [0] * 60, other, **boot
    ) == paired_auc_difference_estimate(labels, margins, other, **boot)
    # three strata: the share of within-stratum comparisons ordered right
    strata = list(rng.integers(0, 3, 60))
    right = total = 0.0
    for s in range(3):
        inside = np.asarray(strata) == s
        pos, neg = margins[inside & labels], margins[inside & ~labels]
        right += (pos[:, None] > neg[None, :]).sum()
        total += pos.size * neg.size
    found = stratified_auc_estimate(labels, margins, strata, **boot)
    assert found.value == pytest.approx(right / total) and found.n == 60
    assert found.low <= found.value <= found.high


def test_a_scorer_of_the_strata_themselves_gains_nothing_within_them():
    from axolotl_mistake.evaluate.metrics import auc_estimate, stratified_auc_estimate

    # long answers are mostly harmful: length alone ranks well overall, at chance within
    length = np.array([10] * 10 + [100] * 10)
    labels = np.array([True] * 2 + [False] * 8 + [True] * 8 + [False] * 2)
    assert auc_estimate(labels, length, samples=200).value == pytest.approx(0.8)
    within = stratified_auc_estimate(labels, length, list(length), samples=200)
    assert within.value == pytest.approx(0.5)
    with pytest.raises(ValueError, match="every pair"):
        stratified_auc_estimate(labels, length, [0] * 19)
    one_label = stratified_auc_estimate(labels, length, list(labels), samples=200)
    assert one_label.value is None and one_label.n == 20  # no stratum holds both labels
