"""`--target` and `--link` never delete or overwrite what this tool did not make.

None of these tests converts the real model: a refusal must happen before the slow conversion
(`gguf_path` is made to fail loudly if reached), and a folder "made earlier" is faked by the
marker file the converter writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from axolotl_mistake import fileio, models

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_conversion(monkeypatch):
    """Fail the test if the conversion starts (it would be slow and, before the fix, deleting)."""

    def reached() -> Path:
        raise AssertionError("the conversion started; the target should have been refused first")

    monkeypatch.setattr(models, "gguf_path", reached)


def foreign_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mywork"
    folder.mkdir()
    (folder / "thesis.txt").write_text("draft\n")
    return folder


def model_folder(path: Path) -> Path:
    """A folder that looks like one `ensure_embedded_model` made (it holds the marker)."""
    path.mkdir(parents=True)
    (path / models._MARKER).write_text(f"{models.EMBEDDED_MODEL_ID}\nx.gguf\n")
    return path


def fill_with(text: str):
    def fill(folder: Path) -> None:
        (folder / "data.txt").write_text(text)

    return fill


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "axolotl_mistake.models", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


# write_dir_atomic


def test_write_dir_atomic_keeps_a_foreign_folder(tmp_path):
    folder = foreign_folder(tmp_path)
    with pytest.raises(FileExistsError, match="mywork"):
        fileio.write_dir_atomic(folder, fill_with("new"))
    assert (folder / "thesis.txt").read_text() == "draft\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mywork"]


def test_write_dir_atomic_refuses_a_plain_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    with pytest.raises(FileExistsError, match="afile.*not a folder"):
        fileio.write_dir_atomic(afile, fill_with("new"))
    assert afile.read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_write_dir_atomic_replaces_its_own_and_empty_folders(tmp_path):
    folder = tmp_path / "out"
    assert fileio.write_dir_atomic(folder, fill_with("one")) == folder
    fileio.write_dir_atomic(folder, fill_with("two"))
    assert (folder / "data.txt").read_text() == "two"
    empty = tmp_path / "empty"
    empty.mkdir()
    fileio.write_dir_atomic(empty, fill_with("three"))
    assert (empty / "data.txt").read_text() == "three"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "out"]


def test_model_folder_made_earlier_can_be_replaced(tmp_path):
    """What `--force` does to a converted folder: replace it whole (the marker is kept)."""
    folder = model_folder(tmp_path / "m")
    (folder / "old.bin").write_text("x")
    fileio.write_dir_atomic(folder, fill_with("new"), marker=models._MARKER)
    assert (folder / "data.txt").read_text() == "new" and not (folder / "old.bin").exists()
    assert (folder / models._MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_write_dir_atomic_refuses_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="current directory"):
        fileio.write_dir_atomic(".", fill_with("new"))
    assert (tmp_path / "keep.txt").exists()


def test_symlink_atomic_never_overwrites_a_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    with pytest.raises(FileExistsError, match="afile"):
        fileio.symlink_atomic(afile, tmp_path)
    assert not afile.is_symlink() and afile.read_text() == "mine\n"


# ensure_embedded_model / main


def test_foreign_target_is_refused_even_with_force(tmp_path, no_conversion, capsys):
    folder = foreign_folder(tmp_path)
    for extra in ([], ["--force"]):
        assert models.main(["--target", str(folder), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and str(folder) in err and "Traceback" not in err
        assert (folder / "thesis.txt").read_text() == "draft\n"


def test_plain_file_target_is_refused(tmp_path, no_conversion, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    assert models.main(["--target", str(afile)]) == 2
    err = capsys.readouterr().err
    assert str(afile) in err and "not a folder" in err
    assert afile.read_text() == "mine\n"


def test_current_directory_target_is_refused(tmp_path, monkeypatch, no_conversion, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    assert models.main(["--target", "."]) == 2
    assert (tmp_path / "keep.txt").exists()


def test_model_folder_made_earlier_is_reused_and_relinked(tmp_path, no_conversion, capsys):
    first = model_folder(tmp_path / "a")
    second = model_folder(tmp_path / "b")
    link = tmp_path / "models" / "smollm2"
    assert models.main(["--target", str(first), "--link", str(link)]) == 0
    assert capsys.readouterr().out.strip() == str(first)
    assert models.main(["--target", str(second), "--link", str(link)]) == 0
    assert link.is_symlink() and link.resolve() == second.resolve()


def test_link_onto_a_plain_file_is_refused(tmp_path, capsys):
    folder = model_folder(tmp_path / "m")
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    assert models.main(["--target", str(folder), "--link", str(afile)]) == 2
    err = capsys.readouterr().err
    assert str(afile) in err and "Traceback" not in err
    assert not afile.is_symlink() and afile.read_text() == "mine\n"


def test_link_onto_a_foreign_symlink_is_refused(tmp_path, capsys):
    folder = model_folder(tmp_path / "m")
    other = foreign_folder(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(other, target_is_directory=True)
    assert models.main(["--target", str(folder), "--link", str(link)]) == 2
    assert str(link) in capsys.readouterr().err
    assert link.resolve() == other.resolve()


def test_cli_refuses_foreign_target_and_file_link_cleanly(tmp_path):
    """The audit's reproductions, as a user runs them."""
    folder = foreign_folder(tmp_path)
    out = run_cli("--target", str(folder), cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]  # one line
    assert str(folder) in out.stderr and "Traceback" not in out.stderr
    assert (folder / "thesis.txt").read_text() == "draft\n"

    made = model_folder(tmp_path / "made")
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    out = run_cli("--target", str(made), "--link", str(afile), cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert str(afile) in out.stderr and afile.read_text() == "mine\n"
