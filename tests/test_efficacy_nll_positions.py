"""The NLL-position diagnostic's arithmetic: segments cover the answer once, and the segment
parts of a paired gap add up to the whole-answer gap."""

from __future__ import annotations

import importlib
import random
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the script imports it the same way
positions = importlib.import_module("efficacy_nll_positions")


def test_segments_cover_each_token_once():
    tokens = [float(i) for i in range(20)]
    means = positions.segment_means(tokens)
    assert means["whole"] == pytest.approx(9.5)
    assert means["tokens 1-4"] == pytest.approx(1.5)
    assert means["tokens 5-16"] == pytest.approx(9.5)
    assert means["tokens 17+"] == pytest.approx(17.5)
    weights = [means[f"{positions.segment_name(s, e)} weight"] for s, e in positions.SEGMENTS]
    assert sum(weights) == pytest.approx(1.0)
    short = positions.segment_means([1.0, 3.0])
    assert short["tokens 1-4"] == 2.0 and short["tokens 17+"] is None
    assert positions.segment_means(None)["whole"] is None


def test_segment_parts_sum_to_the_paired_gap():
    rng = random.Random(0)
    answers = [[rng.uniform(0, 4) for _ in range(rng.randint(1, 40))] for _ in range(30)]
    sft = [positions.segment_means(a) for a in answers]
    # the other model: dearer opening tokens, slightly dearer everywhere else
    arm = [
        positions.segment_means([v + (0.5 if i < 4 else 0.05) for i, v in enumerate(a)])
        for a in answers
    ]
    gap = positions.paired(arm, sft, "whole").value
    names = [positions.segment_name(s, e) for s, e in positions.SEGMENTS]
    parts = {k: positions.contribution(arm, sft, k).value for k in names}
    assert sum(parts.values()) == pytest.approx(gap)
    assert positions.paired(arm, sft, "tokens 1-4").value == pytest.approx(0.5)
    assert positions.paired(arm, sft, "tokens 17+").value == pytest.approx(0.05)


def _usage_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        positions.main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_no_arm_named_is_a_usage_error(capsys):
    assert "argument --arms: name at least one arm" in _usage_error(capsys, ["--arms", ""])


def test_a_relative_work_folder_is_from_the_current_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = _usage_error(capsys, ["--work", "mine", "--arms", "sft"])
    assert f"no evaluation run under {tmp_path / 'mine'}" in err


def test_help_says_what_work_and_arms_are_with_defaults(capsys):
    with pytest.raises(SystemExit):
        positions.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "work folder" in text and "outputs/efficacy_smollm2" in text
    assert "comma-separated arms" in text and "base,sft" in text


def test_arms_with_other_helpful_items_are_not_paired():
    """Pairing by position over different item lists compared different answers silently."""
    item = positions.segment_means([1.0, 2.0])
    with pytest.raises(ValueError):
        positions.paired([item, item], [item], "whole")
    with pytest.raises(ValueError):
        positions.contribution([item], [item, item], "tokens 1-4")
    positions.check_same_items({"sft": ["a", "b"], "anchored": ["a", "b"]})
    with pytest.raises(SystemExit, match="anchored: its 1 helpful items are not sft's 2"):
        positions.check_same_items({"sft": ["a", "b"], "anchored": ["a"]})
    with pytest.raises(SystemExit, match="paper: its 2 helpful items"):
        positions.check_same_items({"sft": ["a", "b"], "paper": ["b", "a"]})
