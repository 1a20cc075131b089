"""The Hub code path (`datasets.load_dataset(..., streaming=True)`) on local files, offline.

The Hub itself is unreachable in tests (HF_HUB_OFFLINE=1), so real Hub ids are exercised through
the same call with local folders laid out like the Hub repos and with the packaged json/csv/
parquet builders. A spy checks that load_dataset is really called, and with streaming=True.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import datasets
import pytest

from axolotl_mistake.errors import InputError
from axolotl_mistake.sources import iter_labelled_pairs, iter_rows, parse_source_config


@pytest.fixture()
def load_calls(monkeypatch):
    """Record every load_dataset call (then run the real one)."""
    calls: list[tuple[str, dict]] = []
    real = datasets.load_dataset

    def spy(path, *args, **kwargs):
        calls.append((path, kwargs))
        ds = real(path, *args, **kwargs)
        assert isinstance(ds, datasets.IterableDataset)
        return ds

    monkeypatch.setattr(datasets, "load_dataset", spy)
    return calls


def test_pku_from_folder_laid_out_like_the_hub_repo(shared_data, tmp_path, load_calls):
    repo = tmp_path / "PKU-SafeRLHF"
    (repo / "data" / "Alpaca-7B").mkdir(parents=True)
    shutil.copy(
        shared_data / "pku_saferlhf" / "test_sample.jsonl",
        repo / "data" / "Alpaca-7B" / "test.jsonl",
    )
    cfg = parse_source_config(
        {"kind": "pku_saferlhf", "hub_id": str(repo), "data_dir": "data/Alpaca-7B", "split": "test"}
    )
    rows = list(iter_rows(cfg))
    assert sum(r.unsafe_answer is not None for r in rows) == 126
    assert sum(r.safe_answer is not None for r in rows) == 178
    assert rows[0].meta["unsafe"]["harm_categories"] == [
        "Cybercrime",
        "Economic Crime",
        "Endangering National Security",
    ]
    assert rows[0].file == f"hf:{repo} (data_dir=data/Alpaca-7B, split=test)"
    pairs = list(iter_labelled_pairs(cfg))
    assert len(pairs) == 304 and sum(p.harmful for p in pairs) == 126
    path, kwargs = load_calls[0]
    assert path == str(repo)
    assert kwargs == {"data_dir": "data/Alpaca-7B", "split": "test", "streaming": True}


def test_hh_from_folder_with_data_dir(shared_data, tmp_path, load_calls):
    repo = tmp_path / "hh-rlhf"
    (repo / "harmless-base").mkdir(parents=True)
    shutil.copy(
        shared_data / "hh_rlhf" / "harmless-base_test.jsonl.gz",
        repo / "harmless-base" / "test.jsonl.gz",
    )
    cfg = parse_source_config(
        {"kind": "hh_rlhf", "hub_id": str(repo), "data_dir": "harmless-base", "split": "test"}
    )
    rows = list(iter_rows(cfg))
    assert len(rows) == 2312
    assert rows[0].instruction == "okay some of these do not have anything to do with pens"
    assert rows[0].id == f"hh_rlhf:{repo}/harmless-base:test:1"
    assert load_calls[0][1]["streaming"] is True


def test_hh_hub_id_defaults_to_harmless_base():
    cfg = parse_source_config({"kind": "hh_rlhf", "hub_id": "Anthropic/hh-rlhf", "split": "test"})
    assert cfg.data_dir == "harmless-base"


def test_packaged_builders_with_data_files(shared_data, tmp_path, load_calls):
    xs = parse_source_config(
        {
            "kind": "xstest",
            "hub_id": "csv",
            "data_files": str(shared_data / "xstest" / "xstest_prompts.csv"),
            "label": "safe",
        }
    )
    rows = list(iter_rows(xs))
    assert len(rows) == 250 and rows[0].meta["xstest_id"] == "1"
    al = parse_source_config(
        {
            "kind": "alpaca",
            "hub_id": "json",
            "data_files": [str(shared_data / "alpaca" / "alpaca_5000_pr152.jsonl")],
            "limit": 100,
        }
    )
    rows = list(iter_rows(al))
    assert len(rows) == 100 and rows[0].id == "alpaca:json/alpaca_5000_pr152.jsonl:train:1"
    assert [c[0] for c in load_calls] == ["csv", "json"]


def test_beavertails_parquet_via_hub_and_locally(tmp_path, load_calls):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    records = [
        {
            "prompt": f"question {i}?",
            "response": f"answer {i}.",
            "category": {"violence": i % 2 == 0, "privacy_violation": False},
            "is_safe": i % 2 == 1,
        }
        for i in range(1000)
    ]
    path = tmp_path / "30k_test.parquet"
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=100)
    via_hub = parse_source_config(
        {"kind": "beavertails", "hub_id": "parquet", "data_files": str(path), "split": "train"}
    )
    local = parse_source_config({"kind": "beavertails", "path": str(path)})
    for cfg in (via_hub, local):
        rows = list(iter_rows(cfg))
        assert len(rows) == 1000
        assert Counter(r.kind for r in rows) == {"harmful": 500, "unknown": 500}
        assert rows[0].meta == {"harm_categories": ["violence"], "is_safe": False}
        assert rows[0].unsafe_answer == "answer 0." and rows[1].safe_answer == "answer 1."
        pairs = list(iter_labelled_pairs(cfg))
        assert len(pairs) == 1000 and sum(p.harmful for p in pairs) == 500
    assert len(load_calls) == 2


def test_hub_row_errors_are_located(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(
        json.dumps({"prompt": "q", "response": "a", "is_safe": True})
        + "\n"
        + json.dumps({"prompt": "q", "response": "", "is_safe": True})
        + "\n"
    )
    cfg = parse_source_config({"kind": "beavertails", "hub_id": "json", "data_files": str(data)})
    with pytest.raises(InputError) as err:
        list(iter_rows(cfg))
    assert err.value.line == 2 and err.value.field == "response"
    assert str(data) in str(err.value) and "must not be empty" in str(err.value)


def test_unreachable_hub_dataset_is_an_input_error():
    cfg = parse_source_config({"kind": "alpaca", "hub_id": "tatsu-lab/alpaca-does-not-exist"})
    with pytest.raises(InputError) as err:
        list(iter_rows(cfg))
    assert err.value.field == "hub_id"
    assert "tatsu-lab/alpaca-does-not-exist" in str(err.value)


def test_unparseable_rows_inside_datasets_are_input_errors(tmp_path):
    data = tmp_path / "broken.jsonl"
    data.write_bytes(b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n')
    cfg = parse_source_config({"kind": "alpaca", "hub_id": "json", "data_files": str(data)})
    with pytest.raises(InputError) as err:
        list(iter_rows(cfg))
    assert err.value.field == "data_files" and err.value.line is not None
    assert str(data) in str(err.value) and "JSON parse error" in str(err.value)


def test_a_read_failing_mid_stream_is_an_input_error(tmp_path):
    """Streaming opens files (or Hub shards) as it reaches them: one that is gone by then (a
    file moved, a dropped connection) raised the library's OSError as a traceback."""
    files = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for file in files:
        file.write_text(json.dumps({"instruction": f"q {file.stem}", "output": "a"}) + "\n")
    cfg = parse_source_config(
        {"kind": "alpaca", "hub_id": "json", "data_files": [str(f) for f in files]}
    )
    rows = iter_rows(cfg)
    assert next(rows).instruction == "q a"
    files[1].unlink()
    with pytest.raises(InputError) as err:
        next(rows)
    assert err.value.field == "data_files" and err.value.line == 2
    assert "FileNotFoundError" in str(err.value) and "b.jsonl" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_dataset_librarys_error_is_one_line_and_not_logged_twice(tmp_path, capfd):
    """A ragged CSV read through `hub_id: csv`: the library logged its own "Failed to read
    file" line and its message held newlines, so the CLI's one-line error was three lines."""
    data = tmp_path / "ragged.csv"
    data.write_text("prompt,response\nq1?,a1\nq2?,a2,extra\nq3?,a3\n")
    cfg = parse_source_config(
        {
            "kind": "csv",
            "hub_id": "csv",
            "data_files": str(data),
            "fields": {"instruction": "prompt", "unsafe_answer": "response"},
        }
    )
    capfd.readouterr()
    with pytest.raises(InputError) as err:
        list(iter_rows(cfg))
    assert "\n" not in str(err.value)
    assert "Failed to read file" not in capfd.readouterr().err


def test_local_files_read_through_hub_id_are_hashed_in_the_provenance(tmp_path):
    """`hub_id: json` with local `data_files`, or a local folder as `hub_id`: the manifest
    recorded no size or sha256, so a build could not say which data it read."""
    import hashlib

    from axolotl_mistake.sources.provenance import describe_source

    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"instruction": "Say hi.", "output": "Hi."}) + "\n")
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    info = describe_source(
        parse_source_config({"kind": "alpaca", "hub_id": "json", "data_files": str(data)})
    )
    assert info["files"] == [{"file": str(data), "bytes": data.stat().st_size, "sha256": digest}]
    folder = describe_source(parse_source_config({"kind": "alpaca", "hub_id": str(tmp_path)}))
    assert [f["sha256"] for f in folder["files"]] == [digest]
    remote = describe_source(parse_source_config({"kind": "alpaca", "hub_id": "tatsu-lab/alpaca"}))
    assert "files" not in remote


@pytest.mark.parametrize(
    "name, content, builder",
    [
        ("blank.jsonl", "\n\n", "json"),
        ("array.json", "[]\n", "json"),
        ("empty.jsonl", "", "json"),
        ("header.csv", "instruction,output\n", "csv"),
    ],
)
def test_a_hub_stream_with_no_rows_is_an_input_error(tmp_path, name, content, builder):
    """A local file refuses "holds no records"; the same file read through `hub_id: json`
    (blank lines, `[]`, a CSV header alone) gave zero rows without a word, so an empty
    `sft_helpful.jsonl` was written, and a zero-byte one failed as "cannot load dataset
    (StopIteration)", blaming the id."""
    data = tmp_path / name
    data.write_text(content)
    cfg = parse_source_config({"kind": "alpaca", "hub_id": builder, "data_files": str(data)})
    with pytest.raises(InputError) as err:
        list(iter_rows(cfg))
    assert err.value.field == "data_files", str(err.value)
    assert "holds no records" in str(err.value) and str(data) in str(err.value)
    assert "StopIteration" not in str(err.value) and "\n" not in str(err.value)
