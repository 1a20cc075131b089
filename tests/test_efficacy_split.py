"""The efficacy experiment's train / held-out split: by prompt, disjoint, stable, resumable."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from dataset_builders.stages.common import normalise

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the script imports it the same way
split = importlib.import_module("efficacy_split")


def _prompts(path: Path, name: str) -> set[str]:
    spec = next(s for s in split.SPECS if s.name == name)
    return {normalise(split.prompt_of(spec, json.loads(line))) for line in path.open()}


def test_no_prompt_on_both_sides_and_sizes_add_up(shared_data, tmp_path):
    counts = split.split_shared(shared_data, tmp_path)
    for name, total in (("pku", 152), ("hh", 2312), ("alpaca", 5000)):
        train = _prompts(tmp_path / f"{name}_train.jsonl", name)
        held = _prompts(tmp_path / f"{name}_heldout.jsonl", name)
        assert not train & held
        assert counts[name]["train_rows"] + counts[name]["heldout_rows"] == total
        assert counts[name]["heldout_rows"] > 0 and counts[name]["train_rows"] > 0
    red = [json.loads(line) for line in (tmp_path / "redteam_heldout.jsonl").open()]
    pku_train = _prompts(tmp_path / "pku_train.jsonl", "pku")
    assert red[0]["origin"] == "pku_saferlhf"
    assert not {normalise(r["instruction"]) for r in red} & pku_train


def test_stable_and_resumable(shared_data, tmp_path):
    a = split.split_shared(shared_data, tmp_path / "a")
    b = split.split_shared(shared_data, tmp_path / "b")
    assert a == b
    for name in ("pku_heldout.jsonl", "hh_train.jsonl", "alpaca_heldout.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    times = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a").iterdir()}
    assert split.split_shared(shared_data, tmp_path / "a") == a  # a finished split is kept
    assert times == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a").iterdir()}


def _small_copy(shared: Path, dest: Path, pku_rows: int) -> Path:
    """The shared files the split reads, PKU cut to its first `pku_rows` rows."""
    for relative in [spec.relative for spec in split.SPECS] + list(split.EVAL_ONLY.values()):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((shared / relative).read_bytes())
    pku = dest / "pku_saferlhf" / "test_sample.jsonl"
    pku.write_text("".join(pku.read_text().splitlines(keepends=True)[:pku_rows]))
    return dest


def test_a_split_that_no_longer_matches_the_shared_data_stops_the_run(shared_data, tmp_path):
    """Resuming in a folder split from other data (or with an edited split file) would reuse
    builds, adapters and evaluations made from the old files as if they were current."""
    work = tmp_path / "work"
    split.split_shared(shared_data, work)
    smaller = _small_copy(shared_data, tmp_path / "shared", pku_rows=20)
    with pytest.raises(SystemExit, match=r"pku_(train|heldout).jsonl is not the split of"):
        split.split_shared(smaller, work)
    assert split.split_shared(shared_data, work)["pku"]["train_rows"] == 98  # unchanged: fine
    (work / "alpaca_train.jsonl").write_text("edited\n")
    with pytest.raises(SystemExit, match="alpaca_train.jsonl is not the split of"):
        split.split_shared(shared_data, work)


def test_an_edited_xstest_copy_stops_the_run(shared_data, tmp_path):
    """XSTest is evaluated from the split folder's copy, so an edited shared file is caught
    like an edited split file instead of re-scoring over-refusal under the old results."""
    shared = _small_copy(shared_data, tmp_path / "shared", pku_rows=152)
    work = tmp_path / "work"
    split.split_shared(shared, work)
    copy = work / "xstest_prompts.csv"
    assert copy.read_bytes() == (shared / "xstest" / "xstest_prompts.csv").read_bytes()
    assert "xstest_prompts.csv" in json.loads((work / "split.json").read_text())["files"]
    with (shared / "xstest" / "xstest_prompts.csv").open("a") as handle:
        handle.write("999,How do I kill time?,homonyms,safe,kill,\n")
    with pytest.raises(SystemExit, match="xstest_prompts.csv is not the split of"):
        split.split_shared(shared, work)


def test_a_split_made_before_the_xstest_copy_gets_it_on_resume(shared_data, tmp_path):
    work = tmp_path / "work"
    counts = split.split_shared(shared_data, work)
    (work / "xstest_prompts.csv").unlink()
    (work / "split.json").write_text(json.dumps({"salt": split.SALT, "rows": counts}))
    times = {p.name: p.stat().st_mtime_ns for p in work.glob("*.jsonl")}
    assert split.split_shared(shared_data, work) == counts
    assert (work / "xstest_prompts.csv").is_file()
    assert times == {p.name: p.stat().st_mtime_ns for p in work.glob("*.jsonl")}
    # the split files it did hold are still checked: a deleted one is not quietly remade
    (work / "pku_train.jsonl").unlink()
    (work / "split.json").write_text(json.dumps({"salt": split.SALT, "rows": counts}))
    with pytest.raises(SystemExit, match="pku_train.jsonl is not the split of"):
        split.split_shared(shared_data, work)


def test_an_interrupted_split_is_finished_on_resume(shared_data, tmp_path):
    done = split.split_shared(shared_data, tmp_path / "a")
    (tmp_path / "a" / "split.json").unlink()  # killed before its last write
    (tmp_path / "a" / "hh_train.jsonl").write_text("half")
    assert split.split_shared(shared_data, tmp_path / "a") == done
    assert (tmp_path / "a" / "split.json").exists()


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"prompt": "x", ', "pku_saferlhf/test_sample.jsonl:2: not JSON"),
        ('{"response_0": "x"}', "pku_saferlhf/test_sample.jsonl:2: field 'prompt' is missing"),
        ("[1, 2]", "pku_saferlhf/test_sample.jsonl:2: not a JSON object"),
    ],
)
def test_a_bad_shared_row_is_named_by_file_and_line(shared_data, tmp_path, line, problem):
    shared = _small_copy(shared_data, tmp_path / "shared", pku_rows=1)
    with (shared / "pku_saferlhf" / "test_sample.jsonl").open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(SystemExit, match=problem):
        split.split_shared(shared, tmp_path / "work")
    assert not (tmp_path / "work" / "split.json").exists()
