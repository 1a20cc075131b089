"""May a build write into this output folder? Checked before anything is loaded or written.

Refuses a path that is a file, a folder that cannot be written, a folder this tool did not make
(unless `--overwrite`), an output that is, or lies inside, one of the inputs, and one that holds
a data file the build reads. A folder is this tool's when it holds a manifest with
`produced_by: axolotl-mistake` or the call cache of an interrupted build. Never creates, changes
or deletes anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from axolotl_mistake.errors import InputError
from axolotl_mistake.fileio import TEMP_SUFFIX, check_output_folder
from axolotl_mistake.manifest import MANIFEST_NAME, PRODUCED_BY, read_manifest
from dataset_builders.stages.emit import ALL_FILES

STATE_DIR = "state"
CACHE_FILE = "calls.sqlite"
POOL_FILE = "pool.jsonl"
"""The build's working files, in `<output>/state/`: the call cache and what merge needs."""


def made_by_us(folder: Path) -> bool:
    """True when `folder` holds our manifest, or only what a build killed before it finished
    leaves: the state folder with its call cache (and pool, temp files) and, when the kill
    came while the final files were written (the manifest last; a rebuild removes its
    predecessor's manifest and card before it replaces the first file), some of the training
    files."""
    try:
        if read_manifest(folder) is not None:
            return True
    except InputError:
        return False
    state = folder / STATE_DIR
    if not state.is_dir() or any(
        p.name != STATE_DIR and not p.name.endswith(TEMP_SUFFIX) and p.name not in ALL_FILES
        for p in folder.iterdir()
    ):
        return False
    held = list(state.iterdir())
    if not any(p.name == CACHE_FILE for p in held):
        # the build opens its call cache right after making state/, before any other file:
        # without it, files named like ours beside an empty state/ are someone else's
        return not held and [p.name for p in folder.iterdir()] == [STATE_DIR]
    return all(
        p.is_file()
        and (p.name.startswith(CACHE_FILE) or p.name == POOL_FILE or p.name.endswith(TEMP_SUFFIX))
        for p in held
    )


def check_output(
    output: str | Path,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
    sources: Iterable[str | Path] = (),
    file: str | None = None,
    field: str = "output",
) -> None:
    """Raise InputError (naming `field`; located by the caller's config unless `file`) unless
    the build may write its files into `output` (never over a data file it reads: `sources`)."""
    out = Path(output)
    check_output_folder(
        out,
        ours=out.is_dir() and made_by_us(out),
        overwrite=overwrite,
        who="this tool",
        field=field,
        inputs=inputs,
        sources=sources,
        why=f" (it was not made by this tool: no {MANIFEST_NAME} with produced_by: {PRODUCED_BY})",
        file=file,
    )
