"""The one atomic writer (axolotl_mistake.fileio) on tiny local files: permissions kept as a
plain write would keep them, and temp names that are this call's own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from axolotl_mistake import fileio


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_rewriting_a_file_keeps_its_permissions(tmp_path, umask_022):
    """`open(path, "w")` on an existing file keeps its mode; the atomic write used to reset it
    to 0o644, so a card or results file the user had made private (0o600) became readable by
    everyone on the machine, and a group-writable one stopped being writable by the group."""
    private = tmp_path / "results.json"
    private.write_text("old\n")
    os.chmod(private, 0o600)
    fileio.write_atomic(private, "new\n")
    assert private.read_text() == "new\n" and mode_of(private) == 0o600
    shared = tmp_path / "README.md"
    shared.write_text("old\n")
    os.chmod(shared, 0o664)
    fileio.write_json_atomic(shared, {"a": 1})
    assert mode_of(shared) == 0o664
    fresh = tmp_path / "new.txt"
    fileio.write_atomic(fresh, b"x")
    assert mode_of(fresh) == 0o644  # a new file: 0o666 less the umask, as open() makes it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "new.txt", "results.json"]


def test_a_folder_written_whole_gets_a_plain_folders_permissions(tmp_path, umask_022):
    """`write_dir_atomic` builds the folder under a mkdtemp name, which is 0o700: the renamed
    model folder was unreadable to everyone else sharing the cache (mkdir makes 0o755)."""

    def fill(folder: Path) -> None:
        (folder / "data.txt").write_text("x")

    folder = tmp_path / "model"
    fileio.write_dir_atomic(folder, fill)
    assert mode_of(folder) == 0o755
    assert (folder / "data.txt").read_text() == "x"


def test_symlink_atomic_never_deletes_a_file_it_did_not_make(tmp_path):
    """The link was made under the fixed name `.<link>.tmp`, and whatever had that name was
    deleted first: a user's own `.latest.tmp` next to the link was lost (and two processes
    linking at once deleted each other's temp link, so one of them failed)."""
    target = tmp_path / "model"
    target.mkdir()
    mine = tmp_path / ".latest.tmp"
    mine.write_text("my notes\n")
    link = fileio.symlink_atomic(tmp_path / "latest", target)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert mine.read_text() == "my notes\n"
    fileio.symlink_atomic(tmp_path / "latest", target)  # replacing an older link
    assert sorted(p.name for p in tmp_path.iterdir()) == [".latest.tmp", "latest", "model"]


def test_a_folder_another_process_holds_is_refused_until_it_ends(tmp_path):
    """A second run into a folder another run is writing stops at once (it would clear the
    first one's temp files as stale and interleave their outputs); the lock goes with the
    holder, even when it is killed."""
    from axolotl_mistake.errors import InputError
    from tests.folder_holder import held_folder

    with held_folder(tmp_path / "out") as temp:
        lock = fileio.folder_lock(tmp_path / "out", who="the builder", field="output")
        with pytest.raises(InputError, match="another run of the builder") as info, lock:
            fileio.remove_stale_temps(tmp_path / "out")
        assert info.value.file == str(tmp_path / "out") and info.value.field == "output"
        assert temp.read_text() == "being written"
    with fileio.folder_lock(tmp_path / "out", who="the builder", field="output"):
        fileio.remove_stale_temps(tmp_path / "out")  # the holder was killed: stale now
    assert not temp.exists()


def test_a_filesystem_without_locks_still_runs_with_a_warning(tmp_path, monkeypatch, caplog):
    """Some FUSE and network mounts refuse flock (ENOLCK, EOPNOTSUPP): the run must go on as
    it did before the lock existed, not stop with a traceback."""
    import errno
    import fcntl

    def refuse(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", refuse)
    ran = False
    with fileio.folder_lock(tmp_path, who="the builder", field="output"):
        ran = True
    assert ran
    assert "cannot lock" in caplog.text and str(tmp_path) in caplog.text


def test_a_folder_hold_is_taken_when_the_folder_exists_and_once(tmp_path):
    """`FolderHold`: an existing folder is held at once, a new one from `take()` after its
    creation, and taking it again does not lock twice (which would refuse its own run)."""
    from contextlib import ExitStack

    from axolotl_mistake.errors import InputError

    with ExitStack() as stack:
        now = fileio.FolderHold(stack, tmp_path, who="the builder", field="output")
        assert now.held
        now.take()
        with ExitStack() as other, pytest.raises(InputError, match="another run of the builder"):
            fileio.FolderHold(other, tmp_path, who="the builder", field="output")
        later = fileio.FolderHold(stack, tmp_path / "new", who="the builder", field="output")
        assert not later.held
        (tmp_path / "new").mkdir()
        later.take()
        assert later.held
    with ExitStack() as stack:  # released when the first stack closed
        assert fileio.FolderHold(stack, tmp_path, who="the builder", field="output").held
