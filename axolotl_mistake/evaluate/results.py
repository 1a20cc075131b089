"""The typed results of an evaluation run: what results.json holds, read by report, charts and
`compare` alike, so a renamed field fails loudly in one place instead of printing "–".

Pydantic models only (no arithmetic, no I/O beyond `load_results`). `Estimate` is one number with
its interval and n; `Results` is a whole run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

RESULTS_FORMAT = "axolotl-mistake/eval-results/v2"
"""`format` of results.json; readers refuse anything else."""

OLDER_FORMATS = ("axolotl-mistake/eval-results/v1",)
"""Earlier formats: still recognised as this tool's runs (never overwritten without asking)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Estimate(_Model):
    """One metric: the point value, its bootstrap interval, and how many items it rests on.

    `n` counts the items used; `missing` those without a usable value (unparseable, failed or
    not measurable), which are excluded rather than guessed.
    """

    value: float | None
    low: float | None
    high: float | None
    n: int
    missing: int = 0
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Estimate:
        return cls.model_validate(data)

    def fmt(self, digits: int = 2, scale: float = 1.0) -> str:
        """'6.21 [5.90, 6.50] (n=40)' or '–' when there is no value."""
        if self.value is None:
            return "–"
        interval = ""
        if self.low is not None and self.high is not None:
            interval = f" [{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"
        return f"{self.value * scale:.{digits}f}{interval} (n={self.n})"


class Cell(Estimate):
    """A table cell: an estimate and who measured it (a judge label, 'rule', 'probe', ...)."""

    judge: str


class Kappa(_Model):
    """Cohen's kappa of two judges on one binary aspect; None when undefined."""

    kappa: float | None
    n: int
    agreement: float | None


class Calibration(_Model):
    """How a calibrated probe threshold was fixed: the cut with the best balanced accuracy
    on `n` training-side pairs (`harmful` of them harmful), probed before the scored pairs.
    `auc` and `balanced_accuracy` are on those calibration pairs, not held-out figures."""

    n: int
    harmful: int
    auc: float | None
    balanced_accuracy: float | None
    seconds: float


class Discrimination(_Model):
    """The discrimination probe: accuracy, balanced accuracy and ROC AUC with intervals.

    `threshold` is the margin cut of the verdicts: fixed in the config before the run, or, when
    `calibration` is set, fitted on training-side pairs in the same run before the scored pairs
    were probed. The AUC does not depend on it. Per-pair margins and labels are in `pairs_file`.
    """

    style: str
    threshold: float
    n: int
    accuracy: Estimate
    balanced_accuracy: Estimate
    auc: Estimate
    harmful_recall: float | None
    harmless_recall: float | None
    predicted_harmful_share: float | None
    seconds: float
    pairs_file: str
    calibration: Calibration | None = None


class Dropped(_Model):
    """Prompts not run because they would not fit the model's context: 'mode/set' -> count."""

    counts: dict[str, int] = Field(default_factory=dict)
    examples: list[str] = Field(default_factory=list)


class Failures(_Model):
    """Failed model calls (within the failure budget): counts per stage and a few messages."""

    calls: dict[str, int] = Field(default_factory=dict)
    failed: dict[str, int] = Field(default_factory=dict)
    examples: list[str] = Field(default_factory=list)


class Results(_Model):
    """One run's results.json."""

    format: str = RESULTS_FORMAT
    produced_by: str = "axolotl-mistake"
    name: str
    created: str
    config: dict[str, Any]
    primary_judge: str
    judges: list[str]
    modes: list[str]
    counts: dict[str, int]
    items_sha256: dict[str, str] = Field(default_factory=dict)
    """set -> sha256 of its items (`LoadedSets.digests`); empty in files written before it."""
    metrics: dict[str, dict[str, dict[str, Estimate]]]
    """mode -> metric -> judge (or 'rule', 'probe', 'likelihood') -> estimate."""
    headline: dict[str, dict[str, Cell | None]]
    """mode -> table column -> the cell shown (primary judge, else the first with a value)."""
    agreement: dict[str, dict[str, dict[str, Kappa]]]
    """mode -> aspect -> 'judge a vs judge b' -> kappa."""
    unparseable: dict[str, dict[str, dict[str, int]]]
    discrimination: Discrimination | None = None
    dropped: Dropped = Field(default_factory=Dropped)
    failures: Failures = Field(default_factory=Failures)
    notes: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    cache: dict[str, Any] = Field(default_factory=dict)
    platform: dict[str, str] = Field(default_factory=dict)
    charts: list[str] = Field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def bootstrap_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The bootstrap keyword arguments a run used (`samples`, `confidence`, `seed`), read from
    its results.json `config`, so that a figure recomputed from its per-item files later is
    resampled as the run's own were."""
    boot = config.get("bootstrap") or {}
    return {k: boot[k] for k in ("samples", "confidence", "seed") if k in boot}


def read_format(path: Path) -> str | None:
    """The `format` of a results.json, or None when it is not one of ours (or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fmt = data.get("format") if isinstance(data, dict) else None
    return fmt if fmt in (RESULTS_FORMAT, *OLDER_FORMATS) else None


def load_results(path: str | Path) -> Results:
    """results.json of a run folder (or the file itself); InputError if missing or foreign."""
    from axolotl_mistake.errors import InputError

    path = Path(path)
    file = path / "results.json" if path.is_dir() else path

    class _NotJSON(Exception):
        pass

    def no_constant(name: str) -> float:
        raise _NotJSON(name)

    try:
        data = json.loads(file.read_text(encoding="utf-8"), parse_constant=no_constant)
    except _NotJSON as exc:
        raise InputError(
            f"holds {exc}, which is not JSON (a run writes null for a value it could not "
            "measure): not a results.json this tool wrote",
            file=str(file),
        ) from exc
    except OSError as exc:
        raise InputError(f"cannot read results: {exc.strerror or exc}", file=str(file)) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", file=str(file), line=exc.lineno) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start}): not a "
            "results.json this tool wrote",
            file=str(file),
        ) from exc
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt in OLDER_FORMATS:
        raise InputError(
            f"written by an older version ({fmt}); rerun the evaluation (its caches make that "
            "cheap) to get the current format",
            file=str(file),
            field="format",
        )
    if fmt != RESULTS_FORMAT:
        raise InputError(
            f"not an evaluation results file (expected format {RESULTS_FORMAT!r})",
            file=str(file),
            field="format",
        )
    try:
        return Results.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(
            f"malformed results: {err['msg']}",
            file=str(file),
            field=".".join(str(p) for p in err["loc"]) or None,
        ) from exc
