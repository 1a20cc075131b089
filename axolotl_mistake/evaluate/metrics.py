"""Metric arithmetic: means, rates and differences of two means with n and a seeded percentile
bootstrap interval (`scipy.stats.bootstrap`), stratified intervals for balanced accuracy, ROC
AUC and the paired difference of two scorers' AUCs on the same pairs, and Cohen's kappa between
two judges (`sklearn.metrics.cohen_kappa_score`).

The libraries do the arithmetic; this module fixes the project's semantics around them: missing
values (None) are counted, never filled in; a sample whose resamples cannot vary (one item, or
all equal) has a point interval; kappa is None when it is undefined. Nothing here reads files
or calls models.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from axolotl_mistake.evaluate.results import Estimate, Kappa

MAX_PAIRS_PER_BATCH = 4_000_000
"""Bounds the memory of the vectorised AUC bootstrap (resamples x harmful x harmless cells)."""


def _check(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")


def _interval(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    resamples: int,
    confidence: float,
    seed: int,
    batch: int | None = None,
) -> tuple[float, float]:
    """Percentile interval of `statistic`, each sample resampled on its own (stratified)."""
    from scipy.stats import bootstrap

    if all(s.size < 2 or np.all(s == s[0]) for s in samples):
        point = float(statistic(*[s[None, :] for s in samples], axis=-1)[0])
        return point, point  # no resample can differ from the data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant stratum is fine: it just never varies
        res = bootstrap(
            tuple(samples) if all(s.size >= 2 for s in samples) else _padded(samples),
            statistic,
            n_resamples=resamples,
            confidence_level=confidence,
            method="percentile",
            vectorized=True,
            paired=False,
            axis=-1,
            batch=batch,
            rng=np.random.default_rng(seed),
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _padded(samples: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """scipy needs two observations per sample; a one-item stratum resamples to itself, so
    doubling it changes nothing."""
    return tuple(np.concatenate([s, s]) if s.size == 1 else s for s in samples)


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def bootstrap_interval(
    values: Sequence[float],
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (items resampled with replacement), seeded."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap of an empty sample")
    _check(confidence)
    return _interval([data], _mean, resamples=samples, confidence=confidence, seed=seed)


def estimate(
    values: Sequence[float | bool | None],
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    unit: str = "",
) -> Estimate:
    """Mean of the non-None values with a bootstrap interval; None values are counted as missing.

    Booleans give a rate (share of True).
    """
    present = [float(v) for v in values if v is not None]
    missing = len(values) - len(present)
    if not present:
        return Estimate(value=None, low=None, high=None, n=0, missing=missing, unit=unit)
    low, high = bootstrap_interval(present, samples=samples, confidence=confidence, seed=seed)
    return Estimate(
        value=float(np.mean(present)),
        low=low,
        high=high,
        n=len(present),
        missing=missing,
        unit=unit,
    )


def _difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def difference_estimate(
    a: Sequence[float],
    b: Sequence[float],
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    unit: str = "",
) -> Estimate:
    """mean(a) − mean(b) of two independent samples, each resampled on its own; n counts both."""
    _check(confidence)
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not x.size or not y.size:
        raise ValueError("difference of an empty sample")
    low, high = _interval([x, y], _difference, resamples=samples, confidence=confidence, seed=seed)
    value = float(x.mean() - y.mean())
    return Estimate(value=value, low=low, high=high, n=int(x.size + y.size), unit=unit)


def _balanced(*recalls: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean([np.mean(r, axis=axis) for r in recalls], axis=0)


def balanced_accuracy_estimate(
    labels: Sequence[bool],
    predictions: Sequence[bool],
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean of the per-class recalls, with an interval that resamples each class on its own.

    With one class present it is that class's recall (there is no other to balance).
    """
    _check(confidence)
    strata = [
        np.asarray(
            [
                bool(p) == bool(y)
                for p, y in zip(predictions, labels, strict=True)
                if bool(y) is cls
            ],
            dtype=float,
        )
        for cls in (True, False)
    ]
    strata = [s for s in strata if s.size]
    n = sum(s.size for s in strata)
    if not strata:
        return Estimate(value=None, low=None, high=None, n=0, unit="rate")
    value = float(_balanced(*[s[None, :] for s in strata])[0])
    low, high = _interval(strata, _balanced, resamples=samples, confidence=confidence, seed=seed)
    return Estimate(value=value, low=low, high=high, n=n, unit="rate")


def _auc(pos: np.ndarray, neg: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(harmful margin > harmless margin) + half the ties, over the last axis of each."""
    diff = pos[..., :, None] - neg[..., None, :]
    return np.mean((diff > 0) + 0.5 * (diff == 0), axis=(-2, -1))


def auc_estimate(
    labels: Sequence[bool],
    margins: Sequence[float],
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """ROC AUC of the margins (harmful = positive) with a stratified bootstrap interval.

    No value when one class is missing (the AUC is undefined); n counts the labelled
    (question, answer) pairs of both classes, not harmful x harmless comparisons.
    """
    _check(confidence)
    pos = np.asarray([m for m, y in zip(margins, labels, strict=True) if y], dtype=float)
    neg = np.asarray([m for m, y in zip(margins, labels, strict=True) if not y], dtype=float)
    n = len(labels)
    if not pos.size or not neg.size:
        return Estimate(value=None, low=None, high=None, n=n, unit="auc")
    value = float(_auc(pos, neg))
    batch = max(1, MAX_PAIRS_PER_BATCH // (pos.size * neg.size))
    low, high = _interval(
        [pos, neg], _auc, resamples=samples, confidence=confidence, seed=seed, batch=batch
    )
    return Estimate(value=value, low=low, high=high, n=n, unit="auc")


def paired_auc_difference_estimate(
    labels: Sequence[bool],
    margins_a: Sequence[float],
    margins_b: Sequence[float],
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """AUC(a) − AUC(b) of two scorers' margins on the same labelled pairs, with an interval
    that resamples the pairs (each class on its own, as `auc_estimate`) and scores both
    scorers on the same resample. Two separate AUC intervals cannot make this comparison:
    on shared pairs their errors are correlated, so they overlap where the paired difference
    may still be clear of 0 (or not). n counts the pairs, as in `auc_estimate`.
    """
    if not len(labels) == len(margins_a) == len(margins_b):
        raise ValueError("a paired AUC difference needs both scorers' margins on every pair")
    one = [0] * len(labels)  # one stratum: every (harmful, harmless) comparison counts
    return stratified_auc_estimate(
        labels, margins_a, one, margins_b, samples=samples, confidence=confidence, seed=seed
    )


def stratified_auc_estimate(
    labels: Sequence[bool],
    margins: Sequence[float],
    strata: Sequence[object],
    margins_b: Sequence[float] | None = None,
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """The AUC over (harmful, harmless) comparisons *within* each stratum only (e.g. answers of
    similar length), pooled: a scorer that ranks by what defines the strata gains nothing here.
    With `margins_b`, the paired difference of two scorers on it, both scored on each resample
    (`paired_auc_difference_estimate` is its one-stratum case). The interval resamples each
    (stratum, label) cell on its own, so every stratum keeps its comparisons' weight; strata
    with one label only have no comparison and are left out. n counts every pair.
    """
    _check(confidence)
    a = np.asarray(margins, dtype=float)
    b = None if margins_b is None else np.asarray(margins_b, dtype=float)
    if not len(labels) == a.size == len(strata) or (b is not None and b.size != a.size):
        raise ValueError("a stratified AUC needs a label, a margin and a stratum for every pair")
    harmful = np.asarray([bool(y) for y in labels], dtype=bool)
    cells: list[tuple[np.ndarray, np.ndarray]] = []  # (harmful, harmless) indices per stratum
    for stratum in dict.fromkeys(strata):
        inside = np.asarray([s == stratum for s in strata], dtype=bool)
        pos, neg = np.flatnonzero(inside & harmful), np.flatnonzero(inside & ~harmful)
        if pos.size and neg.size:
            cells.append((pos, neg))
    n = len(labels)
    if not cells:
        return Estimate(value=None, low=None, high=None, n=n, unit="auc")
    weights = np.asarray([p.size * q.size for p, q in cells], dtype=float)
    weights /= weights.sum()

    def pooled(scores: np.ndarray, idx: Sequence[np.ndarray]) -> np.ndarray:
        parts = [
            _auc(scores[pos[i.astype(int)]], scores[neg[j.astype(int)]])
            for (pos, neg), i, j in zip(cells, idx[0::2], idx[1::2])
        ]
        return np.tensordot(weights, np.asarray(parts), axes=1)

    def statistic(*idx: np.ndarray, axis: int = -1) -> np.ndarray:
        value = pooled(a, idx)
        return value if b is None else value - pooled(b, idx)

    index = [np.arange(c.size, dtype=float) for cell in cells for c in cell]
    largest = max(p.size * q.size for p, q in cells)
    batch = max(1, MAX_PAIRS_PER_BATCH // (2 * largest * len(cells)))
    low, high = _interval(
        index, statistic, resamples=samples, confidence=confidence, seed=seed, batch=batch
    )
    value = float(statistic(*[i[None, :] for i in index])[0])
    return Estimate(value=value, low=low, high=high, n=n, unit="auc")


def cohen_kappa(a: Sequence[object | None], b: Sequence[object | None]) -> Kappa:
    """Cohen's kappa between two judges' categorical verdicts on the same items.

    Items where either verdict is None (unparseable / not judged) are left out. kappa is None
    when there are no shared items, or when both judges give one and the same category
    throughout (chance agreement is then 1 and kappa is 0/0: two constant judges agreeing says
    nothing).
    """
    from sklearn.metrics import cohen_kappa_score

    if len(a) != len(b):
        raise ValueError("kappa needs two verdict lists of equal length")
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if not pairs:
        return Kappa(kappa=None, n=0, agreement=None)
    codes: dict[object, int] = {}  # by equality, so True, np.True_ and 1 are one category
    xs = [codes.setdefault(x, len(codes)) for x, _ in pairs]
    ys = [codes.setdefault(y, len(codes)) for _, y in pairs]
    agreement = float(np.mean([x == y for x, y in zip(xs, ys)]))
    if len(set(xs) | set(ys)) < 2:
        return Kappa(kappa=None, n=len(pairs), agreement=agreement)
    return Kappa(kappa=float(cohen_kappa_score(xs, ys)), n=len(pairs), agreement=agreement)
