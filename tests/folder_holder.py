"""Another process holding an output folder (`fileio.folder_lock`) while it writes a temp file
there: what a second, concurrent run of the builder, evaluator or compare would meet."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from axolotl_mistake.fileio import TEMP_SUFFIX

HOLD = """
import sys, time
from pathlib import Path
from axolotl_mistake.fileio import folder_lock
folder, temp = Path(sys.argv[1]), Path(sys.argv[2])
with folder_lock(folder, who="a holder", field="output"):
    temp.write_text("being written")
    print("held", flush=True)
    time.sleep(600)
"""


@contextmanager
def held_folder(folder: Path) -> Iterator[Path]:
    """`folder` (created) held by a child process, which has a temp file of a write in
    progress there; yields that temp file. The child is killed on exit (releasing the lock)."""
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".results.json.inflight{TEMP_SUFFIX}"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), str(temp)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        yield temp
    finally:
        child.kill()
        child.wait()
