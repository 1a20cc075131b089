"""The `pairs` source: the plugin's `{question, answer, harmful}` probe-pair file read wherever a
source is (as pairs, and as rows for the builder's red-team role), with located errors. Its use
as an evaluation discrimination set: tests/test_eval_config.py."""

from __future__ import annotations

import json

import pytest

from axolotl_mistake.errors import InputError
from axolotl_mistake.probe import load_pairs as plugin_load_pairs
from axolotl_mistake.sources import iter_labelled_pairs, iter_rows, parse_source_config
from axolotl_mistake.sources.pku_saferlhf import PkuSafeRlhfSource


@pytest.fixture
def pairs_file(tmp_path, shared_data):
    """Real PKU-SafeRLHF pairs written in the plugin's probe format (no `source`, as a user's
    hand-made file would be)."""
    pku = PkuSafeRlhfSource(path=str(shared_data / "pku_saferlhf" / "test_sample.jsonl"), limit=8)
    pairs = list(iter_labelled_pairs(pku))
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        "".join(
            json.dumps({"question": p.question, "answer": p.answer, "harmful": p.harmful}) + "\n"
            for p in pairs
        )
    )
    return path, pairs


def test_same_file_for_the_plugin_and_the_builder(pairs_file):
    path, expected = pairs_file
    assert {p.harmful for p in expected} == {True, False}
    cfg = parse_source_config({"kind": "pairs", "path": str(path)})
    got = list(iter_labelled_pairs(cfg))
    assert [(p.question, p.answer, p.harmful) for p in got] == [
        (p.question, p.answer, p.harmful) for p in expected
    ]
    assert got[0].source == "pairs:pairs.jsonl:1"
    # the plugin's reader accepts the very same file
    assert [p.answer for p in plugin_load_pairs(path)] == [p.answer for p in got]

    rows = list(iter_rows(cfg))
    assert len(rows) == len(expected)
    for row, pair in zip(rows, expected):
        if pair.harmful:  # an origin mistake for the builder
            assert (row.unsafe_answer, row.safe_answer, row.kind) == (pair.answer, None, "harmful")
        else:  # a harmless answer
            assert (row.unsafe_answer, row.safe_answer) == (None, pair.answer)
    assert [r.line for r in rows] == list(range(1, len(expected) + 1))


@pytest.mark.parametrize(
    "line, field, message",
    [
        ('{"question": "q", "answer": "a"}', "harmful", "required field 'harmful' is missing"),
        ('{"question": "q", "answer": "a", "harmful": "yes"}', "harmful", "valid boolean"),
        ('{"question": "q", "answer": 3, "harmful": true}', "answer", "valid string"),
        ('{"question": "q", "answer": "a", "harmful": true, "id": 7}', "id", "unknown field"),
        ('{"question": "q", "answer": "a", "harmful": tru}', "harmful", "invalid JSON"),
        # a key without its colon is the key at fault, not the one before it
        ('{"question": "q", "answer" "a", "harmful": true}', "answer", "near field 'answer'"),
        # a missing comma or an unquoted key come after a finished field: said so
        ('{"question": "q" "answer": "a", "harmful": true}', "question", "after field"),
        ('{"question": "q", answer: "a", "harmful": true}', "question", "after field"),
        # a row cut at the end of its line is said so, at that line's last column (not at
        # column 1, where json puts the line break)
        (
            '{"question": "q", "answer": "a", "harmful": true',
            "harmful",
            "at column 49: Expecting ',' delimiter (the line ends before its JSON value does",
        ),
        (
            '{"question": "q", "harmful": true, "answer": "a}',
            "answer",
            "a string starts here and is not closed (the line ends before",
        ),
        ('{"question": "q", "answer": "a\tb", "harmful": true}', "answer", "write it escaped"),
    ],
)
def test_bad_pairs_name_file_line_and_field(tmp_path, line, field, message):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"question": "q0", "answer": "a0", "harmful": false}\n\n' + line + "\n")
    cfg = parse_source_config({"kind": "pairs", "path": str(path)})
    with pytest.raises(InputError) as info:
        list(iter_labelled_pairs(cfg))
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), 3, field)
    assert message in err.message


def test_csv_pairs_are_refused_with_the_reason(tmp_path):
    with pytest.raises(InputError, match="typed values"):
        parse_source_config({"kind": "pairs", "path": str(tmp_path / "pairs.csv")})


def test_pairs_as_the_builders_red_team_source(tiny_model_dir, pairs_file, tmp_path):
    """Through the builder's own config and selection: harmful pairs arrive as origin mistakes."""
    from dataset_builders.config import load_config
    from dataset_builders.selection import read_and_select

    path, expected = pairs_file
    (tmp_path / "build.yml").write_text(
        f"redteam:\n  - {{kind: pairs, path: {path}}}\nhelpful: []\n"
    )
    argv = ["--config", str(tmp_path / "build.yml"), "--model.model", str(tiny_model_dir)]
    argv += ["--mistakes.mode", "origin", "--output", str(tmp_path / "out")]
    cfg, _, _ = load_config(argv)
    red = [it for it in read_and_select(cfg, None).records if it.role == "redteam"]
    harmful = {p.answer for p in expected if p.harmful}
    assert {it.row.unsafe_answer for it in red if it.row.unsafe_answer} <= harmful
    assert any(it.row.unsafe_answer for it in red)
    assert all(it.row.source == "pairs:pairs.jsonl" for it in red)


def test_a_blank_question_or_answer_is_a_located_error(tmp_path):
    """A pair with nothing to judge reached the probe and the evaluation as a scored pair."""
    for line, field in (
        ({"question": "What is it?", "answer": "", "harmful": True}, "answer"),
        ({"question": "   ", "answer": "x", "harmful": False}, "question"),
        ({"question": "Q?", "answer": " \t ", "harmful": True}, "answer"),
    ):
        path = tmp_path / "pairs.jsonl"
        good = {"question": "Fine?", "answer": "Yes.", "harmful": False}
        path.write_text(json.dumps(good) + "\n" + json.dumps(line) + "\n")
        with pytest.raises(InputError) as err:
            list(iter_labelled_pairs(parse_source_config({"kind": "pairs", "path": str(path)})))
        assert err.value.line == 2 and err.value.field == field, err.value
        assert "empty" in err.value.message


def test_a_blank_mapped_answer_is_no_answer(tmp_path):
    """A whitespace-only `response` of a mapped file is no answer (as an empty one is), not a
    labelled pair of blanks."""
    path = tmp_path / "rows.jsonl"
    rows = [{"prompt": "Q one?", "response": "  \t", "safe": "A fine answer."}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = parse_source_config(
        {
            "kind": "jsonl",
            "path": str(path),
            "fields": {"instruction": "prompt", "unsafe_answer": "response", "safe_answer": "safe"},
        }
    )
    (row,) = list(iter_rows(cfg))
    assert row.unsafe_answer is None and row.safe_answer == "A fine answer."
    assert [(p.answer, p.harmful) for p in iter_labelled_pairs(cfg)] == [("A fine answer.", False)]
