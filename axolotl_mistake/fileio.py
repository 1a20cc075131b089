"""Atomic writes, the project's one copy (a file, a whole folder, a symlink: each made under a
temp name in the target's folder, then renamed into place), and the one streamed file hash.

A reader (or a resumed run) sees either the old file or the complete new one, never half of it;
on any error the temp file is removed. Never writes anywhere but the target's own folder.
Standard library only (the GPU check imports it before anything is installed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

BLOCK = 1 << 20
"""Bytes read at a time when hashing (big files cost no memory)."""

TEMP_SUFFIX = ".axolotl-mistake.tmp"
TEMP_GLOB = ".*" + TEMP_SUFFIX
"""Names of the temp files a write leaves behind only when the process is killed mid-write:
distinctive, so clearing them never touches a user's own `.draft.tmp` in a shared folder."""


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write `data` (str is UTF-8 encoded) to `path`, complete or not at all, even on SIGKILL.

    The file gets the mode a plain `open(path, "w")` would: an existing file's own mode
    (a private 0o600 file stays private), else 0o666 less the umask.
    """
    path = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path, 0o666)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, mode)
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


AT_OUTPUT = "<the output>"
"""`check_output_folder`'s default `file`: its errors name the output folder itself."""


def check_output_folder(
    out: Path,
    *,
    ours: bool,
    overwrite: bool,
    who: str,
    field: str,
    inputs: Iterable[str | Path] = (),
    noun: str = "input",
    why: str = "",
    file: str | None = AT_OUTPUT,
    sources: Iterable[str | Path] = (),
) -> None:
    """Raise InputError (on `field`, naming `out`) unless the tool `who` may write into the
    folder `out`, creating it if need be. Creates nothing. Refused: an output that is, or lies
    inside, one of `inputs` (an input file stands for its folder; `noun` names them), one of
    the data files `sources` inside the output (the tool writes, replaces and removes files
    there: a source named like an output would be overwritten, with `overwrite` too), a file
    there or on the way to it, a folder that cannot be written, and a non-empty folder that
    is not `ours` (`why` says what marks it as ours) unless `overwrite` (same-named files are
    then replaced, nothing is deleted). `file`: where the error is located (the output folder
    by default; None leaves it to the caller's config)."""
    from axolotl_mistake.errors import InputError

    where = str(out) if file == AT_OUTPUT else file
    quoted = "" if where == str(out) else repr(str(out))  # empty: the location names it

    def refuse(problem: str) -> None:
        raise InputError(problem, file=where, field=field)

    resolved = out.resolve()
    for source in sources:
        if resolved in Path(source).resolve().parents:
            refuse(
                f"the data file {str(source)!r} lies inside the output {str(out)!r}, where "
                f"{who} writes, replaces and removes files; keep inputs outside the output "
                "folder"
            )
    for inp in inputs:
        folder = Path(inp).parent if Path(inp).is_file() else Path(inp)
        src = folder.resolve()
        if resolved == src or src in resolved.parents:
            how = "is the" if resolved == src else "lies inside the"
            refuse(f"the output {str(out)!r} {how} {noun} {str(inp)!r}; write to a new folder")
    if out.exists() and not out.is_dir():
        refuse(f"{quoted} exists and is not a folder".lstrip())
    if out.is_dir():
        if not os.access(out, os.W_OK | os.X_OK):
            refuse(f"{quoted or 'the folder'} is not writable")
        entries = [] if ours or overwrite else sorted(p.name for p in out.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            refuse(
                f"refusing to write into {quoted or 'it'}: it holds {len(entries)} entries {who} "
                f"did not write ({shown}){why}; choose a new or empty {field}, or pass "
                "--overwrite to write into it anyway"
            )
        return
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        refuse(f"cannot create {quoted or 'it'}: {str(parent)!r} is a file, not a folder")
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        refuse(f"cannot create {quoted or 'it'}: {str(parent)!r} is not writable")


DIR_MARKER = ".axolotl_mistake_dir"
"""File `write_dir_atomic` leaves in every folder it makes: proof a later run may replace it."""


class ForeignPathError(FileExistsError):
    """A path is in the way that this tool did not make, so it will not be replaced."""


def check_replaceable(path: str | Path, marker: str = DIR_MARKER) -> None:
    """Raise `ForeignPathError` (naming `path`) unless `write_dir_atomic` may put a folder there.

    Replaceable: nothing there, an empty folder, or a folder holding `marker` (one this tool
    made). Anything else may be someone's work, and deleting it is never ours to decide.
    """
    path = Path(os.path.abspath(path))
    if path.is_symlink():
        raise ForeignPathError(
            f"{path} is a symlink; refusing to replace it (name the folder it points to instead)"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ForeignPathError(f"{parent} is not a folder, so {path} cannot be made")
            break
    if not path.exists():
        return
    if not path.is_dir():
        raise ForeignPathError(f"{path} exists and is not a folder; refusing to replace it")
    here = Path.cwd().resolve()
    if path.resolve() == here or path.resolve() in here.parents:
        raise ForeignPathError(f"{path} holds the current directory; refusing to replace it")
    if (path / marker).is_file() or not any(path.iterdir()):
        return
    raise ForeignPathError(
        f"{path} exists and was not made by this tool (no {marker} in it); refusing to replace "
        "it: remove it yourself or pick another path"
    )


def write_dir_atomic(
    path: str | Path, fill: Callable[[Path], None], *, marker: str = DIR_MARKER
) -> Path:
    """Make the folder `path` by `fill(temp folder)` and a rename, replacing an older folder:
    a crash never leaves a half-written folder under that name for a later run to trust.

    Only a folder this tool made (it holds `marker`, written here if `fill` did not) or an
    empty one is replaced; anything else raises `ForeignPathError` before `fill` runs, so a
    mistyped target never costs the user their files. The old folder is renamed aside before
    the new one is renamed in, and put back if that fails. The folder gets the mode a plain
    `mkdir` would (0o777 less the umask; a replaced folder's own mode), not mkdtemp's 0o700.
    """
    given = Path(path)
    path = Path(os.path.abspath(given))
    check_replaceable(path, marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path, 0o777)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    old: Path | None = None
    try:
        os.chmod(tmp, mode)
        fill(tmp)
        if not (tmp / marker).exists():
            (tmp / marker).write_text("")
        check_replaceable(path, marker)  # again: the fill may take minutes
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        if old is not None and not path.exists():
            os.replace(old, path)
            old = None
        raise
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    return given


def symlink_atomic(link: str | Path, target: str | Path) -> Path:
    """Point `link` at the folder `target`, replacing an older link in one rename.

    Refuses (`ForeignPathError`) when `link` is a real file or folder: a rename would
    silently overwrite a file, and a folder is never ours to replace with a link.
    """
    link = Path(link)
    if link.exists() and not link.is_symlink():
        raise ForeignPathError(f"{link} exists and is not a symlink; refusing to replace it")
    link.parent.mkdir(parents=True, exist_ok=True)
    while True:  # a name of this call's own: never a user's file, nor another process's link
        tmp = link.with_name(f".{link.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
        try:
            tmp.symlink_to(target, target_is_directory=True)
            break
        except FileExistsError:
            continue
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return link


def hash_file(digest: hashlib._Hash, path: str | Path) -> hashlib._Hash:
    """Feed a file's bytes into `digest` in blocks; returns `digest`."""
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
    return digest


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hash_file(hashlib.sha256(), path).hexdigest()


@contextmanager
def folder_lock(folder: str | Path, *, who: str, field: str) -> Iterator[None]:
    """Hold `folder` for one run of the tool `who` while it writes there: a second run into
    the same folder stops at once (InputError on `field`) instead of clearing the first one's
    temp files (`remove_stale_temps`) and interleaving their outputs.

    An advisory flock on the folder itself, so nothing is added to it and a killed run
    releases it with its process. Where flock is missing (Windows) or the filesystem refuses
    it (a warning says so), runs are not serialised: the run goes on as before the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on the platforms the project runs on
        yield
        return
    from axolotl_mistake.errors import InputError

    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise InputError(
            f"cannot open the folder: {exc.strerror or exc}", file=str(folder), field=field
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"another run of {who} is writing into this folder; wait for it to finish or "
                "choose another output folder",
                file=str(folder),
                field=field,
            ) from None
        except OSError as exc:  # a filesystem without locks (some FUSE/network mounts)
            logging.getLogger(__name__).warning(
                "cannot lock %s (%s): runs into it are not kept apart; start one at a time",
                folder,
                exc.strerror or exc,
            )
        yield
    finally:
        os.close(fd)  # releases the lock


class FolderHold:
    """`folder_lock` on a run's output folder from the first moment the folder exists to the
    end of `stack`: taken at once when the folder is already there (a second run stops before
    any slow work, such as loading a model), else by `take()` right after the run creates it.
    Taking it again does nothing."""

    def __init__(self, stack: ExitStack, folder: str | Path, *, who: str, field: str) -> None:
        self.stack, self.folder, self.who, self.field = stack, Path(folder), who, field
        self.held = False
        if self.folder.is_dir():
            self.take()

    def take(self) -> None:
        if not self.held:
            self.stack.enter_context(folder_lock(self.folder, who=self.who, field=self.field))
            self.held = True


def remove_stale_temps(folder: str | Path) -> None:
    """Remove the temp files that a killed write left in `folder` (never anything else).
    Call it under `folder_lock`: a concurrent run's temp files look the same."""
    for stale in Path(folder).glob(TEMP_GLOB):
        stale.unlink(missing_ok=True)


def _mode_for(path: Path, full: int) -> int:
    """The permission bits a plain write of `path` ends with: an existing entry's own, else
    `full` (0o666 for a file, 0o777 for a folder) less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return full & ~_umask()


def _umask() -> int:
    """The process umask (read without changing it for long)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
