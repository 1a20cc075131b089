"""`compare`: several runs' results.json side by side in the paper's table layout, plus a chart.

Reads run folders (or results.json files) written by `python -m axolotl_mistake.evaluate`;
never re-runs or re-judges anything. Outputs compare.md, compare.json and compare.png.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from axolotl_mistake.evaluate.charts import compare_charts
from axolotl_mistake.evaluate.report import TABLE_COLUMNS, compare_row, render_compare_report
from axolotl_mistake.evaluate.runner import RESULTS_FORMAT, write_atomic


def load_results(path: str | Path) -> dict[str, Any]:
    """results.json of a run folder (or the file itself); InputError if missing or foreign."""
    from axolotl_mistake.errors import InputError

    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read results: {exc.strerror or exc}", file=str(file)) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", file=str(file), line=exc.lineno) from exc
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise InputError(
            f"not an evaluation results file (expected format {RESULTS_FORMAT!r})",
            file=str(file),
            field="format",
        )
    return data


def compare(
    runs: Sequence[str | Path], output: str | Path, mode: str = "plain", judge: str | None = None
) -> dict[str, Any]:
    """Write compare.md / compare.json / compare.png for `runs` into `output`; return the table."""
    from axolotl_mistake.errors import InputError

    loaded = [load_results(r) for r in runs]
    for res, where in zip(loaded, runs):
        if mode not in res.get("headline", {}):
            raise InputError(
                f"run has no mode {mode!r} (has {res.get('modes')})", file=str(where), field="modes"
            )
        if judge and judge not in res.get("judges", []):
            raise InputError(
                f"run has no judge {judge!r} (has {res.get('judges')})",
                file=str(where),
                field="judges",
            )
    names = [res["name"] for res in loaded]
    if len(set(names)) != len(names):
        for i, res in enumerate(loaded):  # keep rows distinguishable
            res["name"] = f"{res['name']} ({Path(runs[i]).name})"
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    charts = compare_charts(loaded, out, mode, judge)
    table = {
        "mode": mode,
        "judge": judge,
        "columns": list(TABLE_COLUMNS),
        "rows": [{"method": res["name"], **compare_row(res, mode, judge)} for res in loaded],
        "runs": [str(r) for r in runs],
    }
    write_atomic(out / "compare.json", json.dumps(table, indent=2, ensure_ascii=False) + "\n")
    write_atomic(
        out / "compare.md", render_compare_report(loaded, mode, judge, [c.name for c in charts])
    )
    return table
