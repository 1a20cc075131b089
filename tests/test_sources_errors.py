"""Malformed inputs: every one is an InputError whose message names file, line and field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from axolotl_mistake.errors import InputError
from axolotl_mistake.sources import iter_labelled_pairs, iter_rows, parse_source_config


def _j(**kw) -> str:
    return json.dumps(kw, ensure_ascii=False)


def _pku(*, drop: tuple[str, ...] = (), **changes) -> str:
    """A PKU-SafeRLHF row (one safe, one unsafe answer) with `changes` applied, `drop` removed."""
    row = {
        "prompt": "p?",
        "response_0": "a",
        "response_1": "b",
        "is_response_0_safe": True,
        "is_response_1_safe": False,
        **changes,
    }
    return _j(**{k: v for k, v in row.items() if k not in drop})


PKU_OK = _pku()
HH_OK = _j(
    chosen="\n\nHuman: hi\n\nAssistant: hello", rejected="\n\nHuman: hi\n\nAssistant: go away"
)
XS_HEADER = "id,prompt,type,label,focus,note\n"


def _lines(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# (case id, file name, content, config keys besides path, expected line, expected field)
CASES = [
    (
        "bad-json",
        "pku.jsonl",
        _lines(PKU_OK, PKU_OK, '{"prompt": "p?", "response_0": "a" "response_1": "b"}'),
        {"kind": "pku_saferlhf"},
        3,
        "response_0",
    ),
    (
        "missing-field",
        "pku.jsonl",
        _lines(PKU_OK, _pku(drop=("is_response_1_safe",))),
        {"kind": "pku_saferlhf"},
        2,
        "is_response_1_safe",
    ),
    (
        "wrong-type-bool",
        "pku.jsonl",
        _lines(_pku(is_response_0_safe="yes", is_response_1_safe=True)),
        {"kind": "pku_saferlhf"},
        1,
        "is_response_0_safe",
    ),
    (
        "empty-string",
        "pku.jsonl",
        _lines(PKU_OK, PKU_OK, PKU_OK, _pku(prompt="   ", is_response_1_safe=True)),
        {"kind": "pku_saferlhf"},
        4,
        "prompt",
    ),
    (
        "non-utf8-jsonl",
        "pku.jsonl",
        PKU_OK.encode()
        + b"\n"
        + PKU_OK.replace('"b"', '"caf\\u00e9"').encode().replace(b"\\u00e9", b"\xe9")
        + b"\n",
        {"kind": "pku_saferlhf"},
        2,
        "response_1",
    ),
    (
        # the first line: a bad byte, not "one JSON object spanning several lines"
        "non-utf8-first-line-jsonl",
        "pku.jsonl",
        PKU_OK.replace('"b"', '"caf\\u00e9"').encode().replace(b"\\u00e9", b"\xe9") + b"\n",
        {"kind": "pku_saferlhf"},
        1,
        "response_1",
    ),
    (
        "non-utf8-csv",
        "xstest.csv",
        XS_HEADER.encode()
        + b"1,How do I kill time?,homonyms,safe,kill,\n2,Caf\xe9 question?,homonyms,safe,,\n",
        {"kind": "xstest"},
        3,
        "prompt",
    ),
    (
        "wrong-type-severity",
        "pku.jsonl",
        _lines(_pku(is_response_1_safe=True, response_1_severity_level="high")),
        {"kind": "pku_saferlhf"},
        1,
        "response_1_severity_level",
    ),
    (
        "hh-no-turn-markers",
        "hh.jsonl",
        _lines(
            HH_OK,
            _j(chosen="Human: hi Assistant: hello", rejected="\n\nHuman: hi\n\nAssistant: no"),
        ),
        {"kind": "hh_rlhf"},
        2,
        "chosen",
    ),
    (
        "hh-prefix-mismatch",
        "hh.jsonl",
        _lines(
            HH_OK,
            HH_OK,
            _j(
                chosen="\n\nHuman: hi\n\nAssistant: hello",
                rejected="\n\nHuman: bye\n\nAssistant: no",
            ),
        ),
        {"kind": "hh_rlhf"},
        3,
        "rejected",
    ),
    (
        "hh-ends-with-human",
        "hh.jsonl",
        _lines(
            _j(
                chosen="\n\nHuman: hi\n\nAssistant: hello",
                rejected="\n\nHuman: hi\n\nAssistant: x\n\nHuman: and?",
            )
        ),
        {"kind": "hh_rlhf"},
        1,
        "rejected",
    ),
    (
        "hh-gz-bad-json",
        "hh.jsonl.gz",
        gzip.compress(
            _lines(HH_OK, '{"chosen": "\\n\\nHuman: hi\\n\\nAssistant: x", "rejected": }')
        ),
        {"kind": "hh_rlhf"},
        2,
        "rejected",
    ),
    (
        "json-array-wrong-type",
        "alpaca.json",
        b'[\n  {"instruction": "a", "input": "", "output": "b"},\n  {\n    "instruction": 7,\n    "output": "c"\n  }\n]\n',
        {"kind": "alpaca"},
        3,
        "instruction",
    ),
    (
        "json-array-non-utf8",
        "alpaca.json",
        b'[{"instruction": "a", "output": "b"},\n {"instruction": "x", "output": "caf\xe9"}]',
        {"kind": "alpaca"},
        2,
        "output",
    ),
    (
        "generic-bad-mapping",
        "mine.jsonl",
        _lines(_j(question="q", reply="r")),
        {"kind": "jsonl", "fields": {"instruction": "prompt", "unsafe_answer": "reply"}},
        1,
        "prompt",
    ),
    (
        "csv-bad-mapping",
        "mine.csv",
        b"question,reply\nq1,r1\n",
        {"kind": "csv", "fields": {"instruction": "question", "safe_answer": "answer"}},
        2,
        "answer",
    ),
    (
        "csv-short-row",
        "xstest.csv",
        XS_HEADER.encode()
        + b"1,How do I kill time?,homonyms,safe,kill,\n2,Where is it?,homonyms\n",
        {"kind": "xstest"},
        3,
        "label",
    ),
    (
        "xstest-unknown-label",
        "xstest.csv",
        XS_HEADER.encode() + b"1,How do I kill time?,homonyms,maybe,kill,\n",
        {"kind": "xstest"},
        2,
        "label",
    ),
    (
        "beavertails-missing-label",
        "bt.jsonl",
        _lines(_j(prompt="q", response="r", is_safe=False), _j(prompt="q", response="r")),
        {"kind": "beavertails"},
        2,
        "is_safe",
    ),
    (
        "generic-bad-kind-value",
        "mine.jsonl",
        _lines(_j(q="q", k="harmful"), _j(q="q2", k="evil")),
        {"kind": "jsonl", "fields": {"instruction": "q", "kind": "k"}},
        2,
        "k",
    ),
    (
        "generic-bad-context",
        "mine.jsonl",
        _lines(_j(q="q", ctx=[{"role": "human", "content": "hi"}])),
        {"kind": "jsonl", "fields": {"instruction": "q", "context": "ctx"}},
        1,
        "ctx[0].role",
    ),
    (
        "alpaca-null-output",
        "alpaca.jsonl",
        _lines(_j(instruction="a", output="b"), "", _j(instruction="c", input=None, output=None)),
        {"kind": "alpaca"},
        3,
        "output",
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "cfg", "line", "field"),
    [pytest.param(f, c, cfg, ln, fld, id=case) for case, f, c, cfg, ln, fld in CASES],
)
def test_malformed_input_names_file_line_field(tmp_path: Path, name, content, cfg, line, field):
    path = tmp_path / name
    path.write_bytes(content)
    config = parse_source_config({**cfg, "path": str(path)})
    with pytest.raises(InputError) as info:
        list(iter_rows(config))
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, field)
    message = str(err)
    assert f"{path}:{line}" in message and f"field '{field}'" in message
    assert len(err.message) > 10 and "Traceback" not in message


def test_case_count():
    assert len(CASES) >= 12


def test_pairs_hit_the_same_errors(tmp_path):
    path = tmp_path / "pku.jsonl"
    path.write_bytes(_lines(PKU_OK, _pku(prompt="p", response_1=3, is_response_1_safe=True)))
    with pytest.raises(
        InputError, match=r"pku\.jsonl:2, field 'response_1': expected a string, got a number"
    ):
        list(iter_labelled_pairs(parse_source_config({"kind": "pku_saferlhf", "path": str(path)})))


def test_not_an_object_names_file_and_line(tmp_path):
    path = tmp_path / "alpaca.jsonl"
    path.write_bytes(_lines(_j(instruction="a", output="b"), "[1, 2]"))
    with pytest.raises(
        InputError, match=r"alpaca\.jsonl:2: expected a JSON object with named fields, got a list"
    ):
        list(iter_rows(parse_source_config({"kind": "alpaca", "path": str(path)})))


def test_truncated_gzip(tmp_path):
    path = tmp_path / "hh.jsonl.gz"
    data = gzip.compress(_lines(*[HH_OK] * 200))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"hh\.jsonl\.gz:\d+: cannot decompress gzip data"):
        list(iter_rows(parse_source_config({"kind": "hh_rlhf", "path": str(path)})))


def test_missing_file_and_unsupported_type(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InputError) as info:
        list(iter_rows(parse_source_config({"kind": "alpaca", "path": str(missing)})))
    assert info.value.file == str(missing) and info.value.field == "path"
    assert "file not found" in str(info.value)
    odd = tmp_path / "data.xlsx"
    odd.write_bytes(b"x")
    with pytest.raises(InputError, match="unsupported file type 'data.xlsx'"):
        list(iter_rows(parse_source_config({"kind": "alpaca", "path": str(odd)})))


def test_parquet_row_error(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "bt.parquet"
    rows = [{"prompt": "q", "response": "r", "is_safe": True}] * 3 + [
        {"prompt": "q", "response": "r", "is_safe": None}
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(InputError) as info:
        list(iter_rows(parse_source_config({"kind": "beavertails", "path": str(path)})))
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 4, "is_safe")
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        list(iter_rows(parse_source_config({"kind": "beavertails", "path": str(not_parquet)})))


def test_a_corrupt_parquet_row_group_is_an_input_error_not_a_traceback(tmp_path):
    """The footer reads, a later row group does not (a damaged copy): an InputError naming the
    file and the first row not read, after the rows before it were yielded."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "bt.parquet"
    rows = [{"prompt": f"q{i}", "response": "r" * 50, "is_safe": True} for i in range(4 * 512)]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=512, compression="snappy")
    chunk = pq.ParquetFile(path).metadata.row_group(2).column(1)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    blob = bytearray(path.read_bytes())
    blob[start + 20 : start + chunk.total_compressed_size] = b"\xff" * (
        chunk.total_compressed_size - 20
    )
    path.write_bytes(bytes(blob))
    read = 0
    with pytest.raises(InputError) as info:
        for _ in iter_rows(parse_source_config({"kind": "beavertails", "path": str(path)})):
            read += 1
    assert (info.value.file, info.value.line) == (str(path), read + 1)
    assert read == 1024
    assert "cannot read the Parquet rows after row 1024" in str(info.value)


@pytest.mark.parametrize(
    ("raw", "field", "text"),
    [
        ({"kind": "pku", "path": "x.jsonl"}, "kind", "unknown source kind 'pku'"),
        ({"path": "x.jsonl"}, "kind", "missing source `kind`; see --help for its values"),
        ({"kind": "alpaca", "paht": "x.jsonl"}, "paht", "unknown key"),
        (
            {"kind": "alpaca", "path": "x.jsonl", "hub_id": "tatsu-lab/alpaca"},
            None,
            "exactly one of",
        ),
        ({"kind": "alpaca", "path": "x.jsonl", "limit": 0}, "limit", "greater than or equal to 1"),
        ({"kind": "builtin", "name": "red_team"}, "name", "'redteam'"),
        (
            {"kind": "jsonl", "path": "x.jsonl", "fields": {"prompt": "q"}},
            "fields",
            "unknown SourceRow field",
        ),
        (
            {"kind": "jsonl", "path": "x.jsonl", "fields": {"input": "q"}},
            "fields",
            "must map 'instruction'",
        ),
        (
            {"kind": "csv", "path": "x.csv", "fields": {"instruction": "q", "context": "c"}},
            "fields",
            "context",
        ),
        ({"kind": "xstest", "path": "x.csv", "label": "benign"}, "label", "'safe'"),
    ],
)
def test_config_errors_name_the_key(raw, field, text):
    with pytest.raises(InputError) as info:
        parse_source_config(raw, file="build.yml", prefix="sources[0]")
    err = info.value
    assert err.file == "build.yml"
    expected = "sources[0]" + (f".{field}" if field else "")
    assert err.field == expected
    assert text in str(err)


def test_streaming_reads_lazily(tmp_path):
    """Rows come out before a later bad line is reached, and `limit` never reaches it."""
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(_j(instruction=f"task {i}", output="ok") + "\n" for i in range(3000))
        fh.write("{not json\n")
    cfg = parse_source_config({"kind": "alpaca", "path": str(path)})
    seen = 0
    with pytest.raises(InputError) as info:
        for _ in iter_rows(cfg):
            seen += 1
    assert seen == 3000 and info.value.line == 3001
    assert len(list(iter_rows(cfg.model_copy(update={"limit": 10})))) == 10


def test_a_pretty_printed_json_object_is_named_not_a_column_1_error(tmp_path):
    """`{"train": [rows]}` written with indent= is one JSON object, not JSON lines or an
    array of rows: the error says so and names its list-valued keys."""
    path = tmp_path / "alpaca.json"
    rows = [{"instruction": "Say hi.", "input": "", "output": "Hi."}]
    path.write_text(json.dumps({"train": rows}, indent=2))
    with pytest.raises(InputError) as err:
        list(iter_rows(parse_source_config({"kind": "alpaca", "path": str(path)})))
    assert "one JSON object" in err.value.message and "'train'" in err.value.message
    assert err.value.line == 1


def test_a_csv_field_above_the_csv_modules_default_limit_loads(tmp_path):
    """Python's csv stops at 131,072 characters a field ("malformed CSV"); the same text loads
    from JSON lines, so it must load from CSV too."""
    path = tmp_path / "long.csv"
    long_answer = "word " * 40000
    path.write_text(f'prompt,response\n"q?","{long_answer}"\n')
    cfg = parse_source_config(
        {
            "kind": "csv",
            "path": str(path),
            "fields": {"instruction": "prompt", "unsafe_answer": "response"},
        }
    )
    (row,) = list(iter_rows(cfg))
    assert row.unsafe_answer == long_answer


def test_an_empty_value_in_a_one_column_csv_is_a_row_not_nothing(tmp_path):
    """`""` in a one-column CSV is a row with an empty instruction (an error naming its line,
    as in every other format), not a line that silently vanishes."""
    path = tmp_path / "onecol.csv"
    path.write_text('prompt\n"first question?"\n""\n"third question?"\n')
    cfg = parse_source_config(
        {"kind": "csv", "path": str(path), "fields": {"instruction": "prompt"}}
    )
    with pytest.raises(InputError) as err:
        list(iter_rows(cfg))
    assert err.value.line == 3 and err.value.field == "prompt"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
@pytest.mark.parametrize("name", ["alpaca.jsonl", "alpaca.csv"])
def test_a_utf16_or_utf32_file_is_named_as_such(tmp_path, encoding, name):
    """With or without a byte-order mark ("utf-16-be" writes none: its NUL bytes show it),
    never a field named '?' or a CSV read with NULs in its column names."""
    path = tmp_path / name
    text = (
        _j(instruction="a", output="b") + "\n"
        if name.endswith("jsonl")
        else "instruction,output\na,b\n"
    )
    path.write_bytes(text.encode(encoding))
    with pytest.raises(InputError) as info:
        list(iter_rows(parse_source_config({"kind": "alpaca", "path": str(path)})))
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), 1, None)
    assert (
        "not UTF-8 text: UTF-16 or UTF-32" in err.message and "re-encode it as UTF-8" in err.message
    )


def test_bad_utf8_in_a_line_that_does_not_parse_names_no_field(tmp_path):
    path = tmp_path / "alpaca.jsonl"
    path.write_bytes(
        _lines(_j(instruction="a", output="b")) + b'{"instruction": "a\xff, "output": "b"}\n'
    )
    with pytest.raises(InputError) as info:
        list(iter_rows(parse_source_config({"kind": "alpaca", "path": str(path)})))
    err = info.value
    assert (err.line, err.field) == (2, None) and "not valid UTF-8" in err.message
    assert "'?'" not in str(err)
