"""The efficacy experiment's train / held-out split: by prompt, disjoint, stable, resumable."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

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
    (tmp_path / "a" / "pku_train.jsonl").write_text("kept\n")
    assert split.split_shared(shared_data, tmp_path / "a") == a  # an existing split is kept
    assert (tmp_path / "a" / "pku_train.jsonl").read_text() == "kept\n"
