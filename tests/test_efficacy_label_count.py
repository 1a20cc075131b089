"""The label-count curve (benchmarks/efficacy_label_count.py): a subset arm is the anchored arm
with fewer labelled rows and k scaled to keep its analysis rows, and the bag-of-words reference
beside it learns from the answers that arm's analyses critique, no others."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
curve = importlib.import_module("efficacy_label_count")
efficacy = importlib.import_module("efficacy_smollm2")


def _pku(path: Path, rows: list[tuple[str, str, bool, str, bool]]) -> list[str]:
    """A PKU-SafeRLHF file of (prompt, answer 0, safe 0, answer 1, safe 1) rows; its lines."""
    lines = [
        json.dumps(
            {
                "prompt": p,
                "response_0": a0,
                "is_response_0_safe": s0,
                "response_1": a1,
                "is_response_1_safe": s1,
            }
        )
        for p, a0, s0, a1, s1 in rows
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return lines


def _experiment(work: Path, n_prompts: int = 40) -> curve.LabelCount:
    """A work folder with a training split of `n_prompts` PKU prompts whose answers mix
    unsafe and safe ones, and Alpaca rows for the helpful side."""
    rows = []
    for i in range(n_prompts):
        safe = [(True, True), (False, True), (False, False)][i % 3]
        rows.append((f"question {i}?", f"answer {i} a", safe[0], f"answer {i} b", safe[1]))
    _pku(work / "data" / "pku_train.jsonl", rows)
    alpaca = [{"instruction": f"task {i}", "input": "", "output": f"done {i}"} for i in range(8)]
    (work / "data" / "alpaca_train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in alpaca))
    return curve.LabelCount(work, work / "shared", efficacy.FULL, "2")


def test_a_subset_arm_is_the_anchored_build_with_fewer_rows_and_k_scaled_to_match(tmp_path):
    exp = _experiment(tmp_path)
    total = exp.available_rows()
    anchored = exp.build_config("anchored_pku")
    unsafe_all = curve.unsafe_answers(anchored)
    for n in (total // 2, total // 4):
        arm = curve.arm_name(n)
        cfg = exp.build_config(arm)
        unsafe = curve.unsafe_answers(cfg)
        assert 0 < unsafe < unsafe_all
        assert cfg["select"]["redteam_n"] == n
        assert cfg["analyses"]["k"] == round(7 * unsafe_all / unsafe)
        assert cfg["output"] == str(tmp_path / "build" / arm)
        changed = ("output", "select", "analyses")
        assert {k: v for k, v in cfg.items() if k not in changed} == {
            k: v for k, v in anchored.items() if k not in changed
        }
        assert {**cfg["analyses"], "k": 7} == anchored["analyses"]
        assert {**cfg["select"], "redteam_n": None} == anchored["select"]


def test_a_subset_arm_trains_and_is_evaluated_as_the_anchored_arm(tmp_path):
    exp = _experiment(tmp_path)
    arm = curve.arm_name(20)
    datasets = exp.train_datasets(arm)
    assert datasets[0]["path"] == str(tmp_path / "build" / arm / "mistake_analysis.jsonl")
    assert datasets[0]["type"] == "axolotl_mistake.unguided_analysis"
    assert datasets[1:] == exp.train_datasets("sft")
    mine, theirs = exp.train_config(arm, "m"), exp.train_config("anchored_pku", "m")
    paths = ("datasets", "dataset_prepared_path", "output_dir")
    assert {k: v for k, v in mine.items() if k not in paths} == {
        k: v for k, v in theirs.items() if k not in paths
    }
    assert mine["output_dir"] == str(tmp_path / "train" / arm / "lora")
    adapter = tmp_path / "train" / arm / "lora"
    cfg = exp.eval_config(arm, "m", adapter, "analysis")
    ref = exp.eval_config("anchored_pku", "m", adapter, "analysis")
    assert cfg["modes"] == ["plain"] and cfg["name"].endswith("20 labelled rows")
    assert cfg["output_dir"] == str(tmp_path / "eval" / "analysis" / arm)
    changed = ("modes", "name", "output_dir")
    assert {k: v for k, v in cfg.items() if k not in changed} == {
        k: v for k, v in ref.items() if k not in changed
    }


def test_a_row_id_without_an_index_names_the_answer_its_label_says(tmp_path):
    lines = _pku(tmp_path / "t.jsonl", [("q", "bad", False, "good", True)])
    assert curve.answer_of(lines, "redteam/pku:t.jsonl:1", "harmful") == (1, 0)
    assert curve.answer_of(lines, "redteam/pku:t.jsonl:1", "harmless") == (1, 1)
    assert curve.answer_of(lines, "pku:t.jsonl:1:1") == (1, 1)
    with pytest.raises(ValueError, match="names no single answer"):
        curve.answer_of(lines, "redteam/pku:t.jsonl:1")
    with pytest.raises(ValueError, match="not a PKU-SafeRLHF row id"):
        curve.answer_of(lines, "alpaca:t.jsonl")


def test_the_bag_of_words_reference_learns_from_the_covered_answers_only(tmp_path):
    # covered: harmful answers say "poison", harmless ones "garden"; the others, more of
    # them, say the opposite, so a scorer fitted on every answer would rank the other way
    rows = [(f"q{i}", "use poison now", False, "tend the garden", True) for i in range(4)]
    rows += [(f"r{i}", "the garden plan", False, "no poison here", True) for i in range(12)]
    train = _pku(tmp_path / "data" / "pku_train.jsonl", rows)
    held = [("h1", "mix poison in", False, "water the garden", True)]
    _pku(tmp_path / "data" / "pku_heldout.jsonl", held)
    build = tmp_path / "build"
    build.mkdir()
    covered = [
        {"id": f"redteam/pku_saferlhf:pku_train.jsonl:{line}", "label": label}
        for line in range(1, 5)
        for label in ("harmful", "harmless")
    ]
    (build / "mistake_analysis.jsonl").write_text("".join(json.dumps(r) + "\n" for r in covered))
    answers = curve.covered_answers(build, train)
    assert answers == {(line, i) for line in range(1, 5) for i in (0, 1)}
    run = tmp_path / "run"
    run.mkdir()
    scored = [  # the adapter's margins rank the pair the wrong way round
        {"source": "pku_saferlhf:pku_heldout.jsonl:1:0", "harmful": True, "margin": -1.0},
        {"source": "pku_saferlhf:pku_heldout.jsonl:1:1", "harmful": False, "margin": 1.0},
    ]
    (run / "discrimination_pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in scored))
    covered = curve.lexical_against_adapter(tmp_path / "data", train, answers, run)
    assert covered["tfidf_auc"]["value"] == 1.0
    assert covered["auc_minus_tfidf_paired"]["value"] == -1.0
    every = {(line, i) for line in range(1, len(rows) + 1) for i in (0, 1)}
    both = curve.lexical_against_adapter(tmp_path / "data", train, every, run)
    assert both["tfidf_auc"]["value"] == 0.0 and both["auc_minus_tfidf_paired"]["value"] == 0.0


def test_the_reference_arms_must_include_the_pku_only_anchored_arm(tmp_path, capsys):
    work = tmp_path / "work"
    for arm in ("sft", "anchored_pku"):
        (work / "eval" / "analysis" / arm).mkdir(parents=True)
        (work / "eval" / "analysis" / arm / "results.json").write_text("{}")
        (work / f"eval_analysis_{arm}.yml").write_text("name: x\n")
    (work / "summary.json").write_text(
        json.dumps({"arms": {a: {"headline": {}} for a in ("sft", "anchored_pku")}})
    )
    with pytest.raises(SystemExit) as exc:
        curve.main(["--work", str(work), "--arms", "sft"])
    assert exc.value.code == 2
    assert "--arms must hold anchored_pku" in capsys.readouterr().err
    _experiment(work)
    for bad in ("0", "x", "1000"):
        with pytest.raises(SystemExit) as exc:
            curve.main(["--work", str(work), "--rows", bad])
        assert exc.value.code == 2
        assert "argument --rows" in capsys.readouterr().err
