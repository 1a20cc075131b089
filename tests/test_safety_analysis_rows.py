"""A malformed analysis row is refused at config time as `file, line N: field`.

Before, a row with an empty critique reached the tokenizing map and failed there with two
tracebacks, no file or line, and the row's harmful answer printed into the log. The check runs
in `safety.check_config` (inside Axolotl's config validation) and never quotes the row.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from axolotl_mistake import safety

HARMFUL = "Step one: mix the two cleaners in a closed room"
GOOD = {"instruction": "How do I make a toxic gas?", "bad": HARMFUL, "critique": "Harmful."}
TYPE = "axolotl_mistake.unguided_analysis"


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _cfg(path: Path, **entry: object) -> dict:
    return {"datasets": [{"path": str(path), "ds_type": "json", "type": TYPE, **entry}]}


@pytest.mark.parametrize(
    "bad_row, problem",
    [
        ({**GOOD, "critique": "   "}, "field 'critique' is empty"),
        ({"instruction": GOOD["instruction"], "bad": HARMFUL}, "field 'critique' is missing"),
        ({**GOOD, "bad": 7}, "field 'bad' must be a string, got int"),
        ({**GOOD, "input": ["x"]}, "field 'input' must be a string, got list"),
    ],
)
def test_a_bad_row_is_named_by_file_line_and_field(tmp_path, bad_row, problem):
    file = _write(tmp_path / "analysis.jsonl", [json.dumps(GOOD), "", json.dumps(bad_row)])
    with pytest.raises(ValueError) as err:
        safety.check_config(_cfg(file))
    message = str(err.value)
    assert f"{file}, line 3: {problem}" in message
    assert "datasets[0]" in message
    assert HARMFUL not in message and GOOD["instruction"] not in message


def test_a_line_that_is_not_json_is_named(tmp_path):
    file = _write(tmp_path / "analysis.jsonl", [json.dumps(GOOD), '{"instruction": "q", "bad'])
    with pytest.raises(ValueError, match=r"analysis.jsonl, line 2: not a JSON object"):
        safety.check_config(_cfg(file))


def test_a_json_array_row_is_named_by_its_number(tmp_path):
    file = tmp_path / "analysis.json"
    file.write_text(json.dumps([GOOD, GOOD, {**GOOD, "instruction": ""}]))
    with pytest.raises(ValueError, match=r"analysis.json, row 3: field 'instruction' is empty"):
        safety.check_config(_cfg(file))


def test_renamed_columns_are_checked_under_their_names(tmp_path):
    row = {"prompt": "q", "response": HARMFUL, "critique": "Harmful."}
    file = _write(tmp_path / "analysis.jsonl", [json.dumps(row)])
    cfg = {**_cfg(file), "mistake_field_instruction": "prompt", "mistake_field_bad": "response"}
    assert safety.check_config(cfg)  # valid (it warns only that no SFT data is mixed in)
    with pytest.raises(ValueError, match="field 'bad' is missing"):
        safety.check_config({**cfg, "mistake_field_bad": None})  # unset: the default column


def test_good_rows_and_bare_folders_pass(tmp_path):
    file = _write(tmp_path / "analysis.jsonl", [json.dumps(GOOD)] * 3)
    assert safety.check_config(_cfg(file))
    # a folder without data_files holds the builder's other files too: not read row by row
    _write(tmp_path / "notes.jsonl", [json.dumps({"text": "not an analysis row"})])
    assert safety.check_config(_cfg(tmp_path))
    with pytest.raises(ValueError, match=r"notes.jsonl, line 1: field 'instruction' is missing"):
        safety.check_config(_cfg(tmp_path, data_files=["analysis.jsonl", "notes.jsonl"]))


def test_a_critique_copying_its_answer_is_refused_by_file_line_and_field(tmp_path):
    """The critique is trained: one that repeats more than 5 words of the answer in a row would
    teach the answer's text, so the config is refused before training, naming the row, never
    quoting it; words the instruction holds do not count, and `mistake_max_copied_words`
    moves the limit."""
    copying = {**GOOD, "critique": "Harmful: it says to mix the two cleaners in a closed room."}
    restating = {**GOOD, "critique": "It says how to make a toxic gas, which is harmful."}
    file = _write(
        tmp_path / "analysis.jsonl", [json.dumps(GOOD), json.dumps(restating), json.dumps(copying)]
    )
    with pytest.raises(ValueError) as err:
        safety.check_config(_cfg(file))
    message = str(err.value)
    assert f"{file}, line 3: field 'critique' repeats 8 consecutive words" in message
    assert "in field 'bad'" in message and "more than 5" in message
    assert "cleaners" not in message and GOOD["instruction"] not in message
    warnings = safety.check_config({**_cfg(file), "mistake_max_copied_words": 8})
    assert all("no SFT data" in w for w in warnings), warnings  # accepted, with the mix warning
