"""benchmarks/efficacy_learnability.py without training: the split by question, the control's
rows and probe pairs, its config, the log it reads, and its usage errors. (Its trainings are the
positive control's, which tests/test_positive_control.py runs.)"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from axolotl_mistake.records import LabelledPair
from axolotl_mistake.templates import analysis_verdict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
pytest.importorskip("axolotl")  # the script reads the positive control's settings
learn = importlib.import_module("efficacy_learnability")


def _pairs(questions: int) -> list[LabelledPair]:
    return [
        LabelledPair(
            question=f"q{i}", answer=f"{'bad' if harmful else 'good'} {i}", harmful=harmful
        )
        for i in range(questions)
        for harmful in (True, False)
    ]


def test_the_halves_split_by_question_in_file_order():
    split = learn.halves(_pairs(5))
    assert [p.question for p in split["first"]] == ["q0", "q0", "q1", "q1", "q2", "q2"]
    assert [p.question for p in split["second"]] == ["q3", "q3", "q4", "q4"]
    one_sided = [p for p in _pairs(4) if p.harmful or p.question in ("q0", "q1")]
    with pytest.raises(ValueError, match="second half .* only harmful"):
        learn.halves(one_sided)


def test_each_half_is_written_as_the_controls_rows_and_as_probe_pairs(tmp_path):
    split = learn.halves(_pairs(4))
    learn.write_halves(split, tmp_path)
    rows = [json.loads(r) for r in (tmp_path / "first_rows.jsonl").open()]
    assert [r["bad"] for r in rows] == ["bad 0", "good 0", "bad 1", "good 1"]
    assert rows[0]["critique"].startswith(analysis_verdict(True))
    assert rows[1]["critique"].startswith(analysis_verdict(False))
    pairs = [json.loads(r) for r in (tmp_path / "second_pairs.jsonl").open()]
    assert pairs[0] == {"question": "q2", "answer": "bad 2", "harmful": True} and len(pairs) == 4


def test_the_config_trains_one_half_and_probes_the_other(tmp_path):
    cfg = learn.control_config(tmp_path, "second", "first", 40)
    (dataset,) = cfg["datasets"]
    assert dataset["path"] == str(tmp_path / "second_rows.jsonl")
    assert dataset["type"] == "axolotl_mistake.unguided_analysis"  # loss on the critique only
    assert cfg["mistake_probe_pairs"] == str(tmp_path / "first_pairs.jsonl")
    assert cfg["mistake_probe_max_pairs"] == 40 and cfg["mistake_probe_at_start"] is True
    assert (cfg["max_steps"], cfg["learning_rate"], cfg["lora_r"]) == (16, 0.001, 16)
    assert cfg["output_dir"] == str(tmp_path / "second_to_first" / "out")


def test_the_logged_aucs_and_the_table():
    log = "{'discrimination_auc': '0.315', 'x': 1}\n... {'discrimination_auc': 0.6075}"
    assert learn.logged_aucs(log) == [0.315, 0.6075]
    records = {
        "directions": [
            {
                "train": "first",
                "probe": "second",
                "train_rows": 40,
                "probe_pairs": 40,
                "auc_before": 0.315,
                "auc_after": 0.6075,
            }
        ]
    }
    assert "| first half | second half | 40 | 40 | 0.315 | 0.608 | +0.293 |" in learn.table(records)


def test_usage_errors_before_any_training(tmp_path, capsys):
    def error(argv: list[str]) -> str:
        with pytest.raises(SystemExit) as exit_:
            learn.main(argv)
        assert exit_.value.code == 2
        return capsys.readouterr().err

    assert "not a file" in error(["--pairs", str(tmp_path / "none.jsonl")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "a", "harmful": "yes"}\n')
    assert "bad.jsonl" in error(["--pairs", str(bad), "--work", str(tmp_path / "w")])
    one_sided = tmp_path / "one.jsonl"
    one_sided.write_text(
        "".join(
            json.dumps({"question": f"q{i}", "answer": "a", "harmful": True}) + "\n"
            for i in range(4)
        )
    )
    assert "only harmful" in error(["--pairs", str(one_sided), "--work", str(tmp_path / "w")])
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    assert "--work" in error(["--work", str(theirs)])
    assert (theirs / "notes.txt").read_text() == "mine" and len(list(theirs.iterdir())) == 1
