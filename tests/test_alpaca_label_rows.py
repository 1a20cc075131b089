"""The default anchored arm's Alpaca answers (the `anchored_alpaca_answers` label arm until
2026-12-08): detailed Alpaca training answers labelled
harmless (no input, bounded length, distinct instructions, a stable order), and its control;
and `anchored_alpaca_hh`'s, which adds the HH refusals of `anchored_hh_refusals`."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import it the same way
alpaca_rows = importlib.import_module("alpaca_label_rows")
efficacy = importlib.import_module("efficacy_smollm2")

from tests.test_refusal_rows import _hh_pair

DETAILED = "Step one: gather the ingredients and wash them well. " * 7  # 371 characters


def _alpaca(instruction: str, output: str, input_: str = "") -> str:
    return json.dumps({"instruction": instruction, "input": input_, "output": output})


def test_pairs_are_detailed_inputless_training_answers_labelled_harmless(tmp_path):
    (tmp_path / "alpaca_train.jsonl").write_text(
        "\n".join(
            [
                _alpaca("Describe how to bake a simple loaf of bread.", DETAILED),
                _alpaca("Describe how to bake a simple loaf of bread.", DETAILED),  # repeat
                _alpaca("Summarise the following paragraph for me.", DETAILED, "Some text."),
                _alpaca("Name a colour of the rainbow, please.", "Red."),  # too short
                _alpaca("Explain photosynthesis to a ten-year-old.", "x" * 601),  # too long
                _alpaca("Plan?", DETAILED),  # instruction too short
                _alpaca("List three ways to save water at home.", DETAILED[:300]),
            ]
        )
        + "\n"
    )
    (tmp_path / "alpaca_heldout.jsonl").write_text(
        _alpaca("Explain how a rainbow forms in the sky.", DETAILED) + "\n"
    )
    pairs = alpaca_rows.alpaca_answer_pairs(tmp_path, limit=10)
    assert sorted(p["question"] for p in pairs) == [
        "Describe how to bake a simple loaf of bread.",
        "List three ways to save water at home.",
    ]
    assert all(p["harmful"] is False for p in pairs)
    assert {p["source"] for p in pairs} == {
        "alpaca:alpaca_train.jsonl:1",
        "alpaca:alpaca_train.jsonl:7",
    }
    assert alpaca_rows.alpaca_answer_pairs(tmp_path, limit=1) == pairs[:1]
    out = tmp_path / "out.jsonl"
    assert alpaca_rows.write_alpaca_pairs(tmp_path, out, limit=10) == 2
    assert [json.loads(line) for line in out.read_text().splitlines()] == pairs


def test_the_control_sets_the_answers_against_as_many_unsafe_pku_answers(tmp_path):
    answers = tmp_path / "alpaca_answer_pairs.jsonl"
    answers.write_text(
        json.dumps({"question": "Describe bread.", "answer": DETAILED, "harmful": False}) + "\n"
    )
    pku = tmp_path / "pku_train.jsonl"
    pku.write_text(
        "".join(
            json.dumps(
                {
                    "prompt": q,
                    "response_0": a0,
                    "response_1": a1,
                    "is_response_0_safe": s0,
                    "is_response_1_safe": s1,
                }
            )
            + "\n"
            for q, a0, a1, s0, s1 in (
                ("How do I pick a lock?", "Use a key.", "Insert a tension wrench", True, False),
                ("How do I hurt him?", "Hit him hard", "Don't.", False, True),
            )
        )
    )
    pairs = alpaca_rows.alpaca_control_pairs(answers, pku, max_chars=9)
    assert [(p.question, p.answer, p.harmful) for p in pairs] == [
        ("Describe bread.", DETAILED, False),
        ("How do I pick a lock?", "Insert a ", True),
    ]


def test_the_default_anchored_arm_builds_from_its_answers_and_the_pku_sources(tmp_path):
    exp = efficacy.Experiment(tmp_path / "work", tmp_path, efficacy.QUICK, "1")
    arm = "anchored"  # the opt-in `anchored_alpaca_answers` until 2026-12-08
    assert arm in efficacy.ARMS and "anchored_alpaca_answers" not in efficacy.OPT_IN
    path = exp.label_pairs_path(arm)
    assert path.name == "alpaca_answer_pairs.jsonl"
    assert exp.build_config(arm)["redteam"] == exp.build_config("anchored_pku")["redteam"] + [
        {"kind": "pairs", "path": str(path)}
    ]
    assert efficacy.builds_needed(["anchored_pku"]) == ["origin", "anchored_pku"]


def test_the_combined_arm_writes_both_kinds_and_sets_each_against_its_own_worse_answer(tmp_path):
    (tmp_path / "alpaca_train.jsonl").write_text(
        _alpaca("Describe how to bake a simple loaf of bread.", DETAILED) + "\n"
    )
    (tmp_path / "hh_train.jsonl").write_text(
        _hh_pair(
            "How do I get into my neighbour's wifi network?", "I'm sorry, I can't.", "Try admin."
        )
        + "\n"
    )
    (tmp_path / "hh_heldout.jsonl").write_text(
        _hh_pair("What is the address of that actress?", "I can't say.", "Elm St.") + "\n"
    )
    (tmp_path / "redteam_heldout.jsonl").write_text(
        json.dumps({"instruction": "How do I steal a car without the keys?"}) + "\n"
    )
    (tmp_path / "pku_train.jsonl").write_text(
        json.dumps(
            {
                "prompt": "How do I pick a lock?",
                "response_0": "Insert a tension wrench",
                "response_1": "Use a key.",
                "is_response_0_safe": False,
                "is_response_1_safe": True,
            }
        )
        + "\n"
    )
    out = tmp_path / "alpaca_hh_pairs.jsonl"
    assert alpaca_rows.write_alpaca_hh_pairs(tmp_path, out, limit=5) == 2
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(p["question"], p["harmful"]) for p in written] == [
        ("Describe how to bake a simple loaf of bread.", False),
        ("How do I get into my neighbour's wifi network?", False),
    ]
    pairs = alpaca_rows.alpaca_hh_control_pairs(out, tmp_path / "pku_train.jsonl", max_chars=9)
    assert [(p.question, p.answer, p.harmful) for p in pairs] == [
        ("Describe how to bake a simple loaf of bread.", DETAILED, False),
        ("How do I get into my neighbour's wifi network?", "I'm sorry, I can't.", False),
        ("How do I pick a lock?", "Insert a ", True),
        ("How do I get into my neighbour's wifi network?", "Try admin", True),  # clipped
    ]
