"""Paired differences between two evaluation runs of the same items, read from their folders.

Two models evaluated on the same red-team prompts, references and labelled pairs have
correlated errors: their separate 95 % intervals overlap where the difference may still be
clear of 0 (an AUC gain), or look apart where one answer is the whole difference (1 refusal in
120). A paired difference resamples the shared items once for both runs: the mean of the
per-item differences for judged rates and scores, rule rates and the reference NLL, and both
runs' AUC on each stratified resample of the pairs for the probe's AUC
(`paired_auc_difference_estimate`). It reads what a run folder keeps per item: answers.jsonl
(verdicts), the pairs file and helpful_nll.jsonl. Runs that scored different items are not a
paired comparison: InputError naming the run and the column, never a figure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from axolotl_mistake.evaluate.inference import Answer
from axolotl_mistake.evaluate.local import NLL_FILE
from axolotl_mistake.evaluate.metric_table import BY_NAME, TABLE_COLUMNS
from axolotl_mistake.evaluate.results import Estimate, Results, bootstrap_settings, load_results

PAIRED_COLUMNS: tuple[str, ...] = tuple(
    c
    for c in TABLE_COLUMNS
    if BY_NAME[c].aspect or BY_NAME[c].by == "rule" or c in ("helpful_nll", "discrimination_auc")
)
"""The table columns a paired difference exists for: the judged ones (one verdict or score per
answer), the rule ones, the reference NLL and the probe's AUC. Accuracy at a cut is left out:
two runs' cuts differ."""

PairMargins = dict[str, tuple[bool, float]]
"""{pair key: (harmful, margin)} of one run's discrimination pairs."""


def folder(run: str | Path) -> Path:
    """The run folder of a folder or its results.json."""
    path = Path(run)
    return path.parent if path.is_file() else path


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pair_margins(run: str | Path, pairs_file: str | None = None) -> PairMargins:
    """The run's per-pair labels and margins by the evaluation's pair key (the pairs file its
    results.json names, unless `pairs_file` is given)."""
    from axolotl_mistake.errors import InputError

    if pairs_file is None:
        disc = load_results(run).discrimination
        if disc is None:
            raise InputError(
                "the run probed no labelled pairs", file=str(run), field="discrimination"
            )
        pairs_file = disc.pairs_file
    path = folder(run) / pairs_file
    pairs = _jsonl(path)
    found = {p["key"]: (bool(p["harmful"]), float(p["margin"])) for p in pairs}
    if len(found) != len(pairs):
        raise InputError("a pair key appears twice", file=str(path), field="key")
    return found


def paired_auc_gain(arm: PairMargins, reference: PairMargins, **bootstrap: Any) -> Estimate:
    """AUC(arm) − AUC(reference) on the same pairs, both scored on each resample. Margins of
    different labelled pairs are not a paired comparison: ValueError."""
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


class _RunFiles:
    """One run folder's results.json and per-item files, each read at most once, so a table of
    paired columns reads every file once, not once per column."""

    def __init__(self, run: str | Path) -> None:
        self.run, self.where = run, folder(run)
        self._rows: dict[str, list[dict[str, Any]] | None] = {}

    @cached_property
    def results(self) -> Results:
        return load_results(self.run)

    def rows(self, name: str) -> list[dict[str, Any]] | None:
        """The file's JSON lines; None when the run has no such file."""
        if name not in self._rows:
            path = self.where / name
            self._rows[name] = _jsonl(path) if path.exists() else None
        return self._rows[name]


def item_values(
    run: str | Path, column: str, mode: str, judge: str | None
) -> dict[str, float | None] | None:
    """{item id: value} of one column in one mode, as the run's metric averaged them
    (`scoring.metric_values`: a failed answer or an unparseable verdict is None); None when the
    run kept no per-item values for it (a run evaluated before helpful_nll.jsonl was written, or
    without that measure)."""
    return _item_values(_RunFiles(run), column, mode, judge)


def _item_values(
    files: _RunFiles, column: str, mode: str, judge: str | None
) -> dict[str, float | None] | None:
    from axolotl_mistake.evaluate.judges import Verdict
    from axolotl_mistake.evaluate.scoring import metric_values

    spec = BY_NAME[column]
    if column == "helpful_nll":
        nll = files.rows(NLL_FILE)
        return None if nll is None else {r["id"]: float(r["nll"]) for r in nll if r["mode"] == mode}
    every = files.rows("answers.jsonl")
    if every is None:
        return None
    rows = [r for r in every if r.get("mode") == mode]
    answers = [Answer(**{k: r.get(k) for k in Answer.__dataclass_fields__}) for r in rows]
    table = {}  # the judge's verdicts on this aspect, as the run judged them
    for r in rows:
        verdict = ((r.get("verdicts") or {}).get(judge) or {}).get(spec.aspect or "")
        if verdict:
            table[r["id"]] = Verdict(verdict.get("value"), verdict.get("status", ""))
    return {
        item_id: None if value is None else float(value)
        for item_id, value in metric_values(spec, answers, table)
    }


def paired_difference(
    run: str | Path,
    reference: str | Path,
    column: str,
    mode: str = "plain",
    judge: str | None = None,
) -> Estimate | None:
    """`column` of `run` minus that of `reference` on the items both scored, paired (the module
    docstring), with `run`'s bootstrap settings; None where the runs kept nothing per item for
    it or one of them did not measure it. `judge` names the judge of judged columns (default:
    the one `run`'s headline read). Different items: InputError."""
    return paired_differences(run, reference, (column,), mode, judge)[column]


def paired_differences(
    run: str | Path,
    reference: str | Path,
    columns: Sequence[str] = PAIRED_COLUMNS,
    mode: str = "plain",
    judge: str | None = None,
) -> dict[str, Estimate | None]:
    """`paired_difference` of each of `columns`, reading each run's files once."""
    for column in columns:
        if column not in PAIRED_COLUMNS:
            raise ValueError(f"no paired difference for {column!r}; choose from {PAIRED_COLUMNS}")
    ours, theirs = _RunFiles(run), _RunFiles(reference)
    return {c: _paired_difference(ours, theirs, c, mode, judge) for c in columns}


def _paired_difference(
    ours: _RunFiles, theirs: _RunFiles, column: str, mode: str, judge: str | None
) -> Estimate | None:
    from axolotl_mistake.errors import InputError
    from axolotl_mistake.evaluate.metrics import estimate

    mine, other = ours.results, theirs.results
    cells = [(r.headline.get(mode) or {}).get(column) for r in (mine, other)]
    if any(c is None or c.value is None for c in cells):
        return None
    boot = bootstrap_settings(mine.config)
    if column == "discrimination_auc":
        disc = mine.discrimination, other.discrimination
        if disc[0] is None or disc[1] is None:  # no pairs file to pair
            return None
        try:
            margins = (
                pair_margins(ours.run, disc[0].pairs_file),
                pair_margins(theirs.run, disc[1].pairs_file),
            )
            return paired_auc_gain(*margins, **boot)
        except ValueError as exc:
            raise InputError(str(exc), file=str(ours.run), field=column) from None
    who = judge or cells[0].judge
    a, b = (_item_values(files, column, mode, who) for files in (ours, theirs))
    if a is None or b is None:
        return None
    if a.keys() != b.keys():
        raise InputError(
            f"not the items of {theirs.run} ({len(a)} against {len(b)}): no paired difference",
            file=str(ours.run),
            field=column,
        )
    diffs = [None if a[k] is None or b[k] is None else a[k] - b[k] for k in sorted(a)]
    return estimate(diffs, unit=BY_NAME[column].unit, **boot)
