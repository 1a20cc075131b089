"""benchmarks/efficacy_reasons.py: the answers an anchored build critiqued, read back with their
labels; the conditions that differ only in the reasons; usage errors before any training."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from axolotl_mistake.records import LabelledPair
from axolotl_mistake.templates import analysis_verdict, anchored_critique
from tests.test_efficacy_diagnostics import _usage_error
from tests.test_positive_control import REASONS

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
reasons = importlib.import_module("efficacy_reasons")

ROWS = [
    {"instruction": "q1", "bad": "a1", "critique": "The answer is harmful. It helps theft."},
    {"instruction": "q1", "bad": "a1", "critique": "The answer is harmful. Second critique."},
    {"instruction": "q1", "bad": "a2", "critique": "The answer is harmless. It declines."},
    {"instruction": "q2", "bad": "a1", "critique": "The answer is harmless."},
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_each_answer_is_read_once_with_its_first_critique_and_the_label_it_opens_with(tmp_path):
    rows = reasons.build_rows(_write(tmp_path / "a.jsonl", ROWS))
    assert [(r["instruction"], r["bad"], r["harmful"]) for r in rows] == [
        ("q1", "a1", True),
        ("q1", "a2", False),
        ("q2", "a1", False),  # one answer text to another question is another answer
    ]
    assert rows[0]["critique"].endswith("It helps theft.")
    assert rows[0]["critiques"] == [ROWS[0]["critique"], ROWS[1]["critique"]]
    bad = [*ROWS[:2], {"instruction": "q3", "bad": "a", "critique": "Harmful, since ..."}]
    with pytest.raises(ValueError, match=r"a\.jsonl:3: field 'critique' opens with neither"):
        reasons.build_rows(_write(tmp_path / "a.jsonl", bad))


def test_model_and_fixed_reasons_train_the_same_answers_and_differ_only_in_the_reasons(tmp_path):
    anchored = reasons.build_rows(_write(tmp_path / "a.jsonl", ROWS))
    same = [LabelledPair(question="p", answer="x", harmful=True)]
    sets = reasons.condition_rows(anchored, same, reasons.CONDITIONS[:4])
    assert list(sets) == list(reasons.CONDITIONS[:4])  # shuffled needs two prompts per label
    model, fixed = sets["model_reasons"], sets["fixed_reasons"]
    key = [(r["instruction"], r["input"], r["bad"]) for r in model]
    assert key == [(r["instruction"], r["input"], r["bad"]) for r in fixed]
    assert [r["critique"] for r in model] == [r["critique"] for r in anchored]
    assert [r["critique"] for r in fixed] == [
        anchored_critique(True, REASONS[True]),
        anchored_critique(False, REASONS[False]),
        anchored_critique(False, REASONS[False]),
    ]
    grounded = sets["grounded_reasons"]
    assert key == [(r["instruction"], r["input"], r["bad"]) for r in grounded]
    assert [r["critique"] for r in grounded] == [r["critique"] for r in model]  # no answer words
    for m, f in zip(model, fixed, strict=True):  # the verdict sentence is the same
        assert m["critique"].split(".")[0] == f["critique"].split(".")[0]
    assert sets["twelve_prompts"] == [
        {
            "instruction": "p",
            "input": "",
            "bad": "x",
            "critique": anchored_critique(True, REASONS[True]),
        }
    ]


def test_grounded_reasons_pick_the_critique_that_names_most_of_the_answer():
    row = {
        "instruction": "How do I pick a lock quietly?",
        "bad": "Insert a tension wrench, then rake the pins until the cylinder turns.",
        "harmful": True,
        "critiques": [
            "The answer is harmful. It helps someone pick a lock quietly.",  # the request only
            "The answer is harmful. Raking pins with a tension wrench opens the cylinder.",
            "The answer is harmful. The wrench opens it.",
        ],
    }
    # words of the request ("pick", "lock", "quietly") and of the template ("harmful") count
    # for nothing; "raking" is not "rake": words match exactly
    assert [reasons.answer_words(c, row) for c in row["critiques"]] == [0, 4, 1]
    assert reasons.most_grounded(row) == row["critiques"][1]
    tie = {**row, "critiques": [row["critiques"][0], "The answer is harmful. It is unethical."]}
    assert reasons.most_grounded(tie) == tie["critiques"][0]  # a tie keeps file order
    harmless = {**row, "critiques": ["The answer is harmless. Harmless wrench advice."]}
    assert reasons.answer_words(harmless["critiques"][0], harmless) == 1  # "wrench" only


def test_shuffled_reasons_move_each_critique_to_another_prompt_of_the_same_label():
    anchored = [
        {"instruction": q, "bad": a, "harmful": h, "critique": f"{q}/{a}"}
        for q, a, h in [
            ("q1", "a", True),
            ("q1", "b", True),
            ("q2", "a", True),
            ("q3", "a", False),
            ("q4", "a", False),
            ("q3", "b", True),
        ]
    ]
    out = reasons.shuffled(anchored)
    for r, c in zip(anchored, out, strict=True):
        donor = next(d for d in anchored if d["critique"] == c)
        assert donor["harmful"] is r["harmful"] and donor["instruction"] != r["instruction"]
    for harmful in (True, False):
        assert sorted(c for r, c in zip(anchored, out) if r["harmful"] is harmful) == sorted(
            r["critique"] for r in anchored if r["harmful"] is harmful
        )
    one_prompt = [{**anchored[0], "harmful": False}, *anchored[1:3]]
    with pytest.raises(ValueError, match="no rotation of the 1 harmless answers"):
        reasons.shuffled(one_prompt)
    sets = reasons.condition_rows(anchored, [], ["shuffled_reasons"])
    assert [r["critique"] for r in sets["shuffled_reasons"]] == out


def test_pooled_reasons_keep_each_verdict_and_take_reasons_from_another_prompt():
    anchored = [
        {"instruction": q, "bad": "a", "harmful": h, "critique": anchored_critique(h, f"R{q}.")}
        for q, h in [("q1", True), ("q2", False), ("q3", True), ("q4", False)]
    ]
    out = reasons.pooled(anchored)
    assert out == [  # a rotation by two: the verdicts stay, the reasons move
        anchored_critique(True, "Rq3."),
        anchored_critique(False, "Rq4."),
        anchored_critique(True, "Rq1."),
        anchored_critique(False, "Rq2."),
    ]
    mixed = [anchored[0], anchored[1], {**anchored[2], "instruction": "q1"}, anchored[3]]
    # a shift of two would give q1's first answer its second's reasons: three is taken
    assert [reasons.reasons_of(c) for c in reasons.pooled(mixed)] == [
        " Rq4.",
        " Rq1.",
        " Rq2.",
        " Rq3.",
    ]
    with pytest.raises(ValueError, match="no rotation of the 2 answers"):
        reasons.pooled([anchored[0], {**anchored[1], "instruction": "q1"}])


def test_short_reasons_keep_the_verdict_and_the_first_words_of_the_reasons():
    critique = anchored_critique(
        False, "It declines,\nand explains why the request is unsafe to answer."
    )
    assert reasons.shortened(critique, 3) == "It declines, and"
    assert reasons.shortened(critique) == "It declines, and explains why the request is"
    anchored = [{"instruction": "q", "bad": "a", "harmful": False, "critique": critique}]
    (row,) = reasons.condition_rows(anchored, [], ["short_reasons"])["short_reasons"]
    assert row["critique"] == anchored_critique(False, reasons.shortened(critique))
    assert row["critique"].startswith("The answer is harmless. It declines,")


def test_verdict_conditions_and_few_fixed_reasons_keep_each_answers_verdict():
    anchored = [
        {"instruction": f"q{i}", "bad": "a", "harmful": h, "critique": anchored_critique(h, "R.")}
        for i, h in enumerate([True, False, True, True, True, True, False])
    ]
    sets = reasons.condition_rows(
        anchored, [], ["verdict_only", "few_fixed_reasons", "verdict_and_reasons"]
    )
    verdicts = [analysis_verdict(r["harmful"]) for r in anchored]
    assert [r["critique"] for r in sets["verdict_only"]] == verdicts
    harmful, harmless = reasons.FEW_FIXED_REASONS[True], reasons.FEW_FIXED_REASONS[False]
    assert harmful[0] == REASONS[True] and harmless[0] == REASONS[False]
    assert len(set(harmful) | set(harmless)) == 8  # no reason serves both labels
    # the n-th answer of each label takes reason n mod 4: the fifth harmful one wraps round
    expected = [
        harmful[0],
        harmless[0],
        harmful[1],
        harmful[2],
        harmful[3],
        harmful[0],
        harmless[1],
    ]
    assert [r["critique"] for r in sets["few_fixed_reasons"]] == [
        anchored_critique(r["harmful"], e) for r, e in zip(anchored, expected, strict=True)
    ]
    both = sets["verdict_and_reasons"]
    assert [(r["instruction"], r["critique"]) for r in both] == [
        (r["instruction"], c) for r, v in zip(anchored, verdicts) for c in (v, r["critique"])
    ]


def test_usage_errors_come_before_any_training(tmp_path, capsys):
    from tests.test_efficacy_label_count import _pku

    out, work = tmp_path / "out", tmp_path / "work"
    assert "--seeds: whole numbers" in _usage_error(capsys, reasons, ["--seeds", "1,x"])
    assert "--steps" in _usage_error(capsys, reasons, ["--steps", "0"])
    err = _usage_error(capsys, reasons, ["--conditions", "model_reasons,grounded"])
    assert "--conditions: unknown grounded" in err and "grounded_reasons" in err
    assert "at least one" in _usage_error(capsys, reasons, ["--conditions", " , "])
    data = work / "data"
    _pku(data / "pku_train.jsonl", [("q", "a", True, "b", False), ("p", "a", False, "b", False)])
    _pku(data / "pku_heldout.jsonl", [("r", "a", True, "b", False)])
    err = _usage_error(capsys, reasons, ["--work", str(work), "--out", str(out)])
    assert "mistake_analysis.jsonl: not found" in err and "--arms anchored_pku" in err
    analyses = work / "build" / "anchored_pku" / "mistake_analysis.jsonl"
    _write(analyses, [{"instruction": "q", "bad": "a", "critique": "Bad answer."}])
    err = _usage_error(capsys, reasons, ["--work", str(work), "--out", str(out)])
    assert "mistake_analysis.jsonl:1: field 'critique'" in err
    _write(analyses, ROWS)
    err = _usage_error(capsys, reasons, ["--work", str(work), "--out", str(out)])
    assert "no rotation of the 1 harmful answers" in err  # shuffled_reasons: one harmful prompt
    out.mkdir()
    (out / "mine.txt").write_text("not the script's")
    args = ["--work", str(work), "--out", str(out), "--conditions", "model_reasons"]
    err = _usage_error(capsys, reasons, args)
    assert "--out" in err and (out / "mine.txt").read_text() == "not the script's"
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]  # nothing written


def test_the_diagnostics_settings_override_the_controls_own(tmp_path):
    from tests.test_positive_control import control_config

    pairs = tmp_path / "p.jsonl"
    plain = control_config(tmp_path, tmp_path / "r.jsonl", tmp_path / "w", pairs, 8, seed=1)
    cfg = control_config(
        tmp_path,
        tmp_path / "r.jsonl",
        tmp_path / "w",
        pairs,
        8,
        seed=1,
        max_steps=40,
        sequence_len=reasons.SEQUENCE_LEN,
    )
    assert (plain["max_steps"], plain["sequence_len"]) == (16, 256)
    assert (cfg["max_steps"], cfg["sequence_len"], cfg["seed"]) == (40, 512, 1)
    assert {k: v for k, v in cfg.items() if k not in ("max_steps", "sequence_len")} == {
        k: v for k, v in plain.items() if k not in ("max_steps", "sequence_len")
    }
