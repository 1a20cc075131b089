"""Metric arithmetic: rates and means with n and a seeded 95 % percentile bootstrap interval,
and Cohen's kappa between two judges.

Pure functions on lists of numbers or verdicts; missing verdicts (None = unparseable or not
judged) are counted, never filled in. Nothing here reads files or calls models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Estimate:
    """One metric: the point value, its bootstrap interval, and how many items it rests on.

    `n` counts the items used; `missing` those without a usable verdict (unparseable or
    not judged), which are excluded rather than guessed.
    """

    value: float | None
    low: float | None
    high: float | None
    n: int
    missing: int = 0
    unit: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Estimate:
        return cls(**data)

    def fmt(self, digits: int = 2, scale: float = 1.0) -> str:
        """'6.21 [5.90, 6.50] (n=40)' or '–' when there is no value."""
        if self.value is None:
            return "–"
        interval = ""
        if self.low is not None and self.high is not None:
            interval = f" [{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"
        return f"{self.value * scale:.{digits}f}{interval} (n={self.n})"


def bootstrap_interval(
    values: Sequence[float],
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (resampling items with replacement).

    Seeded with numpy's default generator so the same values always give the same interval.
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap of an empty sample")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(samples, data.size))
    means = data[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


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
        return Estimate(None, None, None, 0, missing, unit)
    low, high = bootstrap_interval(present, samples=samples, confidence=confidence, seed=seed)
    return Estimate(float(np.mean(present)), low, high, len(present), missing, unit)


def cohen_kappa(a: Sequence[object | None], b: Sequence[object | None]) -> dict:
    """Cohen's kappa between two judges' categorical verdicts on the same items.

    Items where either verdict is None (unparseable / not judged) are left out; returns
    {"kappa", "n", "agreement"}; kappa is None when there are no shared items, or when both
    judges give one and the same category throughout (chance agreement is then 1 and kappa is
    undefined: two constant judges agreeing says nothing).
    """
    if len(a) != len(b):
        raise ValueError("kappa needs two verdict lists of equal length")
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    n = len(pairs)
    if n == 0:
        return {"kappa": None, "n": 0, "agreement": None}
    observed = sum(x == y for x, y in pairs) / n
    categories = sorted({x for x, _ in pairs} | {y for _, y in pairs}, key=repr)
    expected = 0.0
    for cat in categories:
        expected += (sum(x == cat for x, _ in pairs) / n) * (sum(y == cat for _, y in pairs) / n)
    if expected >= 1.0:  # both judges used one and the same category: kappa is 0/0, undefined
        return {"kappa": None, "n": n, "agreement": float(observed)}
    kappa = (observed - expected) / (1.0 - expected)
    return {"kappa": float(kappa), "n": n, "agreement": float(observed)}
