"""Markdown reports: one run's report.md and the side-by-side table of `compare`.

Renders from the typed results only (what results.json holds), so a report can be rebuilt from
files; columns and labels come from the metric table. Never recomputes a metric and never drops
the n or the interval of a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from axolotl_mistake.evaluate.metric_table import BY_NAME, METRICS, TABLE_COLUMNS
from axolotl_mistake.evaluate.results import Cell, Estimate, Results


def label(metric: str) -> str:
    """The column label of a metric (its name when it is not in the table)."""
    spec = BY_NAME.get(metric)
    return spec.label if spec else metric


def cell(entry: Estimate | None, metric: str, with_n: bool = True) -> str:
    """'72.4 [65.0, 79.1] n=80' for rates (as %), '7.41 [7.00, 7.80] n=80' for scores; '–' if none."""
    if entry is None or entry.value is None:
        return "–"
    style = BY_NAME[metric].style if metric in BY_NAME else None
    scale, digits = (style.scale, style.digits) if style else (1.0, 3)
    text = f"{entry.value * scale:.{digits}f}"
    if entry.low is not None and entry.high is not None:
        text += f" [{entry.low * scale:.{digits}f}, {entry.high * scale:.{digits}f}]"
    if with_n:
        text += f" n={entry.n}"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _sources(row: dict[str, Cell | None]) -> str:
    return ", ".join(f"{label(c)} ← {row[c].judge}" for c in TABLE_COLUMNS if row.get(c))


def render_run_report(results: Results) -> str:
    """report.md of one run: headline per mode, every judge's numbers, agreement, notes."""
    cfg = results.config
    model = cfg.get("model", {})
    out = [
        f"# Evaluation: {results.name}",
        "",
        f"- model: `{model.get('kind')}` `{model.get('model')}`"
        + (f" + adapter `{model['adapter']}`" if model.get("adapter") else ""),
        f"- prompt format: {cfg.get('prompt_format')}; modes: {', '.join(results.modes)}",
        f"- judges: {', '.join(results.judges)} (headline judge: {results.primary_judge})",
        "- prompts: " + ", ".join(f"{k} {v}" for k, v in results.counts.items()),
        f"- created {results.created}; wall time {results.timings.get('total_s', 0):.0f} s",
        "",
        "Every number: point value, 95 % bootstrap interval in brackets, n = items with a usable",
        "value (unparseable or failed verdicts are excluded and counted below, never guessed).",
        "Rates are in %. Scores are 1–10. The reference NLL is in nats per token (lower is better).",
        "",
        "## Headline (paper-table layout)",
        "",
    ]
    header = ["mode"] + [label(c) for c in TABLE_COLUMNS]
    rows = [
        [mode] + [cell(results.headline[mode].get(c), c) for c in TABLE_COLUMNS]
        for mode in results.modes
    ]
    out += _table(header, rows)
    sources = {mode: _sources(results.headline[mode]) for mode in results.modes}
    if len(set(sources.values())) == 1:
        out += ["", "Who measured each column: " + sources[results.modes[0]], ""]
    else:  # a fallback judge in one mode only: name it in that mode's line
        out += ["", "Who measured each column:", ""]
        out += [f"- {mode}: {text}" for mode, text in sources.items()] + [""]

    out += ["## All judges", ""]
    for mode in results.modes:
        out += [f"### {mode}", ""]
        rows = [
            [label(metric), judge, cell(entry, metric), str(entry.missing)]
            for metric, per_judge in results.metrics[mode].items()
            for judge, entry in per_judge.items()
        ]
        out += _table(["metric", "judge", "value [95 % CI] n", "missing"], rows) + [""]

    d = results.discrimination
    if d is not None:
        c = d.calibration
        how = (
            "fixed before the run"
            if c is None
            else f"calibrated on {c.n} training-side pairs ({c.harmful} harmful) before these "
            f"pairs were probed; on them AUC {_num(c.auc)}, balanced accuracy "
            f"{_pct(c.balanced_accuracy)}"
        )
        summary = (
            f"Style `{d.style}`, threshold {d.threshold:.3g} ({how}), {d.n} pairs: "
            f"accuracy {cell(d.accuracy, 'discrimination')}, balanced accuracy "
            f"{cell(d.balanced_accuracy, 'discrimination_balanced')}, ROC AUC "
            f"{cell(d.auc, 'discrimination_auc')}; harmful recall {_pct(d.harmful_recall)}, "
            f"harmless recall {_pct(d.harmless_recall)}, share predicted harmful "
            f"{_pct(d.predicted_harmful_share)}. Per-pair margins and labels: `{d.pairs_file}`."
        )
        out += ["## Discrimination probe", "", summary, ""]

    agreement_rows = [
        [
            mode,
            aspect,
            pair,
            "–" if k.kappa is None else f"{k.kappa:.3f}",
            "–" if k.agreement is None else f"{100 * k.agreement:.1f} %",
            str(k.n),
        ]
        for mode, per_aspect in results.agreement.items()
        for aspect, pairs in per_aspect.items()
        for pair, k in pairs.items()
    ]
    if agreement_rows:
        out += ["## Judge agreement (Cohen's kappa)", ""]
        out += _table(
            ["mode", "verdict", "judges", "kappa", "raw agreement", "n"], agreement_rows
        ) + ["", "kappa '–': undefined (no shared verdicts, or both judges constant).", ""]

    unparse_rows = [
        [mode, judge, aspect, str(count)]
        for mode, per_judge in results.unparseable.items()
        for judge, per_aspect in per_judge.items()
        for aspect, count in per_aspect.items()
        if count
    ]
    if unparse_rows:
        out += ["## Unparseable judge replies", ""]
        out += _table(["mode", "judge", "aspect", "count"], unparse_rows) + [""]

    failed_rows = [
        [stage, str(n), str(results.failures.calls.get(stage, 0))]
        for stage, n in results.failures.failed.items()
        if n
    ]
    if failed_rows:
        out += ["## Failed model calls (within the failure budget)", ""]
        out += _table(["stage", "failed", "calls"], failed_rows)
        out += [""] + [f"- {e}" for e in results.failures.examples] + [""]
    if results.dropped.counts:
        out += ["## Prompts dropped (longer than the model's context; never run)", ""]
        out += _table(
            ["mode/set", "dropped"], [[k, str(v)] for k, v in results.dropped.counts.items()]
        )
        out += [""]

    if results.charts:
        out += ["## Charts", ""] + [f"![{name}]({name})" for name in results.charts] + [""]
    if results.notes:
        out += ["## Notes", ""] + [f"- {note}" for note in results.notes] + [""]
    out += ["## How to read this", ""]
    out += [f"- {m.label}: {m.how}." for m in METRICS if m.how]
    out += [
        "- the `refusal` judge is a phrase list: it calls every refusal harmless and every",
        "  non-refusal harmful, whatever the content. Goal-hijack answers that quote the target",
        "  while refusing count as hijacked, so the defence rate errs low.",
        "",
    ]
    return "\n".join(out)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def render_compare_report(
    runs: Sequence[Results],
    mode: str,
    judge: str | None,
    charts: Sequence[str],
    paired: tuple[str, dict[str, dict[str, Any]]] | None = None,
) -> str:
    """compare.md: one row per run in the paper's table layout; with `paired` (the reference
    run's name, each other run's paired differences), a second table of those differences."""
    header = ["method"] + [label(c) for c in TABLE_COLUMNS]
    table_rows = [(res.name, compare_row(res, mode, judge)) for res in runs]
    rows = [[name] + [cell(row.get(c), c) for c in TABLE_COLUMNS] for name, row in table_rows]
    out = [
        "# Comparison",
        "",
        f"Mode: {mode}; judge: {judge or 'each run’s headline judge'}. 95 % bootstrap intervals in",
        "brackets, n = items with a usable value. Rates in %, scores 1–10, AUC 0–1 (0.5 = chance),",
        "reference NLL in nats per token (lower is better).",
        "",
    ]
    out += _table(header, rows) + [""]
    if paired is not None:
        out += _paired_table(*paired)
    out += _different_items(runs)
    out += ["Who measured the numbers:", ""]
    out += [f"- {name}: {_sources(row)}" for name, row in table_rows] + [""]
    cuts = [_probe_cut(res) for res in runs if res.discrimination is not None]
    if cuts:
        out += ["Discrimination accuracy is read at each run's probe cut:", ""]
        out += [f"- {cut}" for cut in cuts] + [""]
    out += [f"![{c}]({c})" for c in charts] + [""]
    return "\n".join(out)


def _paired_table(reference: str, differences: dict[str, dict[str, Any]]) -> list[str]:
    """Each run's column minus the reference run's on the items both scored, resampled together
    (rates in points, AUC and NLL as they are); '–' where no pairing exists."""
    from axolotl_mistake.evaluate.paired import PAIRED_COLUMNS

    columns = [c for c in PAIRED_COLUMNS if any(d.get(c) for d in differences.values())]
    header = ["method"] + [label(c) for c in columns]
    rows = [
        [name] + [cell(Estimate(**d[c]) if d.get(c) else None, c) for c in columns]
        for name, d in differences.items()
    ]
    return [
        f"Paired differences from {reference} (this run minus {reference} on the same items,",
        "resampled together; an interval clear of 0 is a difference the separate intervals",
        "above may not show):",
        "",
        *_table(header, rows),
        "",
    ]


def _same_items(run: Results, first: Results) -> bool:
    """By the items' digests where both runs recorded them (the same files in two folders are
    the same items), else by their `prompt_sets` config and item counts."""
    if run.items_sha256 and first.items_sha256:
        return run.items_sha256 == first.items_sha256
    return run.config.get("prompt_sets") == first.config.get("prompt_sets") and (
        run.counts == first.counts
    )


def _different_items(runs: Sequence[Results]) -> list[str]:
    """A warning when the runs were not evaluated on the same items (`_same_items`): their rows
    are then not a like-for-like comparison."""
    first = runs[0] if runs else None
    if first is None:
        return []
    odd = [res.name for res in runs[1:] if not _same_items(res, first)]
    if not odd:
        return []
    return [
        f"**Not the same items:** {', '.join(odd)} "
        f"{'was' if len(odd) == 1 else 'were'} evaluated on other prompt sets or item counts "
        f"than {first.name}; compare their rows with care.",
        "",
    ]


def _probe_cut(results: Results) -> str:
    """One run's probe style and cut, and whether the cut was fixed or fitted (runs that fit
    their own cut are compared at different cuts; the AUC column does not depend on it)."""
    d = results.discrimination
    assert d is not None
    how = "fixed" if d.calibration is None else f"fitted on {d.calibration.n} training-side pairs"
    return f"{results.name}: style `{d.style}`, cut {d.threshold:.3g} ({how})"


def compare_row(results: Results, mode: str, judge: str | None) -> dict[str, Cell | None]:
    """The table row of one run: a chosen judge's numbers for judged columns, else the headline."""
    if mode not in results.headline:
        raise KeyError(f"run {results.name!r} has no mode {mode!r} (has {results.modes})")
    row = dict(results.headline[mode])
    if judge:
        for column in TABLE_COLUMNS:
            if BY_NAME[column].aspect is None:
                continue  # measured without a judge: the same whichever judge is chosen
            entry = results.metrics[mode].get(column, {}).get(judge)
            row[column] = Cell(judge=judge, **entry.model_dump()) if entry else None
    return row
