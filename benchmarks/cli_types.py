"""What the benchmark scripts share at their edges: argument checks (counts of at least 1, a
writable --json) and the exit status of a run measured against its target.

Imported by the scripts as a sibling module (`from cli_types import ...`), as they import each
other; arguments are checked at parse time, so a bad value is a usage error before minutes of
work, never a division by zero or a lost result after it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from axolotl_mistake.errors import InputError
from axolotl_mistake.fileio import check_output_folder


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (a count, a step budget, threads: 0 would
    time nothing, divide by zero after the run or mean something else than 'none')."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def check_json_destination(parser: argparse.ArgumentParser, path: Path | None) -> None:
    """Refuse a --json path that cannot be written before the benchmark runs (minutes to
    hours), not after: a folder there, or a parent folder that cannot be made or written."""
    if path is None:
        return
    if path.is_dir():
        parser.error(f"argument --json: {path}: is a folder, not a file")
    try:
        check_output_folder(path.parent, ours=True, overwrite=True, who=parser.prog, field="json")
    except InputError as err:
        parser.error(f"argument --json: {err.file}: {err.message}")


def target_status(met: bool, measured: str) -> int:
    """The exit status of a finished benchmark: 0 when its target is met, else 1 with one line
    on stderr, so a script or CI can act on a miss (the numbers are printed and written either
    way)."""
    if met:
        return 0
    print(f"target missed: {measured}", file=sys.stderr)
    return 1


def claim_work_folder(
    folder: Path, marker: str, *, who: str, field: str, overwrite: bool = False, ours: bool = False
) -> None:
    """Make `folder` the script `who`'s work folder: refuse (InputError on `field`) a file, or a
    non-empty folder it did not make, unless `overwrite`; then create it and leave `marker` in
    it, so a later run may write there again. `ours`: the caller knows it is its own."""
    check_output_folder(
        folder,
        ours=ours or (folder / marker).is_file(),
        overwrite=overwrite,
        who=who,
        field=field,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / marker).touch()


def claim_work_folder_or_exit(
    parser: argparse.ArgumentParser, folder: Path, marker: str, *, who: str, field: str
) -> None:
    """`claim_work_folder`, its refusal given as the parser's usage error (exit 2)."""
    try:
        claim_work_folder(folder, marker, who=who, field=field)
    except InputError as err:
        parser.error(str(err))
