"""May a build write into this output folder? Checked before anything is loaded or written.

Refuses a path that is a file, a folder that cannot be written, a folder this tool did not make
(unless `--overwrite`), and an output that is, or lies inside, one of the inputs. A folder is
this tool's when it holds a manifest with `produced_by: axolotl-mistake` or the call cache of an
interrupted build. Never creates, changes or deletes anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from axolotl_mistake.errors import InputError
from axolotl_mistake.manifest import MANIFEST_NAME, PRODUCED_BY, read_manifest

STATE_DIR = "state"
CACHE_FILE = "calls.sqlite"
POOL_FILE = "pool.jsonl"
"""The build's working files, in `<output>/state/`: the call cache and what merge needs."""


def made_by_us(folder: Path) -> bool:
    """True when `folder` holds our manifest, or only the state folder of a build that was
    killed before it finished (call cache, pool, temp files)."""
    try:
        if read_manifest(folder) is not None:
            return True
    except InputError:
        return False
    state = folder / STATE_DIR
    if not state.is_dir() or any(
        p.name != STATE_DIR and not p.name.endswith(".tmp") for p in folder.iterdir()
    ):
        return False
    return all(
        p.is_file()
        and (p.name.startswith(CACHE_FILE) or p.name == POOL_FILE or p.name.endswith(".tmp"))
        for p in state.iterdir()
    )


def check_output(
    output: str | Path,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
    file: str | None = None,
    field: str = "output",
) -> None:
    """Raise InputError (naming `field`) unless the build may write its files into `output`."""
    out = Path(output)
    where = file
    resolved = out.resolve()
    for inp in inputs:
        src = Path(inp).resolve()
        if resolved == src or src in resolved.parents:
            raise InputError(
                f"the output {str(out)!r} is {'an input' if resolved == src else 'inside the input'} "
                f"{str(inp)!r}; write the result to a new folder",
                file=where,
                field=field,
            )
    if out.exists() and not out.is_dir():
        raise InputError(f"{str(out)!r} is a file, not a folder", file=where, field=field)
    if out.is_dir():
        if not os.access(out, os.W_OK | os.X_OK):
            raise InputError(f"the folder {str(out)!r} is not writable", file=where, field=field)
        if any(out.iterdir()) and not made_by_us(out) and not overwrite:
            raise InputError(
                f"refusing to write into {str(out)!r}: it exists and was not made by this tool "
                f"(no {MANIFEST_NAME} with produced_by: {PRODUCED_BY}), so its files (such as "
                "README.md, manifest.json) would be replaced; choose a new folder, or pass "
                "--overwrite to write into it anyway",
                file=where,
                field=field,
            )
        return
    parent = _nearest_existing(resolved)
    if not parent.is_dir():
        raise InputError(
            f"cannot create {str(out)!r}: {str(parent)!r} is a file, not a folder",
            file=where,
            field=field,
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(
            f"cannot create {str(out)!r}: the folder {str(parent)!r} is not writable",
            file=where,
            field=field,
        )


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor)
