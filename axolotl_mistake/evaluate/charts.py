"""PNG charts (matplotlib, Agg) of evaluation results with their 95 % bootstrap intervals.

Rates (in %) and 1–10 scores are drawn on separate panels so neither scale hides the other.
Reads results dicts only; never recomputes metrics. Files are written atomically.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from axolotl_mistake.evaluate.report import METRIC_LABELS, RATE_METRICS, TABLE_COLUMNS, compare_row

SCORE_COLUMNS = [c for c in TABLE_COLUMNS if c not in RATE_METRICS]
RATE_COLUMNS = [c for c in TABLE_COLUMNS if c in RATE_METRICS]


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _grouped_bars(ax, columns: list[str], series: list[tuple[str, dict]], rate: bool) -> None:
    """One group per metric, one bar per series, error bars = bootstrap interval."""
    scale = 100.0 if rate else 1.0
    width = 0.8 / max(1, len(series))
    x = np.arange(len(columns))
    for i, (label, row) in enumerate(series):
        values, lows, highs = [], [], []
        for column in columns:
            entry = row.get(column)
            if entry and entry.get("value") is not None:
                v = entry["value"] * scale
                lo = entry["low"] * scale if entry.get("low") is not None else v
                hi = entry["high"] * scale if entry.get("high") is not None else v
                values.append(v)
                lows.append(max(0.0, v - lo))
                highs.append(max(0.0, hi - v))
            else:
                values.append(np.nan)
                lows.append(0.0)
                highs.append(0.0)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, values, width, yerr=[lows, highs], capsize=3, label=label)
        base = 0.15 if not rate else 1.5
        for p, v, column in zip(pos, values, columns):
            if np.isnan(v):
                ax.text(p, base, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
            else:
                entry = row[column]
                ax.text(
                    p, base, f"n={entry['n']}", ha="center", va="bottom", fontsize=7, rotation=90
                )
    ax.set_xticks(x)
    labels = []
    for column in columns:  # name the judge behind a column when every series used the same one
        judges = {row[column]["judge"] for _, row in series if row.get(column)}
        suffix = f"\n({judges.pop()})" if len(judges) == 1 else ""
        name = textwrap.fill(
            METRIC_LABELS[column].replace(" %", ""), width=12, break_long_words=False
        )
        labels.append(name + suffix)
    ax.set_xticklabels(labels, fontsize=8)  # wrapped, not rotated: neighbours never overlap
    if rate:
        ax.set_ylim(0, 112)
        ax.set_ylabel("%")
    else:
        ax.set_ylim(0, 11.5)
        ax.set_ylabel("score (1–10)")
    ax.grid(axis="y", alpha=0.3)


def comparison_chart(series: Sequence[tuple[str, dict]], path: Path, title: str) -> Path:
    """Two panels (scores, rates) with grouped bars for each (label, headline row)."""
    fig, (ax_s, ax_r) = plt.subplots(
        1,
        2,
        figsize=(11, 4.5),
        gridspec_kw={"width_ratios": [len(SCORE_COLUMNS), len(RATE_COLUMNS)]},
    )
    _grouped_bars(ax_s, SCORE_COLUMNS, list(series), rate=False)
    _grouped_bars(ax_r, RATE_COLUMNS, list(series), rate=True)
    ax_s.set_title("scores (judge, 1–10)")
    ax_r.set_title("rates (%)")
    handles, labels = ax_s.get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="upper center", ncol=min(len(labels), 5), bbox_to_anchor=(0.5, 1.02)
    )
    fig.suptitle(title, y=1.08)
    fig.text(
        0.5,
        -0.12,
        "error bars: 95 % bootstrap interval; n = items with a usable verdict",
        ha="center",
        fontsize=8,
    )
    return _save(fig, path)


def run_charts(results: dict[str, Any], out: Path) -> list[Path]:
    """headline.png of one run: its modes side by side."""
    series = [(mode, results["headline"][mode]) for mode in results["modes"]]
    title = f"{results['name']} (headline judge: {results['primary_judge']})"
    return [comparison_chart(series, Path(out) / "headline.png", title)]


def compare_charts(
    runs: Sequence[dict[str, Any]], out: Path, mode: str, judge: str | None
) -> list[Path]:
    """compare.png: one bar per run in each metric group."""
    series = [(res["name"], compare_row(res, mode, judge)) for res in runs]
    title = f"comparison, mode {mode}" + (f", judge {judge}" if judge else "")
    return [comparison_chart(series, Path(out) / "compare.png", title)]
