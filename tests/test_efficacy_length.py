"""The length check of the efficacy arms (benchmarks/efficacy_length.py): answers matched to
the scored pairs by the evaluation's own key, thirds cut the same way for every arm, and a
margin that only measures length gains nothing within thirds."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
length = importlib.import_module("efficacy_length")
efficacy = importlib.import_module("efficacy_smollm2")

BOOT = {"samples": 300, "confidence": 0.95, "seed": 0}


def _run(work: Path, arm: str, pairs: list[dict], margin) -> Path:
    """An evaluation run of `pairs` (a `pairs` JSONL source) with the margins `margin(pair)`."""
    from axolotl_mistake.evaluate.local import pair_key
    from axolotl_mistake.records import LabelledPair

    out = efficacy.eval_paths(work, arm, "mine")[1]
    out.mkdir(parents=True, exist_ok=True)
    source = work / "pairs.jsonl"
    source.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    lines = []
    for p in reversed(pairs):  # the pairs file in another order than the source
        key = pair_key(
            LabelledPair(question=p["question"], answer=p["answer"], harmful=p["harmful"])
        )
        lines.append(json.dumps({"key": key, "harmful": p["harmful"], "margin": margin(p)}))
    (out / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    results = {
        "discrimination": {"pairs_file": "pairs.jsonl"},
        "config": {
            "bootstrap": BOOT,
            "prompt_sets": {"discrimination": {"source": {"kind": "pairs", "path": str(source)}}},
        },
    }
    (out / "results.json").write_text(json.dumps(results))
    return out


PAIRS = [
    {"question": f"q{i}", "answer": "x" * n, "harmful": h}
    for i, (n, h) in enumerate(
        [(10, True), (12, False), (14, False), (50, True), (52, False), (54, True)]
        + [(90, True), (92, True), (94, False)]
    )
]


def test_the_within_thirds_auc_counts_only_comparisons_inside_a_third(tmp_path):
    runs = {
        "sft": _run(tmp_path, "sft", PAIRS, lambda p: float(len(p["answer"]))),
        # ranks by label within each third, against length
        "anchored": _run(
            tmp_path, "anchored", PAIRS, lambda p: p["harmful"] - len(p["answer"]) / 100
        ),
    }
    lengths = {k: len(a) for k, a in length.scored_answers(runs["sft"]).items()}
    assert sorted(lengths.values()) == sorted(len(p["answer"]) for p in PAIRS)
    cuts = [20.0, 70.0]
    margins = {arm: length.pair_margins(run, "pairs.jsonl") for arm, run in runs.items()}
    sft = length.length_record(margins["sft"], lengths, cuts, **BOOT)
    assert [t["n"] for t in sft["thirds"]] == [3, 3, 3]
    assert sft["spearman_margin_length"] == pytest.approx(1.0)
    # within the thirds, length orders 0 of 2, 1 of 2 and 0 of 2 comparisons right
    assert sft["auc_within_thirds"]["value"] == pytest.approx(1 / 6)
    ours = length.length_record(margins["anchored"], lengths, cuts, margins["sft"], **BOOT)
    assert ours["auc_within_thirds"]["value"] == pytest.approx(1.0)
    gain = ours["auc_within_thirds_minus_reference_paired"]
    assert gain["value"] == pytest.approx(5 / 6) and gain["n"] == 9
    with pytest.raises(ValueError, match="not in the run's set"):
        length.length_record(margins["sft"], {}, cuts, **BOOT)


def test_the_refusal_record_sets_refusals_apart():
    margins = {
        "a": (False, 2.0),  # a refusal, harmless, scored harmful
        "b": (True, 1.0),
        "c": (False, -1.0),
        "d": (True, 0.5),
        "e": (False, 0.0),
    }
    refusing = {"a": True, "b": False, "c": False, "d": False, "e": True}
    record = length.refusal_record(margins, refusing, **BOOT)
    assert record["refusals"] == 2 and record["harmful_refusals"] == 0
    assert record["mean_margin_refusals"] == pytest.approx(1.0)
    assert record["mean_margin_others"] == pytest.approx(0.5 / 3)
    # without the refusals: harmful b (1.0), d (0.5) against harmless c (-1.0): 2 of 2
    assert record["auc_without_refusals"]["value"] == pytest.approx(1.0)
    assert record["auc_without_refusals"]["n"] == 3


def test_a_set_without_runs_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(length, "evaluated_run", lambda ap, args: (tmp_path, ["sft"]))
    with pytest.raises(SystemExit) as exc:
        length.main(["--set", "nowhere"])
    assert exc.value.code == 2
    assert "--set" in capsys.readouterr().err


def test_a_run_without_pairs_is_a_usage_error(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path, "sft", PAIRS, lambda p: 0.0)
    (run / "results.json").write_text(json.dumps({"discrimination": None}))
    monkeypatch.setattr(length, "evaluated_run", lambda ap, args: (tmp_path, ["sft"]))
    with pytest.raises(SystemExit) as exc:
        length.main(["--set", "mine"])
    assert exc.value.code == 2
    assert "probed no labelled pairs" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../analysis", "a/b", ""])
def test_a_set_name_that_is_not_a_folder_name_is_a_usage_error(capsys, name):
    with pytest.raises(SystemExit) as exc:
        length.main(["--set", name])
    assert exc.value.code == 2 and "--set" in capsys.readouterr().err
