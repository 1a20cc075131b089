"""Audit of the source readers: defects found reading real data layouts (a Hub-style stream, a
local folder given as `hub_id`), each pinned by a test that failed before its fix, plus
invariants checked on the shared public data (skipped when it is absent)."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from axolotl_mistake.errors import InputError
from axolotl_mistake.sources import iter_labelled_pairs, iter_rows, parse_source_config
from axolotl_mistake.sources.provenance import describe_source


def _write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


# --- pairs: a pair without `source` read through the `datasets` library ---------------------


def test_pairs_without_source_read_through_hub_id(tmp_path):
    """`source` is optional per pair, but through `hub_id: json` (and Parquet) the library fills a
    pair that lacks it with null: every such pair was refused ("field 'source': Input should be a
    valid string (got None)"), so a file read fine with `path:` failed through the Hub path."""
    path = tmp_path / "pairs.jsonl"
    _write_jsonl(
        path,
        [
            {"question": "q1", "answer": "a1", "harmful": True, "source": "mine:1"},
            {"question": "q2", "answer": "a2", "harmful": False},
        ],
    )
    hub = parse_source_config({"kind": "pairs", "hub_id": "json", "data_files": str(path)})
    local = parse_source_config({"kind": "pairs", "path": str(path)})
    got = list(iter_labelled_pairs(hub))
    assert [(p.question, p.harmful) for p in got] == [("q1", True), ("q2", False)]
    assert got[0].source == "mine:1"
    assert got[1].source == f"{hub.source_tag}:2"  # the row id, as for a local file
    assert [r.meta for r in iter_rows(hub)] == [r.meta for r in iter_rows(local)]
    # an explicit null in a local file is absent too, not a wrong type
    path.write_text('{"question": "q", "answer": "a", "harmful": true, "source": null}\n')
    assert [p.source for p in iter_labelled_pairs(local)] == ["pairs:pairs.jsonl:1"]


def test_pairs_source_of_the_wrong_type_is_still_an_error(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"question": "q", "answer": "a", "harmful": true, "source": 3}\n')
    with pytest.raises(InputError) as err:
        list(iter_labelled_pairs(parse_source_config({"kind": "pairs", "path": str(path)})))
    assert (err.value.line, err.value.field) == (1, "source")


# --- csv: `delimiter` with `hub_id` ---------------------------------------------------------


def test_csv_delimiter_with_hub_id_is_refused(tmp_path):
    """`delimiter` only reaches the local CSV reader: with `hub_id: csv` it was silently
    ignored, so a TSV read as one column and failed with a misleading "column 'prompt' is
    missing; columns present: prompt<TAB>resp". It is a config error naming `delimiter`."""
    path = tmp_path / "t.tsv"
    path.write_text("prompt\tresp\nhello\tworld\n")
    fields = {"instruction": "prompt", "safe_answer": "resp"}
    with pytest.raises(InputError) as err:
        parse_source_config(
            {
                "kind": "csv",
                "hub_id": "csv",
                "data_files": str(path),
                "delimiter": "\t",
                "fields": fields,
            }
        )
    assert "delimiter" in str(err.value)
    local = {"kind": "csv", "path": str(path), "delimiter": "\t", "fields": fields}
    assert [r.safe_answer for r in iter_rows(parse_source_config(local))] == ["world"]


# --- provenance of local files read through `hub_id` -----------------------------------------


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_provenance_of_a_local_folder_hub_id_with_data_files_or_data_dir(tmp_path):
    """`load_dataset(folder, data_files=…)` resolves the files inside the folder (and inside
    `data_dir`, which also narrows a folder to that sub-folder). The manifest recorded no file
    at all for relative `data_files` (or hashed a same-named file of the working directory),
    and for `data_dir` hashed every file of the folder, also the ones not read."""
    folder = tmp_path / "repo"
    (folder / "sub").mkdir(parents=True)
    read = folder / "sub" / "a.jsonl"
    _write_jsonl(read, [{"instruction": "Say hi.", "output": "Hi."}])
    _write_jsonl(folder / "other.jsonl", [{"instruction": "Other.", "output": "No."}])
    want = [{"file": str(read), "bytes": read.stat().st_size, "sha256": _digest(read)}]

    for extra in (
        {"hub_id": str(folder), "data_files": "sub/a.jsonl"},
        {"hub_id": str(folder), "data_dir": "sub"},
        {"hub_id": str(folder), "data_dir": "sub", "data_files": "a.jsonl"},
        {"hub_id": "json", "data_dir": str(folder / "sub"), "data_files": "a.jsonl"},
    ):
        cfg = parse_source_config({"kind": "alpaca", **extra})
        assert [r.instruction for r in iter_rows(cfg)] == ["Say hi."], extra  # what is read
        assert describe_source(cfg).get("files") == want, extra


def test_provenance_relative_data_files_do_not_hash_a_file_of_the_working_directory(
    tmp_path, monkeypatch
):
    folder = tmp_path / "repo"
    folder.mkdir()
    read = folder / "a.jsonl"
    _write_jsonl(read, [{"instruction": "Say hi.", "output": "Hi."}])
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    _write_jsonl(cwd / "a.jsonl", [{"instruction": "Decoy.", "output": "No."}])
    monkeypatch.chdir(cwd)
    cfg = parse_source_config({"kind": "alpaca", "hub_id": str(folder), "data_files": "a.jsonl"})
    assert [r.instruction for r in iter_rows(cfg)] == ["Say hi."]
    assert [f["sha256"] for f in describe_source(cfg)["files"]] == [_digest(read)]


# --- invariants on the shared public data ----------------------------------------------------


def test_pku_answers_carry_their_own_labels(shared_data):
    """Every unsafe_answer is a response labelled unsafe, every safe_answer one labelled safe,
    per-answer meta points at that response, and a mixed row's safe answer is the safer one."""
    path = shared_data / "pku_saferlhf" / "test_sample.jsonl"
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows = list(iter_rows(parse_source_config({"kind": "pku_saferlhf", "path": str(path)})))
    assert len(rows) == 286
    for row in rows:
        rec = raw[row.line - 1]
        for label, answer in (("unsafe", row.unsafe_answer), ("safe", row.safe_answer)):
            if answer is None:
                assert label not in row.meta
                continue
            i = row.meta[label]["response"]
            assert rec[f"response_{i}"] == answer
            assert rec[f"is_response_{i}_safe"] is (label == "safe")
            assert row.meta[label]["severity_level"] == rec[f"response_{i}_severity_level"]
        if row.unsafe_answer and row.safe_answer:
            assert rec[f"response_{rec['safer_response_id']}"] == row.safe_answer
        assert row.kind == ("harmful" if row.unsafe_answer else "unknown")


def test_hh_last_turns_are_the_transcripts_ends(shared_data):
    """The chosen/rejected answers are the last Assistant turns of their own transcripts and the
    instruction is the last Human turn (rows without joined turns)."""
    path = shared_data / "hh_rlhf" / "harmless-base_test.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        raw = [json.loads(line) for line in fh]
    rows = list(iter_rows(parse_source_config({"kind": "hh_rlhf", "path": str(path)})))
    assert len(rows) == len(raw) == 2312
    for row in rows:
        if row.meta.get("merged_turns"):
            continue
        rec = raw[row.line - 1]
        for answer, field in ((row.safe_answer, "chosen"), (row.unsafe_answer, "rejected")):
            head, _, last = rec[field].rpartition("\n\nAssistant:")
            assert last.strip() == (answer or "")
            assert head.rpartition("\n\nHuman:")[2].strip() == row.instruction
        assert len(row.context) == row.meta["turns"] - 2


# --- jsonl/csv: a null or empty mapped `kind` -------------------------------------------------


def test_generic_null_or_empty_kind_falls_back_to_prompt_kind(tmp_path):
    """`fields` says "null or empty values of optional fields count as absent", and a mapped
    'kind' is optional, but a null or empty one was an error ("expected a string, got null";
    "must not be empty"), also for every row the `datasets` library fills with null. Absent, it
    is `prompt_kind`; a wrong value is still a located error."""
    path = tmp_path / "mine.jsonl"
    _write_jsonl(
        path,
        [{"q": "a", "k": "helpful"}, {"q": "b", "k": None}, {"q": "c", "k": ""}, {"q": "d"}],
    )
    fields = {"instruction": "q", "kind": "k"}
    hub = {"kind": "jsonl", "hub_id": "json", "data_files": str(path), "fields": fields}
    got = [r.kind for r in iter_rows(parse_source_config({**hub, "prompt_kind": "harmful"}))]
    assert got == ["helpful", "harmful", "harmful", "harmful"]
    path.write_text(path.read_text().splitlines()[0] + '\n{"q": "b", "k": null}\n')
    local = parse_source_config({"kind": "jsonl", "path": str(path), "fields": fields})
    assert [r.kind for r in iter_rows(local)] == ["helpful", "unknown"]
    path.write_text('{"q": "b", "k": "evil"}\n')
    with pytest.raises(InputError) as err:
        list(iter_rows(local))
    assert (err.value.line, err.value.field) == (1, "k")
