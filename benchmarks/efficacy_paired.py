"""Paired comparisons of two evaluation runs on the same items, read from the runs' own files.

Two arms evaluated on the same held-out pairs or prompts have correlated errors: their separate
95 % intervals overlap where the paired difference may be clear of 0 (AUC), or look apart where
one answer is the whole difference (a rate of 1 in 120). Each difference here resamples the
shared items once for both runs, with the first run's bootstrap settings from its results.json.
Runs that scored different items are not a paired comparison: ValueError, never a figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from axolotl_mistake.evaluate.results import Estimate

PairMargins = dict[str, tuple[bool, float]]
"""{pair key: (harmful, margin)} of one evaluation run's discrimination pairs."""


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _bootstrap(run: Path) -> dict[str, Any]:
    """The run's bootstrap settings (samples, confidence, seed) from its results.json."""
    boot = json.loads((run / "results.json").read_text())["config"]["bootstrap"]
    return {key: boot[key] for key in ("samples", "confidence", "seed")}


def pair_margins(run: Path, pairs_file: str = "discrimination_pairs.jsonl") -> PairMargins:
    """The run's per-pair labels and margins, by the evaluation's pair key."""
    pairs = _jsonl(run / pairs_file)
    found = {p["key"]: (bool(p["harmful"]), float(p["margin"])) for p in pairs}
    if len(found) != len(pairs):
        raise ValueError(f"{run / pairs_file}: a pair key appears twice")
    return found


def paired_auc_gain(arm: PairMargins, reference: PairMargins, **bootstrap: Any) -> Estimate:
    """AUC(arm) − AUC(reference) on the same pairs, both scored on each resample
    (`paired_auc_difference_estimate`). Runs that scored different labelled pairs are not a
    paired comparison: ValueError."""
    from axolotl_mistake.evaluate.metrics import paired_auc_difference_estimate

    if arm.keys() != reference.keys() or any(arm[k][0] != reference[k][0] for k in arm):
        raise ValueError("the two runs scored different labelled pairs: rerun them")
    keys = sorted(arm)
    return paired_auc_difference_estimate(
        [arm[k][0] for k in keys],
        [arm[k][1] for k in keys],
        [reference[k][1] for k in keys],
        **bootstrap,
    )


def paired_auc_gain_of_runs(run: Path, reference: Path) -> Estimate:
    """`paired_auc_gain` of two evaluation run folders: each run's pairs file as its
    results.json names it, resampled with `run`'s bootstrap settings."""

    def pairs_file(folder: Path) -> str:
        results = json.loads((folder / "results.json").read_text())
        return results["discrimination"]["pairs_file"]

    return paired_auc_gain(
        pair_margins(run, pairs_file(run)),
        pair_margins(reference, pairs_file(reference)),
        **_bootstrap(run),
    )


def item_verdicts(run: Path, prompt_set: str, mode: str, aspect: str) -> dict[str, bool | None]:
    """{item id: verdict} of one prompt set and inference mode of a run's answers.jsonl, by the
    run's primary judge (None where it gave none: an unparseable or failed judgement)."""
    judge = json.loads((run / "results.json").read_text())["primary_judge"]
    found: dict[str, bool | None] = {}
    for row in _jsonl(run / "answers.jsonl"):
        if row.get("set") != prompt_set or row.get("mode") != mode:
            continue
        if row["id"] in found:
            raise ValueError(f"{run / 'answers.jsonl'}: item {row['id']!r} appears twice")
        verdict = ((row.get("verdicts") or {}).get(judge) or {}).get(aspect) or {}
        value = verdict.get("value")
        found[row["id"]] = None if value is None else bool(value)
    return found


def paired_rate_gain_of_runs(
    run: Path, reference: Path, prompt_set: str, mode: str, aspect: str
) -> Estimate:
    """rate(run) − rate(reference) of one verdict (e.g. the refusal judge's harmless verdict on
    the red-team prompts) over the items both runs judged: the mean of the per-item differences,
    bootstrapped over items, so one answer that differs moves it by 1/n and the interval says
    how often that happens by chance. n counts the items both judged; an item either run left
    unjudged is counted as missing."""
    from axolotl_mistake.evaluate.metrics import estimate

    a = item_verdicts(run, prompt_set, mode, aspect)
    b = item_verdicts(reference, prompt_set, mode, aspect)
    if a.keys() != b.keys():
        raise ValueError(f"the two runs answered different {prompt_set!r} items: rerun them")
    differences = [
        None if a[k] is None or b[k] is None else float(a[k]) - float(b[k]) for k in sorted(a)
    ]
    return estimate(differences, unit="rate", **_bootstrap(run))


def item_nlls(run: Path, mode: str) -> dict[str, float] | None:
    """{item id: NLL of its reference answer} of one inference mode, from the run's per-item
    NLL file (`NLL_FILE`); None for a run without one (evaluated before the harness wrote it,
    or without the NLL measure)."""
    from axolotl_mistake.evaluate.local import NLL_FILE

    if not (run / NLL_FILE).exists():
        return None
    found: dict[str, float] = {}
    for row in _jsonl(run / NLL_FILE):
        if row["mode"] != mode:
            continue
        if row["id"] in found:
            raise ValueError(f"{run / NLL_FILE}: item {row['id']!r} appears twice")
        found[row["id"]] = float(row["nll"])
    return found


def paired_nll_gap_of_runs(run: Path, reference: Path, mode: str) -> Estimate | None:
    """NLL(run) − NLL(reference) of the same reference answers: the mean of the per-item
    differences, bootstrapped over items (what `efficacy_nll_positions.py` computes, read from
    the runs instead of scoring again). None when either run has no per-item NLL file."""
    from axolotl_mistake.evaluate.metrics import estimate

    a, b = item_nlls(run, mode), item_nlls(reference, mode)
    if a is None or b is None:
        return None
    if a.keys() != b.keys():
        raise ValueError("the two runs scored different helpful references: rerun them")
    return estimate([a[k] - b[k] for k in sorted(a)], unit="nll", **_bootstrap(run))
