"""PNG charts (matplotlib, Agg) of evaluation results with their 95 % bootstrap intervals.

One panel per unit of the metric table (scores 1–10, rates in %, ROC AUC, reference NLL), so no
scale hides another. Reads typed results only; never recomputes metrics. Files are written
atomically.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from axolotl_mistake.evaluate.metric_table import BY_NAME, TABLE_COLUMNS, UNITS
from axolotl_mistake.evaluate.report import compare_row
from axolotl_mistake.evaluate.results import Cell, Results
from axolotl_mistake.fileio import write_atomic

Row = dict[str, Cell | None]


def _save(fig, path: Path) -> Path:
    """Render the figure to PNG bytes and write them atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
    return path


def _grouped_bars(ax, columns: list[str], series: list[tuple[str, Row]], unit: str) -> None:
    """One group per metric, one bar per series, error bars = bootstrap interval."""
    style = UNITS[unit]
    width = 0.8 / max(1, len(series))
    x = np.arange(len(columns))
    tops = [0.0]
    for i, (name, row) in enumerate(series):
        values, lows, highs = [], [], []
        for column in columns:
            entry = row.get(column)
            if entry is not None and entry.value is not None:
                v = entry.value * style.scale
                lo = entry.low * style.scale if entry.low is not None else v
                hi = entry.high * style.scale if entry.high is not None else v
                values.append(v)
                lows.append(max(0.0, v - lo))
                highs.append(max(0.0, hi - v))
                tops.append(hi)
            else:
                values.append(np.nan)
                lows.append(0.0)
                highs.append(0.0)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, values, width, yerr=[lows, highs], capsize=3, label=name)
        top = style.limits[1] if style.limits else max(tops) * 1.15 or 1.0
        base = top * 0.013
        for p, v, column in zip(pos, values, columns):
            entry = row.get(column)
            text = "n/a" if np.isnan(v) or entry is None else f"n={entry.n}"
            ax.text(p, base, text, ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(x)
    labels = []
    for column in columns:  # name who measured a column when every series used the same one
        judges = {row[column].judge for _, row in series if row.get(column)}
        suffix = f"\n({judges.pop()})" if len(judges) == 1 else ""
        name = textwrap.fill(
            BY_NAME[column].label.replace(" %", ""), width=12, break_long_words=False
        )
        labels.append(name + suffix)
    ax.set_xticklabels(labels, fontsize=8)  # wrapped, not rotated: neighbours never overlap
    if style.limits:
        ax.set_ylim(*style.limits)
    else:
        ax.set_ylim(0, max(tops) * 1.15 or 1.0)
    ax.set_ylabel(style.axis)
    ax.set_title(style.title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def comparison_chart(series: Sequence[tuple[str, Row]], path: Path, title: str) -> Path:
    """One panel per unit (scores, rates, AUC, NLL) with grouped bars per (label, row)."""
    panels: dict[str, list[str]] = {}
    for column in TABLE_COLUMNS:
        panels.setdefault(BY_NAME[column].unit, []).append(column)
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(4.2 + 1.1 * len(TABLE_COLUMNS), 4.5),
        gridspec_kw={"width_ratios": [len(c) + 0.6 for c in panels.values()]},
    )
    for ax, (unit, columns) in zip(np.atleast_1d(axes), panels.items()):
        _grouped_bars(ax, columns, list(series), unit)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="upper center", ncol=min(len(labels), 5), bbox_to_anchor=(0.5, 1.02)
    )
    fig.suptitle(title, y=1.08)
    fig.text(
        0.5,
        -0.12,
        "error bars: 95 % bootstrap interval; n = items with a usable value",
        ha="center",
        fontsize=8,
    )
    fig.tight_layout()
    return _save(fig, path)


def run_charts(results: Results, out: Path) -> list[Path]:
    """headline.png of one run: its modes side by side."""
    series = [(mode, results.headline[mode]) for mode in results.modes]
    title = f"{results.name} (headline judge: {results.primary_judge})"
    return [comparison_chart(series, Path(out) / "headline.png", title)]


def compare_charts(runs: Sequence[Results], out: Path, mode: str, judge: str | None) -> list[Path]:
    """compare.png: one bar per run in each metric group."""
    series = [(res.name, compare_row(res, mode, judge)) for res in runs]
    title = f"comparison, mode {mode}" + (f", judge {judge}" if judge else "")
    return [comparison_chart(series, Path(out) / "compare.png", title)]
