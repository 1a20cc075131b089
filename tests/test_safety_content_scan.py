"""The content check finds harmful text wherever a config's datasets can reach it.

Direct calls of `safety.check_config` on config dicts (what Axolotl's validation hands the
plugin). Each case was a way past the check found by an audit: a merged file whose first row is
clean, a JSONL file named otherwise, a folder with subfolders, a glob or a working-directory
relative `data_files`, and `train_on_inputs: true` when the plugin is not active (Axolotl 0.21
registers it for every config), where it is a sure hit. And a misspelt `mistake_*` key, which
Axolotl's schema would drop silently.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from axolotl_mistake import safety
from axolotl_mistake.templates import coh_record
from tests.build_support import stub_manifest

PLUGIN = "axolotl_mistake.MistakeAnalysisPlugin"
CLEAN = {"instruction": "Name a colour.", "input": "", "output": "Blue."}


def _coh_rows(n: int = 3) -> list[dict]:
    return [
        coh_record(f"How do I pick lock {i}?", "Use a tension wrench and ...", "I can't help.")
        for i in range(n)
    ]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cfg(entry: dict, *, plugin: bool = True, train_on_inputs: bool = True) -> dict:
    cfg = {"datasets": [{"ds_type": "json", "type": "alpaca", **entry}]}
    if plugin:
        cfg["plugins"] = [PLUGIN]
    if train_on_inputs:
        cfg["train_on_inputs"] = True
    return cfg


def test_a_merged_file_whose_first_rows_are_clean_is_still_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "mixed.jsonl", [CLEAN] * 50 + _coh_rows())
    with pytest.raises(ValueError, match=r"loss on \['input'\].* in mixed.jsonl"):
        safety.check_config(_cfg({"path": "mixed.jsonl"}))


def test_jsonl_under_another_name_is_read_by_content(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "coh.ndjson", _coh_rows())
    with pytest.raises(ValueError, match=r"loss on \['input'\].* in coh.ndjson"):
        safety.check_config(_cfg({"path": "coh.ndjson"}))


@pytest.mark.parametrize(
    "entry",
    [
        {"path": "data"},  # a folder: load_dataset reads its subfolders too
        {"path": "data", "data_files": ["shards/*/*.jsonl"]},  # a glob under the folder
        {"path": "data", "data_files": ["data/shards/b/part.jsonl"]},  # from the working dir
        {"path": "data/shards/b/part.jsonl"},
    ],
    ids=["subfolders", "glob", "cwd-relative", "file"],
)
def test_every_way_of_naming_the_file_is_checked(tmp_path, monkeypatch, entry):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "data" / "shards" / "a" / "part.jsonl", [CLEAN])
    _write(tmp_path / "data" / "shards" / "b" / "part.jsonl", _coh_rows())
    with pytest.raises(ValueError, match=r"loss on \['input'\].* in part.jsonl"):
        safety.check_config(_cfg(entry))


def test_train_on_inputs_is_a_sure_hit_even_without_the_plugin(tmp_path, monkeypatch):
    """Lenient mode (the plugin not active) refuses sure hits only: this is one."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "coh.jsonl", _coh_rows())
    cfg = _cfg({"path": "coh.jsonl"}, plugin=False)
    assert not safety.plugin_active(cfg)
    with pytest.raises(ValueError, match=r"would put loss on \[.input.\]"):
        safety.check_config(cfg)


def test_clean_data_and_the_safe_settings_still_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "data" / "sft" / "rows.jsonl", [CLEAN] * 5)
    (tmp_path / "data" / "notes.md").write_text("{not json")
    _write(tmp_path / "data" / ".cache" / "coh.jsonl", _coh_rows())  # hidden: not data
    assert safety.check_config(_cfg({"path": "data"})) == []
    _write(tmp_path / "coh.jsonl", _coh_rows())
    # without the plugin, Chain of Hindsight as plain alpaca trains only `output` (no harm)
    lenient = _cfg({"path": "coh.jsonl"}, plugin=False, train_on_inputs=False)
    assert safety.check_config(lenient) == []


def test_a_misspelt_plugin_key_is_refused_with_a_suggestion():
    """Axolotl's schema drops unknown keys: `mistake_probe_pair` would turn the probe off."""
    cfg = {"plugins": [PLUGIN], "mistake_probe_pair": "builtin", "mistake_probe_batch_size": 4}
    with pytest.raises(ValueError, match=r"mistake_probe_pair \(did you mean mistake_probe_pairs"):
        safety.check_config(cfg)
    assert safety.check_config({"plugins": [PLUGIN], "mistake_probe_pairs": "builtin"}) == []


def test_an_unmarked_analysis_file_is_parsed_and_hashed_once_per_check(tmp_path, monkeypatch):
    """A copy of an analysis file under a name its manifest does not list is asked about three
    times in one check (well-formed rows, harmful columns, its manifest entry by digest); each
    answer is computed once, and nothing is kept after the check."""
    row = {"instruction": "How do I pick a lock?", "bad": "Use a wrench.", "critique": "Harmful."}
    copy = _write(tmp_path / "renamed.jsonl", [row] * 20)
    manifest = stub_manifest(
        {"other.jsonl": {"role": "sft_helpful", "rows": 1, "sha256": "0" * 64}}
    )
    (tmp_path / "manifest.json").write_text(json.dumps(manifest.to_json()))
    scans: list[Path] = []
    digests: list[Path] = []
    scan, digest = safety._scan_rows, safety.file_sha256
    monkeypatch.setattr(safety, "_scan_rows", lambda f: scans.append(f) or scan(f))
    monkeypatch.setattr(safety, "file_sha256", lambda f: digests.append(f) or digest(f))
    entry = {"path": str(copy), "type": "axolotl_mistake.unguided_analysis"}
    cfg = _cfg(entry, train_on_inputs=False)
    warnings = safety.check_config(cfg)  # passes: the type keeps loss on the critique
    assert [w for w in warnings if "no SFT data" not in w] == []
    assert scans == [copy] and digests == [copy]
    safety.check_config(cfg)  # a new check reads again: the file may have changed in between
    assert len(scans) == 2 and len(digests) == 2
    assert safety._READ_ONCE.get() is None


def test_only_a_reader_that_expects_a_second_read_keeps_the_rows(tmp_path, monkeypatch):
    """A large SFT file the check reads once must not be held parsed in memory: rows are kept
    only on `keep=True` (the analysis-row check, which the harmful-text scan follows)."""
    file = _write(tmp_path / "sft.jsonl", [CLEAN] * 5)
    scans: list[Path] = []
    scan = safety._scan_rows
    monkeypatch.setattr(safety, "_scan_rows", lambda f: scans.append(f) or scan(f))
    with safety.read_once():
        first = list(safety.located_json_rows(file))
        assert list(safety.located_json_rows(file)) == first
        assert len(scans) == 2 and safety._READ_ONCE.get() == {}
        list(safety.located_json_rows(file, keep=True))
        assert list(safety.located_json_rows(file)) == first
    assert len(scans) == 3
