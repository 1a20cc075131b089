"""`compare`: several runs' results.json side by side in the paper's table layout, plus a chart.

Reads run folders (or results.json files) written by `python -m axolotl_mistake.evaluate`;
never re-runs or re-judges anything. Outputs compare.md, compare.json and compare.png.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from axolotl_mistake.evaluate.charts import compare_charts
from axolotl_mistake.evaluate.metric_table import TABLE_COLUMNS
from axolotl_mistake.evaluate.report import compare_row, render_compare_report
from axolotl_mistake.evaluate.results import load_results
from axolotl_mistake.fileio import write_atomic, write_json_atomic


def compare(
    runs: Sequence[str | Path], output: str | Path, mode: str = "plain", judge: str | None = None
) -> dict[str, Any]:
    """Write compare.md / compare.json / compare.png for `runs` into `output`; return the table."""
    from axolotl_mistake.errors import InputError

    loaded = [load_results(r) for r in runs]
    for res, where in zip(loaded, runs):
        if mode not in res.headline:
            raise InputError(
                f"run has no mode {mode!r} (has {res.modes})", file=str(where), field="modes"
            )
        if judge and judge not in res.judges:
            raise InputError(
                f"run has no judge {judge!r} (has {res.judges})", file=str(where), field="judges"
            )
    names = [res.name for res in loaded]
    if len(set(names)) != len(names):
        for res, where in zip(loaded, runs):  # keep rows distinguishable
            res.name = f"{res.name} ({Path(where).name})"
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    charts = compare_charts(loaded, out, mode, judge)
    rows = []
    for res in loaded:
        row = compare_row(res, mode, judge)
        rows.append(
            {"method": res.name}
            | {c: (v.model_dump() if v is not None else None) for c, v in row.items()}
        )
    table = {
        "mode": mode,
        "judge": judge,
        "columns": list(TABLE_COLUMNS),
        "rows": rows,
        "runs": [str(r) for r in runs],
    }
    write_json_atomic(out / "compare.json", table)
    write_atomic(
        out / "compare.md", render_compare_report(loaded, mode, judge, [c.name for c in charts])
    )
    return table
