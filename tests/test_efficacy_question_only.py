"""benchmarks/efficacy_question_only.py: the held-out pairs' label structure, the fixed-answer
pairs (readable as a `kind: pairs` source, their margins unable to depend on the answer), the
three TF-IDF views, and usage errors before any evaluation."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from axolotl_mistake.records import LabelledPair
from axolotl_mistake.sources import iter_labelled_pairs, parse_source_config
from tests.test_efficacy_diagnostics import _evaluated, _usage_error

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
question_only = importlib.import_module("efficacy_question_only")


def _pair(q: str, harmful: bool, n: int) -> LabelledPair:
    return LabelledPair(question=q, answer=f"answer {n}", harmful=harmful, source=f"s:{n}")


def test_label_structure_counts_questions_by_their_answers_labels():
    pairs = [
        _pair("q1", True, 1), _pair("q1", True, 2),  # two harmful
        _pair("q2", False, 3), _pair("q2", False, 4),  # two harmless
        _pair("q3", False, 5), _pair("q3", False, 6),
        _pair("q4", True, 7), _pair("q4", False, 8),  # one of each
    ]  # fmt: skip
    assert question_only.label_structure(pairs) == {
        "harmful": 1,
        "harmless": 2,
        "mixed": 1,
        "pairs": 8,
    }


def test_fixed_answer_pairs_keep_question_label_and_source_and_read_as_pairs(tmp_path):
    pairs = [_pair("q1", True, 1), _pair("q1", False, 2), _pair("q2", True, 3)]
    rows = question_only.fixed_answer_pairs(pairs, "OK.")
    path = tmp_path / "fixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    read = list(iter_labelled_pairs(parse_source_config({"kind": "pairs", "path": str(path)})))
    assert [(p.question, p.harmful, p.source) for p in read] == [
        (p.question, p.harmful, p.source) for p in pairs
    ]
    assert {p.answer for p in read} == {"OK."}


def test_the_tfidf_views_read_question_answer_or_both(tmp_path):
    """Training questions carry the label ("poison" questions get unsafe answers) while the
    answers' words do not: the question-only view ranks the scored pairs perfectly; on the
    scored pairs the answers carry it the other way round, so the answer-only view, fitted on
    words that never mark a label, does not."""
    from tests.test_efficacy_label_count import _pku

    train = tmp_path / "pku_train.jsonl"
    _pku(
        train,
        [(f"how to poison a dog {i}", "well then", False, "so be it", False) for i in range(4)]
        + [(f"how to bake bread {i}", "so be it", True, "well then", True) for i in range(4)],
    )
    pairs = [
        LabelledPair(question="poison my dog?", answer="fine", harmful=True),
        LabelledPair(question="bake a loaf?", answer="fine", harmful=False),
        LabelledPair(question="poison the cat?", answer="sure", harmful=True),
        LabelledPair(question="bread for dinner?", answer="sure", harmful=False),
    ]
    aucs = {k: v["value"] for k, v in question_only.lexical_references(train, pairs).items()}
    assert aucs["question"] == 1.0
    assert aucs["answer"] == 0.5  # the scored answers' words were never seen: ties
    assert aucs["both"] == 1.0


def test_usage_errors_come_before_any_evaluation(tmp_path, capsys):
    assert "a blank answer" in _usage_error(capsys, question_only, ["--answer", "  "])
    err = _usage_error(capsys, question_only, ["--work", str(tmp_path / "none")])
    assert "no evaluation run under" in err
    work = _evaluated(tmp_path / "work", "sft", "anchored")
    err = _usage_error(capsys, question_only, ["--work", str(work), "--arms", "sft,anchored"])
    assert f"{work / 'data' / 'pku_train.jsonl'}: not found" in err
    assert not (work / "question_only").exists()


def test_an_arms_record_pairs_its_real_and_fixed_answer_runs_by_source(tmp_path):
    """What the answers add is AUC(real) − AUC(fixed), both runs' margins matched to the pairs by
    source id, whatever order each run wrote them in; `twins` reads the real answers."""
    from tests.test_eval_paired import LABELS, REFERENCE, _write_run

    real_margins, fixed_margins = [2.0, 0.5, -1.0, 0.7, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]
    pairs = [
        LabelledPair(question=q, answer=f"a{i}", harmful=y, source=f"s:{i}")
        for i, (q, y) in enumerate(zip(["q0", "q1", "q0", "q1", "q2"], LABELS, strict=True))
    ]
    work = tmp_path / "work"
    runs = {
        question_only.eval_paths(work, "anchored")[1]: real_margins,
        question_only.eval_paths(work, "anchored", question_only.NAME)[1]: fixed_margins,
    }
    for out, margins in runs.items():
        _write_run(out, "anchored", REFERENCE, [2.0, 3.0, 4.0], margins)
        rows = [
            {"key": f"k{i}", "source": f"s:{i}", "harmful": y, "margin": m}
            for i, (y, m) in reversed(list(enumerate(zip(LABELS, margins))))
        ]
        (out / "discrimination_pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    record = question_only.arm_record(work, "anchored", pairs)
    assert record["auc_question_only"]["value"] == 0.5  # one margin for every answer
    assert record["auc"]["value"] == pytest.approx(5 / 6)
    assert record["answers_add_paired"]["value"] == pytest.approx(5 / 6 - 0.5)
    # q0 and q1 have one answer of each kind: 2.0 above -1.0, 0.5 below 0.7
    assert record["twins"]["questions"] == 2 and record["twins"]["value"] == 0.5
    rows[0]["source"] = "s:elsewhere"  # a pair the fixed run did not score
    (out / "discrimination_pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="a pair without a margin"):
        question_only.arm_record(work, "anchored", pairs)
