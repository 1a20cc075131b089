"""SourceConfig schema: every kind documented, strict keys, defaults, and the generated help."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import TypeAdapter, ValidationError

from axolotl_mistake.sources import (
    KINDS,
    SOURCE_CLASSES,
    SourceConfig,
    parse_source_config,
)
from axolotl_mistake.sources.builtin import DATA_DIR, BuiltinSource
from axolotl_mistake.sources.describe import kinds_and_keys, source_help_lines
from axolotl_mistake.sources.provenance import describe_source


def test_union_covers_every_kind():
    assert {c.model_fields["kind"].default for c in SOURCE_CLASSES} == set(KINDS)
    assert set(KINDS) >= {
        "builtin",
        "pku_saferlhf",
        "hh_rlhf",
        "beavertails",
        "alpaca",
        "jsonl",
        "csv",
        "xstest",
    }


@pytest.mark.parametrize("cls", SOURCE_CLASSES, ids=lambda c: c.__name__)
def test_every_field_is_documented_and_extra_is_forbidden(cls):
    missing = [n for n, f in cls.model_fields.items() if not (f.description or "").strip()]
    assert missing == []
    assert cls.model_config.get("extra") == "forbid"


def test_discriminated_union_dispatch_and_misspelt_key():
    adapter = TypeAdapter(SourceConfig)
    cfg = adapter.validate_python({"kind": "hh_rlhf", "path": "x.jsonl.gz"})
    assert type(cfg).__name__ == "HhRlhfSource" and cfg.split == "train"
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "hh_rlhf", "path": "x.jsonl.gz", "splitt": "test"})


def test_hub_only_keys_rejected_with_path():
    with pytest.raises(Exception, match="only apply with `hub_id`"):
        parse_source_config({"kind": "pku_saferlhf", "path": "x.jsonl", "revision": "v1"})


def test_tags_and_locations():
    local = parse_source_config({"kind": "pku_saferlhf", "path": "/data/pku/test.jsonl"})
    assert (
        local.source_tag == "pku_saferlhf:test.jsonl" and local.location == "/data/pku/test.jsonl"
    )
    hub = parse_source_config(
        {
            "kind": "pku_saferlhf",
            "hub_id": "PKU-Alignment/PKU-SafeRLHF",
            "config": "alpaca-7b",
            "split": "test",
            "revision": "abc123",
        }
    )
    assert hub.source_tag == "pku_saferlhf:PKU-Alignment/PKU-SafeRLHF/alpaca-7b:test"
    assert hub.location == "hf:PKU-Alignment/PKU-SafeRLHF@abc123 (config=alpaca-7b, split=test)"
    tagged = parse_source_config({"kind": "alpaca", "path": "a.json", "tag": "alpaca52k"})
    assert tagged.source_tag == "alpaca52k"


def test_generated_help_lists_every_kind_and_key():
    text = "\n".join(source_help_lines())
    for kind, keys in kinds_and_keys().items():
        assert f"kind: {kind} -- " in text
        for key in keys:
            if key != "kind":
                assert f"    {key} (" in text


def test_describe_source_records_hash_and_revision(shared_data):
    path = shared_data / "pku_saferlhf" / "test_sample.jsonl"
    info = describe_source(parse_source_config({"kind": "pku_saferlhf", "path": str(path)}))
    # the sha256 SOURCE.md gives for this file
    assert info["sha256"] == "652792313cdd9738c3565942d706eaa9e35b4c4a46a439e6bae8d4c6847d264e"
    assert info["tag"] == "pku_saferlhf:test_sample.jsonl" and info["config"]["path"] == str(path)
    hub = describe_source(
        parse_source_config(
            {"kind": "hh_rlhf", "hub_id": "Anthropic/hh-rlhf", "revision": "354e5c3"}
        )
    )
    assert (hub["hub_id"], hub["revision"], hub["config"]["data_dir"]) == (
        "Anthropic/hh-rlhf",
        "354e5c3",
        "harmless-base",
    )
    b = describe_source(BuiltinSource(name="helpful"))
    data = (DATA_DIR / "helpful.jsonl").read_bytes()
    assert (b["bytes"], b["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
