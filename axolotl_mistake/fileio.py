"""Atomic file writing, the project's one copy: a temp file in the target's folder, fsync, rename.

A reader (or a resumed run) sees either the old file or the complete new one, never half of it;
on any error the temp file is removed. Never writes anywhere but the target's own folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

TEMP_GLOB = ".*.tmp"
"""Names of the temp files a write leaves behind only when the process is killed mid-write."""


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write `data` (str is UTF-8 encoded) to `path`, complete or not at all, even on SIGKILL.

    The file gets the mode a plain `open(path, "w")` would (0o666 less the umask).
    """
    path = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json_atomic(path: str | Path, data: object, *, indent: int | None = 2) -> None:
    """`data` as pretty UTF-8 JSON with a final newline, written atomically."""
    write_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def remove_stale_temps(folder: str | Path) -> None:
    """Remove the temp files that a killed write left in `folder` (never anything else)."""
    for stale in Path(folder).glob(TEMP_GLOB):
        stale.unlink(missing_ok=True)


def _umask() -> int:
    """The process umask (read without changing it for long)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
