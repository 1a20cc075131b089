"""Markdown reports: one run's report.md and the side-by-side table of `compare`.

Renders from the results dict only (what results.json holds), so a report can be rebuilt
from files. Never recomputes a metric and never drops the n or the interval of a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from axolotl_mistake.evaluate.metrics import Estimate

METRIC_LABELS = {
    "helpful_score": "helpful score",
    "harmless_score": "harmless score",
    "harmless_rate": "harmless rate %",
    "helpful_on_harmful": "helpful on harmful",
    "goal_hijack_defence": "goal-hijack defence %",
    "discrimination": "discrimination %",
    "over_refusal": "over-refusal %",
    "contrast_refusal": "refusal on XSTest contrast (unsafe) prompts %",
}
RATE_METRICS = {
    "harmless_rate",
    "goal_hijack_defence",
    "discrimination",
    "over_refusal",
    "contrast_refusal",
}
TABLE_COLUMNS = (
    "helpful_score",
    "harmless_score",
    "harmless_rate",
    "helpful_on_harmful",
    "goal_hijack_defence",
    "discrimination",
    "over_refusal",
)


def cell(entry: dict | None, metric: str, with_n: bool = True) -> str:
    """'72.4 [65.0, 79.1] n=80' for rates (as %), '7.41 [7.0, 7.8] n=80' for scores; '–' if none."""
    if not entry or entry.get("value") is None:
        return "–"
    est = Estimate(**{k: entry[k] for k in ("value", "low", "high", "n", "missing", "unit")})
    rate = metric in RATE_METRICS
    scale, digits = (100.0, 1) if rate else (1.0, 2)
    text = f"{est.value * scale:.{digits}f}"
    if est.low is not None and est.high is not None:
        text += f" [{est.low * scale:.{digits}f}, {est.high * scale:.{digits}f}]"
    if with_n:
        text += f" n={est.n}"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def render_run_report(results: dict[str, Any]) -> str:
    """report.md of one run: headline per mode, every judge's numbers, agreement, notes."""
    cfg = results.get("config", {})
    model = cfg.get("model", {})
    out = [
        f"# Evaluation: {results['name']}",
        "",
        f"- model: `{model.get('kind')}` `{model.get('model')}`"
        + (f" + adapter `{model['adapter']}`" if model.get("adapter") else ""),
        f"- prompt format: {cfg.get('prompt_format')}; modes: {', '.join(results['modes'])}",
        f"- judges: {', '.join(results['judges'])} (headline judge: {results['primary_judge']})",
        "- prompts: " + ", ".join(f"{k} {v}" for k, v in results["counts"].items()),
        f"- created {results['created']}; wall time {results['timings'].get('total_s', 0):.0f} s",
        "",
        "Every number: point value, 95 % bootstrap interval in brackets, n = items with a usable",
        "verdict (unparseable or failed verdicts are excluded and counted below, never guessed).",
        "Rates are in %. Scores are 1–10.",
        "",
        "## Headline (paper-table layout)",
        "",
    ]
    header = ["mode"] + [METRIC_LABELS[c] for c in TABLE_COLUMNS]
    rows = []
    for mode in results["modes"]:
        row = results["headline"][mode]
        rows.append([mode] + [cell(row.get(c), c) for c in TABLE_COLUMNS])
    out += _table(header, rows)
    judges_used = {
        c: results["headline"][results["modes"][0]][c]["judge"]
        for c in TABLE_COLUMNS
        if results["headline"][results["modes"][0]].get(c)
    }
    out += [
        "",
        "Judge behind each column: "
        + ", ".join(f"{METRIC_LABELS[c]} ← {j}" for c, j in judges_used.items()),
        "",
    ]

    out += ["## All judges", ""]
    for mode in results["modes"]:
        metrics = results["metrics"][mode]
        out += [f"### {mode}", ""]
        rows = []
        for metric, per_judge in metrics.items():
            for judge, entry in per_judge.items():
                rows.append(
                    [
                        METRIC_LABELS.get(metric, metric),
                        judge,
                        cell(entry, metric),
                        str(entry.get("missing", 0)),
                    ]
                )
        out += _table(["metric", "judge", "value [95 % CI] n", "missing"], rows) + [""]

    if results.get("discrimination"):
        d = results["discrimination"]
        out += [
            "## Discrimination probe",
            "",
            (
                f"Accuracy {cell(d, 'discrimination')} on labelled pairs (style {d.get('style')}); "
                f"balanced accuracy {_pct(d.get('balanced_accuracy'))}, harmful recall "
                f"{_pct(d.get('harmful_recall'))}, harmless recall {_pct(d.get('harmless_recall'))}, "
                f"share predicted harmful {_pct(d.get('predicted_harmful_share'))}."
            ),
            "",
        ]

    agreement_rows = []
    for mode, per_aspect in results.get("agreement", {}).items():
        for aspect, pairs in per_aspect.items():
            for pair, k in pairs.items():
                kappa = "–" if k["kappa"] is None else f"{k['kappa']:.3f}"
                agree = "–" if k["agreement"] is None else f"{100 * k['agreement']:.1f} %"
                agreement_rows.append([mode, aspect, pair, kappa, agree, str(k["n"])])
    if agreement_rows:
        out += ["## Judge agreement (Cohen's kappa)", ""]
        out += _table(
            ["mode", "verdict", "judges", "kappa", "raw agreement", "n"], agreement_rows
        ) + [""]

    unparse_rows = [
        [mode, judge, aspect, str(count)]
        for mode, per_judge in results.get("unparseable", {}).items()
        for judge, per_aspect in per_judge.items()
        for aspect, count in per_aspect.items()
        if count
    ]
    if unparse_rows:
        out += ["## Unparseable judge replies", ""]
        out += _table(["mode", "judge", "aspect", "count"], unparse_rows) + [""]

    if results.get("charts"):
        out += ["## Charts", ""] + [f"![{name}]({name})" for name in results["charts"]] + [""]
    if results.get("notes"):
        out += ["## Notes", ""] + [f"- {note}" for note in results["notes"]] + [""]
    out += [
        "## How to read this",
        "",
        "- harmless rate: share of answers to red-team prompts the judge calls harmless.",
        "- goal-hijack defence: share of attack answers that do not contain the injected target",
        "  text (normalised: case, spaces and punctuation ignored). Quoting the target while",
        "  refusing counts as a successful attack, so this errs low.",
        "- over-refusal: share of XSTest *safe* prompts the judge calls a refusal.",
        "- the `refusal` judge is a phrase list: it calls every refusal harmless and every",
        "  non-refusal harmful, whatever the content.",
        "",
    ]
    return "\n".join(out)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def render_compare_report(
    runs: Sequence[dict[str, Any]], mode: str, judge: str | None, charts: Sequence[str]
) -> str:
    """compare.md: one row per run in the paper's table layout."""
    header = ["method"] + [METRIC_LABELS[c] for c in TABLE_COLUMNS]
    rows = []
    for res in runs:
        row = compare_row(res, mode, judge)
        rows.append([res["name"]] + [cell(row.get(c), c) for c in TABLE_COLUMNS])
    out = [
        "# Comparison",
        "",
        f"Mode: {mode}; judge: {judge or 'each run’s headline judge'}. 95 % bootstrap intervals in",
        "brackets, n = items with a usable verdict. Rates in %, scores 1–10.",
        "",
    ]
    out += _table(header, rows) + [""]
    sources = []
    for res in runs:
        row = compare_row(res, mode, judge)
        used = ", ".join(
            f"{METRIC_LABELS[c]} ← {row[c]['judge']}" for c in TABLE_COLUMNS if row.get(c)
        )
        sources.append(f"- {res['name']}: {used}")
    out += ["Judges behind the numbers:", ""] + sources + [""]
    out += [f"![{c}]({c})" for c in charts] + [""]
    return "\n".join(out)


def compare_row(results: dict[str, Any], mode: str, judge: str | None) -> dict[str, Any]:
    """The table row of one run: a chosen judge's numbers, else the run's headline."""
    if mode not in results.get("headline", {}):
        raise KeyError(
            f"run {results.get('name')!r} has no mode {mode!r} (has {results.get('modes')})"
        )
    row = dict(results["headline"][mode])
    if judge:
        metrics = results["metrics"][mode]
        for column in TABLE_COLUMNS:
            if column in ("discrimination", "goal_hijack_defence"):
                continue
            entry = metrics.get(column, {}).get(judge)
            row[column] = {"judge": judge, **entry} if entry else None
    return row
