"""`compare`: several runs' results.json side by side in the paper's table layout, plus a chart.

Reads run folders (or results.json files) written by `python -m axolotl_mistake.evaluate`;
never re-runs or re-judges anything. Outputs compare.md, compare.json and compare.png into a
new or empty folder, or one `compare` made before (it holds `.axolotl-mistake-compare`); any
other folder, a file, or an output that is (or lies inside) one of the runs is refused with an
InputError before anything is written (`overwrite` allows a foreign folder).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from axolotl_mistake.evaluate.charts import compare_charts
from axolotl_mistake.evaluate.metric_table import TABLE_COLUMNS
from axolotl_mistake.evaluate.report import compare_row, render_compare_report
from axolotl_mistake.evaluate.results import load_results
from axolotl_mistake.fileio import (
    check_output_folder,
    folder_lock,
    remove_stale_temps,
    write_atomic,
    write_json_atomic,
)

MARKER = ".axolotl-mistake-compare"
"""Written first into a compare folder: the folder is this tool's (a later compare may replace
its files)."""


def check_output(output: str | Path, runs: Sequence[str | Path], overwrite: bool = False) -> None:
    """Raise InputError unless compare may write into `output` (not inside a run it reads).
    Creates nothing."""
    out = Path(output)
    ours = is_compare_folder(out)
    check_output_folder(
        out, ours=ours, overwrite=overwrite, who="compare", field="output", inputs=runs, noun="run"
    )


def compare(
    runs: Sequence[str | Path],
    output: str | Path,
    mode: str = "plain",
    judge: str | None = None,
    overwrite: bool = False,
    paired_with: str | Path | None = None,
) -> dict[str, Any]:
    """Write compare.md / compare.json / compare.png for `runs` into `output`; return the table.

    `overwrite` allows writing into a non-empty folder compare did not make (same-named files
    are replaced; nothing is deleted). `paired_with`, one of `runs`, adds every other run's
    difference from it, paired on the same items (`paired.paired_difference`), per column."""
    from axolotl_mistake.errors import InputError

    loaded = [load_results(r) for r in runs]
    rows_of: list[dict[str, Any]] = []
    for res, where in zip(loaded, runs):
        if mode not in res.headline:
            raise InputError(
                f"run has no mode {mode!r} (has {res.modes})", file=str(where), field="modes"
            )
        if judge and judge not in res.judges:
            raise InputError(
                f"run has no judge {judge!r} (has {res.judges})", file=str(where), field="judges"
            )
        rows_of.append(compare_row(res, mode, judge))
        if all(cell is None for cell in rows_of[-1].values()):
            # its row would be all dashes, read as a run that scored nothing
            raise InputError(
                f"run measured nothing in mode {mode!r}"
                + (f" with judge {judge!r}" if judge else ""),
                file=str(where),
                field=f"headline.{mode}",
            )
    names = [res.name for res in loaded]
    if len(set(names)) != len(names):
        for res, where in zip(loaded, runs):  # keep rows distinguishable
            res.name = f"{res.name} ({Path(where).name})"
    paired = None if paired_with is None else _paired(runs, loaded, paired_with, mode, judge)
    check_output(output, runs, overwrite)
    out = Path(output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the folder: {exc.strerror or exc}", file=str(out), field="output"
        ) from None
    with folder_lock(out, who="compare", field="output"):  # one compare at a time
        if (out / MARKER).is_file():
            remove_stale_temps(out)  # left by a killed write of an earlier compare
        else:
            marker = {"tool": "axolotl_mistake.evaluate compare", "created": _now()}
            write_json_atomic(out / MARKER, marker)
        charts = compare_charts(loaded, out, mode, judge)
        rows = [
            {"method": res.name}
            | {c: (v.model_dump() if v is not None else None) for c, v in row.items()}
            for res, row in zip(loaded, rows_of)
        ]
        table = {
            "mode": mode,
            "judge": judge,
            "columns": list(TABLE_COLUMNS),
            "rows": rows,
            "runs": [str(r) for r in runs],
        }
        if paired is not None:
            table["paired_with"], table["paired"] = paired
        write_json_atomic(out / "compare.json", table)
        write_atomic(
            out / "compare.md",
            render_compare_report(loaded, mode, judge, [c.name for c in charts], paired),
        )
        return table


def _paired(
    runs: Sequence[str | Path], loaded: list, reference: str | Path, mode: str, judge: str | None
) -> tuple[str, dict[str, dict[str, Any]]]:
    """(the reference run's name, {run name: {column: paired difference or None}}) of every
    other run; InputError when the reference is not one of the runs."""
    from axolotl_mistake.errors import InputError
    from axolotl_mistake.evaluate.paired import folder, paired_differences

    where = [folder(r).resolve() for r in runs]
    if folder(reference).resolve() not in where:
        raise InputError(
            "is not one of the runs compared", file=str(reference), field="paired_with"
        )
    index = where.index(folder(reference).resolve())
    differences = {}
    for i, (run, res) in enumerate(zip(runs, loaded)):
        if i == index:
            continue
        found = paired_differences(run, runs[index], mode=mode, judge=judge)
        differences[res.name] = {c: e and e.model_dump() for c, e in found.items()}
    return loaded[index].name, differences


def is_compare_folder(out: Path) -> bool:
    """True for a folder compare made: it holds the marker, or (made before the marker
    existed) a compare.json of compare's shape."""
    if (out / MARKER).is_file():
        return True
    try:
        table = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(table, dict) and {"mode", "columns", "rows", "runs"} <= table.keys()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
