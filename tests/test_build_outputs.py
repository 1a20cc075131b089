"""Where a build may write: never over a folder this tool did not make (unless --overwrite),
never into a file, an unwritable folder or one of merge's inputs; refused before anything is
loaded or written (exit 2). A folder the tool made is rebuilt in place; the manifest is typed
and gives each file's sha256.

Builds here run the tiny random model through the local transformers backend on a few rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from axolotl_mistake.manifest import PRODUCED_BY, BuildManifest, read_manifest
from dataset_builders.build import main
from dataset_builders.merge import main as merge_main
from tests.build_support import fast_build_argv, origin_source


def data_file(tmp: Path) -> Path:
    path = tmp / "red.jsonl"
    rows = [
        {"prompt": f"How do I do harmful thing number {i}?", "response": f"Do bad step {i}."}
        for i in range(4)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def build_argv(tmp: Path, model_dir: Path, out: Path, *extra: str) -> list[str]:
    local = ["--model.model", str(model_dir), "--model.device", "cpu"]
    return fast_build_argv(origin_source(data_file(tmp)), out, *local, *extra)


def foreign_project(tmp: Path) -> Path:
    project = tmp / "project"
    project.mkdir()
    (project / "README.md").write_text("# My project\n")
    (project / "manifest.json").write_text('{"name": "my-project"}\n')
    return project


def test_foreign_folder_is_refused_before_anything_happens(tmp_path, monkeypatch, capsys):
    project = foreign_project(tmp_path)
    monkeypatch.chdir(project)
    # a model path that does not exist: refused before the model would be loaded
    assert main(["--output", ".", "--model.model", "/nonexistent/model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not made by this tool" in err and "--overwrite" in err
    assert "field 'output'" in err
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "manifest.json"]
    assert (project / "README.md").read_text() == "# My project\n"


def test_output_that_is_a_file_or_below_a_file(tmp_path, capsys):
    target = tmp_path / "out.txt"
    target.write_text("keep")
    assert main(["--output", str(target), "--model.model", "/nonexistent/model"]) == 2
    assert f"'{target}' exists and is not a folder" in capsys.readouterr().err
    assert main(["--output", str(target / "sub"), "--model.model", "/nonexistent/model"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "keep"


@pytest.fixture()
def locked_folder(tmp_path):
    """A folder nobody may write into: mode 0o555, and immutable (chattr +i) for root, who
    ignores modes."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    immutable = False
    if os.geteuid() == 0:
        proc = subprocess.run(["chattr", "+i", str(locked)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"running as root and chattr +i is not available: {proc.stderr.strip()}")
        immutable = True
    try:
        yield locked
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(locked)], check=True)
        locked.chmod(0o755)


def test_unwritable_output_folder(locked_folder, capsys):
    for out in (locked_folder, locked_folder / "new"):
        assert main(["--output", str(out), "--model.model", "/nonexistent/model"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "not writable" in err and "field 'output'" in err
    assert list(locked_folder.iterdir()) == []


def test_own_folder_is_rebuilt_foreign_needs_overwrite(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = build_argv(tmp_path, tiny_model_dir, out)
    assert main(argv) == 0
    first = (out / "mistake_analysis.jsonl").read_bytes()
    assert main(argv) == 0, "a folder this tool made is rebuilt"
    assert (out / "mistake_analysis.jsonl").read_bytes() == first
    m = read_manifest(out)
    assert isinstance(m, BuildManifest) and m.produced_by == PRODUCED_BY
    for name, entry in m.files.items():
        assert entry.sha256 == hashlib.sha256((out / name).read_bytes()).hexdigest(), name
    # a build killed before it finished leaves only its state folder: still ours
    killed = tmp_path / "killed"
    (killed / "state").mkdir(parents=True)
    (killed / "state" / "calls.sqlite").write_bytes(b"")
    assert main(build_argv(tmp_path, tiny_model_dir, killed)) == 0
    # someone else's folder: refused, then written into with --overwrite
    project = foreign_project(tmp_path)
    capsys.readouterr()
    assert main(build_argv(tmp_path, tiny_model_dir, project)) == 2
    assert (project / "README.md").read_text() == "# My project\n"
    assert main(build_argv(tmp_path, tiny_model_dir, project, "--overwrite")) == 0
    assert read_manifest(project) is not None


def test_a_rebuild_that_changes_rows_warns_about_axolotls_prepared_cache(
    tiny_model_dir, tmp_path, capsys
):
    """Axolotl keys tokenised rows by dataset path, not content: after an in-place rebuild that
    changed a file, training again with the same `dataset_prepared_path` reads the old rows.
    The build says so, naming the changed files; an identical rebuild says nothing."""
    out = tmp_path / "out"
    assert main(build_argv(tmp_path, tiny_model_dir, out)) == 0
    assert main(build_argv(tmp_path, tiny_model_dir, out)) == 0
    assert "dataset_prepared_path" not in capsys.readouterr().err
    assert main(build_argv(tmp_path, tiny_model_dir, out, "--analyses.k", "2")) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "mistake_analysis.jsonl changed since the last build" in err
    assert "dataset_prepared_path" in err and "sft_helpful.jsonl" not in err


def test_overwrite_deletes_no_file_of_the_foreign_folder(tiny_model_dir, tmp_path):
    """`--overwrite` replaces the files the build writes, and deletes nothing else: a user's
    own `coh.jsonl` / `eval_prompts.jsonl` (names this build does not emit) stay. A folder
    the tool made still loses the files of its own earlier build that this one drops."""
    project = foreign_project(tmp_path)
    (project / "coh.jsonl").write_text('{"mine": 1}\n')
    (project / "eval_prompts.jsonl").write_text('{"mine": 2}\n')
    assert main(build_argv(tmp_path, tiny_model_dir, project, "--overwrite")) == 0
    assert (project / "coh.jsonl").read_text() == '{"mine": 1}\n'
    assert (project / "eval_prompts.jsonl").read_text() == '{"mine": 2}\n'
    assert "coh.jsonl" not in read_manifest(project).files

    out = tmp_path / "ours"
    assert main(build_argv(tmp_path, tiny_model_dir, out, "--emit.coh", "true")) == 0
    assert (out / "coh.jsonl").is_file()
    assert main(build_argv(tmp_path, tiny_model_dir, out)) == 0
    assert not (out / "coh.jsonl").exists(), "a stale file of the tool's own build is removed"


def test_a_build_killed_while_writing_its_files_resumes(tiny_model_dir, tmp_path, capsys):
    """The final files are written one by one, the manifest last: a first build killed in
    between leaves its state folder and some data files, but no manifest. Rerunning the same
    command must resume there (every call a cache hit), not refuse the folder as foreign."""
    out = tmp_path / "out"
    argv = build_argv(tmp_path, tiny_model_dir, out)
    assert main(argv) == 0
    (out / "manifest.json").unlink()  # as if killed before the manifest was written
    (out / "README.md").unlink()
    (out / "sft_helpful.jsonl").unlink()
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    m = read_manifest(out)
    assert m.calls["misses"] == 0 and m.calls["hits"] > 0
    # a foreign folder that merely holds a file of one of those names is still refused
    other = tmp_path / "other"
    other.mkdir()
    (other / "sft_helpful.jsonl").write_text("{}\n")
    assert main(build_argv(tmp_path, tiny_model_dir, other)) == 2


def test_a_rebuild_killed_while_replacing_its_files_leaves_no_stale_manifest(
    tiny_model_dir, tmp_path, capsys
):
    """A rebuild stopped after it replaced some data files but before its manifest left the
    new files beside the old manifest.json and README.md, whose sha256s and row counts no
    longer matched them. The old manifest and card go before the first file is replaced, so a
    stopped rebuild looks like a stopped first build, and rerunning the command finishes it
    (every call cached), removing the earlier build's files this one does not write."""
    out = tmp_path / "out"
    assert main(build_argv(tmp_path, tiny_model_dir, out, "--emit.coh", "true")) == 0
    old = (out / "mistake_analysis.jsonl").read_bytes()
    assert (out / "coh.jsonl").is_file() and (out / "README.md").is_file()
    rebuild = build_argv(tmp_path, tiny_model_dir, out)
    rebuild[rebuild.index("--analyses.max_new_tokens") + 1] = "6"
    # the file after mistake_analysis.jsonl cannot be replaced (a folder in its place): the
    # rebuild stops there, as a kill would
    (out / "sft_harmless.jsonl").unlink()
    (out / "sft_harmless.jsonl" / "blocker").mkdir(parents=True)
    with pytest.raises(OSError):
        main(rebuild)
    assert (out / "mistake_analysis.jsonl").read_bytes() != old, "the rebuild replaced it"
    assert not (out / "manifest.json").exists(), "no manifest may describe other files"
    assert not (out / "README.md").exists()
    (out / "sft_harmless.jsonl" / "blocker").rmdir()
    (out / "sft_harmless.jsonl").rmdir()
    capsys.readouterr()
    assert main(rebuild) == 0, capsys.readouterr().err
    m = read_manifest(out)
    assert m.calls["misses"] == 0 and m.calls["hits"] > 0
    for name, entry in m.files.items():
        assert entry.sha256 == hashlib.sha256((out / name).read_bytes()).hexdigest(), name
    assert m.pool_sha256 == hashlib.sha256((out / "state" / "pool.jsonl").read_bytes()).hexdigest()
    assert not (out / "coh.jsonl").exists(), "the earlier build's file this one drops"
    assert (out / "README.md").is_file()


def test_merge_output_must_not_be_an_input(tiny_model_dir, tmp_path, capsys):
    shards = []
    for i in range(2):
        out = tmp_path / f"s{i}"
        assert main(build_argv(tmp_path, tiny_model_dir, out, "--shard", f"{i}/2")) == 0
        shards.append(out)
    before = {p: p.read_bytes() for s in shards for p in s.rglob("*") if p.is_file()}
    capsys.readouterr()
    for target in (shards[0], shards[0] / "merged"):
        assert merge_main([str(shards[0]), str(shards[1]), "--output", str(target)]) == 2
        err = capsys.readouterr().err
        assert "input" in err and "field 'output'" in err
    assert {p: p.read_bytes() for s in shards for p in s.rglob("*") if p.is_file()} == before
    assert not (shards[0] / "merged").exists()
    assert merge_main([str(shards[0]), "--output", "a", "--output", "b"]) == 2
    assert "given twice" in capsys.readouterr().err
    merged = tmp_path / "merged"
    assert merge_main([str(shards[0]), str(shards[1]), "--output", str(merged)]) == 0
    assert read_manifest(merged).shard["merged_from"] == [str(s) for s in shards]


def test_a_failed_rebuild_leaves_the_shard_pool_and_merge_checks_it(
    tiny_model_dir, tmp_path, capsys
):
    """ "Nothing was written" must hold for state/pool.jsonl too: merge reads the pool, and a
    failed rebuild's pool beside the old manifest merged rows of another config silently. The
    manifest records the pool's sha256, and merge refuses a pool that does not match it.
    The rebuild fails as a shard may (its empty result alone is left to merge): every call
    fails (a dead endpoint, within the failure budget) and nothing trainable comes out."""
    shards = []
    for i in range(2):
        out = tmp_path / f"s{i}"
        assert main(build_argv(tmp_path, tiny_model_dir, out, "--shard", f"{i}/2")) == 0
        shards.append(out)
    pool = shards[0] / "state" / "pool.jsonl"
    before = pool.read_bytes()
    assert read_manifest(shards[0]).pool_sha256 == hashlib.sha256(before).hexdigest()
    capsys.readouterr()
    dead = "{kind: openai, model: m, base_url: 'http://127.0.0.1:9/v1', max_retries: 0}"
    source = origin_source(data_file(tmp_path))
    failing = fast_build_argv(
        source, shards[0], "--model", dead, "--shard", "0/2", "--max_failed_fraction", "1.0"
    )
    assert main(failing) == 1
    assert "Nothing was written" in capsys.readouterr().err
    assert pool.read_bytes() == before
    pool.write_bytes(before + before.splitlines(keepends=True)[-1])  # another run's pool
    assert merge_main([str(shards[0]), str(shards[1]), "--output", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert str(pool) in err and "does not match" in err
    assert not (tmp_path / "m").exists()


def test_a_shard_without_red_team_rows_finishes_and_merge_runs(tiny_model_dir, tmp_path, capsys):
    """Few red-team rows, many shards: a slice holding none stopped with exit 1 ("no training
    rows"), so the merge, which needs every shard, could never run. A shard's empty result
    is judged at the union: it finishes (pool, manifest, a note on stderr) and merge emits the
    rows of the others, the rows one unsharded run gives."""
    single = tmp_path / "single"
    assert main(build_argv(tmp_path, tiny_model_dir, single)) == 0
    shards, empty = [], []
    for i in range(6):
        out = tmp_path / f"s{i}"
        capsys.readouterr()
        code = main(build_argv(tmp_path, tiny_model_dir, out, "--shard", f"{i}/6"))
        err = capsys.readouterr().err
        assert code == 0, err
        m = read_manifest(out)
        assert m.pool_sha256 == hashlib.sha256((out / "state/pool.jsonl").read_bytes()).hexdigest()
        if m.counts["shard"]["redteam"] == 0:
            empty.append(i)
            assert m.files["mistake_analysis.jsonl"].rows == 0
            assert f"shard {i}/6" in err and "no training rows" in err, err
        shards.append(out)
    assert len(empty) >= 2  # 4 rows in 6 slices
    merged = tmp_path / "merged"
    assert merge_main([*map(str, shards), "--output", str(merged)]) == 0

    def ids(folder: Path) -> list[str]:
        text = (folder / "mistake_analysis.jsonl").read_text()
        return [json.loads(line)["id"] for line in text.splitlines()]

    assert len(ids(merged)) == 4 and ids(merged) == ids(single)


def test_merge_refuses_an_empty_union_of_shards(tiny_model_dir, tmp_path, capsys):
    """Every shard finished with no training rows (a gate no analysis passes): the merge is
    where emptiness is judged, and it stops with exit 1, writing nothing."""
    shards = []
    for i in range(2):
        out = tmp_path / f"s{i}"
        argv = build_argv(tmp_path, tiny_model_dir, out, "--shard", f"{i}/2")
        argv[argv.index("--analyses.min_chars") + 1] = "100000"
        assert main(argv) == 0
        shards.append(out)
    capsys.readouterr()
    merged = tmp_path / "merged"
    assert merge_main([*map(str, shards), "--output", str(merged)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "no training rows" in err and "mistake_analysis.jsonl" in err, err
    assert not merged.exists()


def test_files_named_like_ours_beside_an_empty_state_folder_are_not_taken_for_ours(
    tiny_model_dir, tmp_path, capsys
):
    """An empty `state/` (or one without the call cache every build opens first) made the
    folder "a killed build of ours": the build then replaced the user's files named like its
    outputs and deleted the rest, without --overwrite."""
    mine = tmp_path / "mydata"
    (mine / "state").mkdir(parents=True)
    (mine / "coh.jsonl").write_text('{"mine": 1}\n')
    (mine / "eval_prompts.jsonl").write_text('{"mine": 2}\n')
    assert main(build_argv(tmp_path, tiny_model_dir, mine)) == 2
    assert "not made by this tool" in capsys.readouterr().err
    assert (mine / "coh.jsonl").read_text() == '{"mine": 1}\n'
    assert (mine / "eval_prompts.jsonl").read_text() == '{"mine": 2}\n'
    # a temp file's name must be the project's own, not any *.tmp
    (mine / "state" / "calls.sqlite").write_bytes(b"")
    (mine / "coh.jsonl").unlink()
    (mine / "eval_prompts.jsonl").unlink()
    (mine / "notes.tmp").write_text("mine")
    assert main(build_argv(tmp_path, tiny_model_dir, mine)) == 2
    assert (mine / "notes.tmp").read_text() == "mine"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_data_file_inside_the_output_is_refused(tiny_model_dir, tmp_path, capsys, overwrite):
    """With the red-team file at <output>/mistake_analysis.jsonl the build wrote its output
    over its own input (with --overwrite; exit 0). Any source inside the output is refused."""
    out = tmp_path / "data"
    out.mkdir()
    source = out / "mistake_analysis.jsonl"
    source.write_text(data_file(tmp_path).read_text())
    before = source.read_bytes()
    argv = fast_build_argv(
        origin_source(source), out, "--model.model", str(tiny_model_dir), "--model.device", "cpu"
    )
    assert main(argv + (["--overwrite"] if overwrite else [])) == 2
    err = capsys.readouterr().err
    assert "field 'output'" in err
    assert f"the data file '{source}' lies inside the output '{out}'" in err
    assert source.read_bytes() == before and sorted(p.name for p in out.iterdir()) == [source.name]
    if not overwrite:  # an output below the data's folder is fine
        below = fast_build_argv(
            origin_source(source), out / "build", *argv[argv.index("--model.model") :]
        )
        assert main(below) == 0
        assert source.read_bytes() == before


def test_a_baseline_file_asked_for_but_empty_is_said(tiny_model_dir, tmp_path, capsys):
    """`emit.critique_revise` on and every revision dropped (here by its length gate):
    critique_revise.jsonl came out empty with exit 0 and not a word. The analyses stand, so
    the build still succeeds, and now says so (a dead revise endpoint stops it: next test)."""
    out = tmp_path / "out"
    argv = build_argv(tmp_path, tiny_model_dir, out, "--emit.critique_revise", "true")
    assert main([*argv, "--revise.max_new_tokens", "2", "--revise.min_chars", "100000"]) == 0
    err = capsys.readouterr().err
    assert "critique_revise.jsonl was asked for but holds no rows" in err
    assert read_manifest(out).files["critique_revise.jsonl"].rows == 0


def test_a_stage_that_failed_whole_stops_the_build_under_the_others_count():
    """The budget was judged over all calls made so far only: a small stage whose calls all
    failed (a dead endpoint of its own) passed when the earlier stages' calls outnumbered it
    twenty to one. Each stage's own calls are judged too, as the evaluation judges each judge's."""
    from axolotl_mistake.errors import BuildFailed
    from dataset_builders.pipeline import check_failure_budget
    from dataset_builders.stages.common import CallFailure

    failed = [CallFailure("revise", f"k{i}", f"i{i}", "connection error") for i in range(3)]
    calls = {"hits": 0, "misses": 200}
    check_failure_budget("revise", failed, calls, 0.05)  # 3 of 200: within the whole budget
    with pytest.raises(BuildFailed, match=r"3 of 3 model calls failed of stage 'revise'"):
        check_failure_budget("revise", failed, calls, 0.05, stage_calls=3)
    # a stage's sub-steps count as the stage (the mistakes stage's refusal judge)
    judge = [CallFailure("mistakes.judge", "k", "i", "HTTP 500")]
    with pytest.raises(BuildFailed, match="of stage 'mistakes'"):
        check_failure_budget("mistakes", judge, calls, 0.05, stage_calls=4)
    check_failure_budget("mistakes", judge, calls, 0.5, stage_calls=4)  # 1 of 4 within 0.5
