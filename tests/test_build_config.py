"""The build config: dotted command-line overrides, 'self' backends, YAML + CLI merging, --help."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from axolotl_mistake.configio import fields_of, help_rows
from axolotl_mistake.errors import InputError
from dataset_builders.build import help_text, main
from dataset_builders.config import BuildConfig, load_config


def _all_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in fields_of(model).items():
        keys.append(prefix + name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += _all_keys(ann, f"{prefix}{name}.")
    return keys


def test_help_lists_every_key_with_description(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    documented = {key for key, _, _, desc in help_rows(BuildConfig) if desc}
    for key in _all_keys(BuildConfig):
        assert key in documented, f"{key} has no description"
        assert (f"--{key} " in text) or (f"[{key}]" in text), key
    assert "kind: pku_saferlhf" in text and "hub_id" in text
    assert "--model.base_url " in text and "--model.device " in text  # every backend kind's keys
    assert help_text() in text


def test_help_shows_the_builds_own_defaults_and_which_kinds_take_a_key():
    """The build batches 64, not the backend class's 16; a kind-only key says which kinds."""
    rows = {key: (default, desc) for key, _, default, desc in help_rows(BuildConfig)}
    assert rows["model.batch_size"][0] == "64"
    default, desc = rows["model.base_url"]
    assert default == "null" and "[kind: openai]" in desc and "required" in desc
    assert "[kind: transformers, vllm]" in rows["model.adapter"][1]


def test_naming_one_model_key_keeps_the_builds_batch(tmp_path):
    """`--model.device cpu` (or a `model:` block without batch_size) used to fall back to 16."""
    assert load_config(["--model.device", "cpu"])[0].model.batch_size == 64
    cfg_file = tmp_path / "b.yml"
    cfg_file.write_text("model:\n  device: cpu\n")
    assert load_config(["--config", str(cfg_file)])[0].model.batch_size == 64
    assert load_config(["--model.batch_size", "8"])[0].model.batch_size == 8
    remote = ["--model.kind", "openai", "--model.base_url", "http://127.0.0.1:1/v1"]
    assert load_config(remote)[0].model.batch_size == 16  # a server's chunk: the class default


def test_dotted_overrides_and_self_backends(tmp_path):
    cfg_file = tmp_path / "b.yml"
    cfg_file.write_text("seed: 3\nmistakes:\n  k: 4\nanalyses:\n  backend: self\n")
    cfg, _, _ = load_config(
        [
            "--config",
            str(cfg_file),
            "--mistakes.k",
            "2",
            "--analyses.backend.model",
            "other-model",
            "--analyses.backend.kind=openai",
            "--analyses.backend.base_url",
            "http://127.0.0.1:1/v1",
            "--mistakes.stop",
            "###",
            "--dry-run",
            "--select.redteam_n",
            "null",
        ]
    )
    assert cfg.seed == 3 and cfg.mistakes.k == 2 and cfg.dry_run is True
    assert cfg.mistakes.stop == ["###"]  # a string key is never YAML-parsed ('#' is a comment)
    assert cfg.select.redteam_n is None
    assert cfg.backend_for(cfg.mistakes.backend) is cfg.model
    analyst = cfg.backend_for(cfg.analyses.backend)
    assert (analyst.kind, analyst.model) == ("openai", "other-model")


def test_config_hash_ignores_output_and_shard():
    a, _, _ = load_config(["--output", "x", "--shard", "0/2"])
    b, _, _ = load_config(["--output", "y"])
    c, _, _ = load_config(["--seed", "1"])
    assert a.config_hash() == b.config_hash() != c.config_hash()
    assert a.shard_pair() == (0, 2) and b.shard_pair() == (0, 1)


def test_an_indexed_flag_edits_the_default_list(tmp_path):
    """`--redteam.0.limit 5` (documented in configio) with the default sources used to fail
    with "Input should be a valid list"; an index past the end names the whole key."""
    cfg = load_config(["--redteam.0.limit", "5"])[0]
    assert [(s.kind, s.name, s.limit) for s in cfg.redteam] == [("builtin", "redteam", 5)]
    assert [s.limit for s in cfg.helpful] == [
        None
    ]  # lists the flag does not touch stay as they are
    with pytest.raises(InputError) as info:
        load_config(["--redteam.1.limit", "5"])
    assert info.value.field == "redteam.1" and "out of range" in info.value.message
    cfg_file = tmp_path / "b.yml"  # a list the file gives is the one edited
    cfg_file.write_text("redteam:\n  - {kind: builtin, name: redteam, limit: 3}\n")
    cfg = load_config(["--config", str(cfg_file), "--redteam.0.limit", "7"])[0]
    assert [s.limit for s in cfg.redteam] == [7]


def test_greedy_analyses_k_above_one_is_refused(tmp_path):
    """k greedy critiques of one mistake are one critique k times: the same training row
    repeated, silently. Sampling (temperature > 0) or k 1 is asked for, at the key."""
    cfg_file = tmp_path / "b.yml"
    cfg_file.write_text("analyses:\n  k: 3\n  temperature: 0.0\n")
    with pytest.raises(InputError, match=r"greedy decoding gives the same critique") as err:
        load_config(["--config", str(cfg_file)])
    assert "analyses" in str(err.value)
    cfg, _, _ = load_config(["--config", str(cfg_file), "--analyses.temperature", "0.7"])
    assert cfg.analyses.k == 3
