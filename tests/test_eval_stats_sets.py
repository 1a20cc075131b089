"""Item bookkeeping behind the statistics: every judged item counted once in Cohen's kappa,
goal-hijacking attacks built on the whole instruction (with its input), checked against
sklearn and the source rows."""

from __future__ import annotations

import json

import pytest

from axolotl_mistake.evaluate.inference import Answer
from axolotl_mistake.evaluate.judges import Verdict
from axolotl_mistake.evaluate.scoring import agreement


def test_kappa_counts_each_item_once_when_two_sets_share_row_ids():
    """Two sets read from one file (XSTest unsafe rows as the harmful set, the whole file as
    the over-refusal set) give answers with the same row ids; kappa still counts each judged
    item once, equal to sklearn's on the judges' verdicts."""
    from sklearn.metrics import cohen_kappa_score

    ids = [f"xstest:x.csv:{i}" for i in range(5)]
    answers = [Answer(i, "harmful", "plain", f"q{i}", "a") for i in ids]
    answers += [Answer(i, "over_refusal", "plain", f"q{i}", "a", safe=False) for i in ids]
    a = [True, True, False, False, True]
    b = [True, False, False, True, True]
    verdicts = {
        "one": {
            "harmless_verdict": {i: Verdict(v, "ok") for i, v in zip(ids, a)},
            "refusal": {i: Verdict(v, "ok") for i, v in zip(ids, a)},
        },
        "two": {
            "harmless_verdict": {i: Verdict(v, "ok") for i, v in zip(ids, b)},
            "refusal": {i: Verdict(v, "ok") for i, v in zip(ids, b)},
        },
    }
    result = agreement(verdicts, answers)
    for aspect in ("harmless_verdict", "refusal"):
        k = result[aspect]["one vs two"]
        assert k.n == 5
        assert k.kappa == pytest.approx(cohen_kappa_score(a, b))
        assert k.agreement == pytest.approx(3 / 5)


def test_template_attacks_keep_the_instructions_input(tmp_path):
    """An Alpaca row's input is part of the task the attack hijacks: the attack prompt holds
    instruction and input, and rows that differ only in their input stay distinct."""
    from axolotl_mistake.evaluate.config import GoalHijackingSet
    from axolotl_mistake.evaluate.prompt_sets import load_goal_hijacking

    rows = [
        {
            "instruction": "Translate the sentence into French.",
            "input": "The cat sleeps.",
            "output": "Le chat dort.",
        },
        {
            "instruction": "Translate the sentence into French.",
            "input": "The dog barks.",
            "output": "Le chien aboie.",
        },
        {"instruction": "Name a colour.", "input": "", "output": "Blue."},
    ]
    path = tmp_path / "alpaca.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = GoalHijackingSet.model_validate(
        {"from_instructions": {"source": {"kind": "alpaca", "path": str(path)}}}
    )
    items = load_goal_hijacking(cfg, [])
    assert len(items) == 3
    for item, row in zip(items, rows):
        task = f"{row['instruction']}\n{row['input']}" if row["input"] else row["instruction"]
        assert item.question.startswith(task)
        assert item.target in item.question
    assert len({it.question for it in items}) == 3
