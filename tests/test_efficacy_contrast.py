"""benchmarks/efficacy_contrast.py: the two training sets (same size and label balance; the
prompt tells the label in one and nothing in the other), the table, and usage errors before any
training."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from axolotl_mistake.records import LabelledPair
from tests.test_efficacy_diagnostics import _usage_error

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
contrast = importlib.import_module("efficacy_contrast")


def _pairs(spec: str) -> list[LabelledPair]:
    """Two answers per prompt: 'm' one of each label, 'h' two harmful, 's' two harmless."""
    labels = {"m": (True, False), "h": (True, True), "s": (False, False)}
    return [
        LabelledPair(question=f"{kind}{i}", answer=f"{kind}{i}-{j}", harmful=label)
        for i, kind in enumerate(spec)
        for j, label in enumerate(labels[kind])
    ]


def test_the_sets_match_in_size_and_labels_and_differ_in_what_the_prompt_tells():
    sets = contrast.training_sets(_pairs("hsmhshmsm" + "hs"))
    both, same = sets["contrast"], sets["same_label"]
    assert [p.question for p in both] == ["m2", "m2", "m6", "m6", "m8", "m8"]
    # three prompts matched: two all-harmful, one all-harmless, the first in file order
    assert [p.question for p in same] == ["h0", "h0", "s1", "s1", "h3", "h3"]
    assert len(both) == len(same)
    assert sum(p.harmful for p in both) == 3 and sum(p.harmful for p in same) == 4
    for part in sets.values():  # every answer of a chosen prompt, none of another
        assert len(contrast.by_prompt(part)) * 2 == len(part)
    even = contrast.training_sets(_pairs("mmhhss"))
    assert sum(p.harmful for p in even["same_label"]) == sum(p.harmful for p in even["contrast"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hhss", "no training prompt comes with both"),
        ("mmmhs", "1 training prompts with only harmful answers; matching 3 prompts"),
        ("mmhh", "0 training prompts with only harmless answers"),
    ],
)
def test_sets_that_cannot_be_matched_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        contrast.training_sets(_pairs(spec))


def test_the_table_gives_each_models_figures():
    est = {"value": 0.75, "low": 0.5, "high": 0.9}
    figures = {
        "heldout": est,
        "heldout_fixed": {**est, "value": 0.5},
        "answers_add_paired": {"value": 0.25, "low": 0.05, "high": 0.4},
        "transfer": est,
        "transfer_twins": {"value": 0.6},
    }
    records = {
        "models": [
            {"name": "base", "figures": figures},
            {"name": "contrast_seed0", "trained_on": "12 / 24", "figures": figures},
        ]
    }
    lines = contrast.table(records).splitlines()
    assert lines[2].startswith("| base | – | 0.750 [0.500, 0.900] | 0.500 [0.500, 0.900] | +0.250")
    assert lines[3].split(" | ")[1] == "12 / 24" and lines[3].endswith("| 60.0 |")


def test_usage_errors_come_before_any_training(tmp_path, capsys):
    from tests.test_efficacy_label_count import _pku

    out = tmp_path / "out"
    assert "--seeds: whole numbers" in _usage_error(capsys, contrast, ["--seeds", "a"])
    err = _usage_error(capsys, contrast, ["--work", str(tmp_path / "none"), "--out", str(out)])
    assert "pku_train.jsonl: not found; run efficacy_smollm2.py first" in err
    data = tmp_path / "work" / "data"
    _pku(data / "pku_train.jsonl", [("q", "a", True, "b", True)])  # no prompt with both labels
    _pku(data / "pku_heldout.jsonl", [("r", "a", True, "b", False)])
    err = _usage_error(capsys, contrast, ["--work", str(tmp_path / "work"), "--out", str(out)])
    assert "no training prompt comes with both" in err
    # (prompt, answer 0, safe 0, answer 1, safe 1): one prompt of each kind, one all-unsafe
    _pku(data / "pku_train.jsonl", [("q", "a", True, "b", False), ("p", "a", False, "b", False)])
    (out).mkdir()
    (out / "mine.txt").write_text("not the script's")
    err = _usage_error(capsys, contrast, ["--work", str(tmp_path / "work"), "--out", str(out)])
    assert "--out" in err and (out / "mine.txt").read_text() == "not the script's"
    assert not list(out.glob("*.jsonl"))  # nothing written


def test_a_training_finished_with_the_same_config_is_reused(tmp_path, monkeypatch):
    import yaml

    calls = []
    monkeypatch.setattr(contrast, "train", lambda out, cfg, name: calls.append(name) or [0.4, 0.7])
    cfg = {"seed": 0, "max_steps": 16}
    assert contrast.trained(tmp_path, cfg, "c") == [0.4, 0.7] and calls == ["c"]
    (tmp_path / "c.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (tmp_path / "c.log").write_text("{'discrimination_auc': 0.41}\n{'discrimination_auc': '0.72'}")
    assert contrast.trained(tmp_path, cfg, "c") == [0.4, 0.7]  # no adapter saved: trained again
    (tmp_path / "c" / "out").mkdir(parents=True)
    (tmp_path / "c" / "out" / "adapter_config.json").write_text("{}")
    assert contrast.trained(tmp_path, cfg, "c") == [0.41, 0.72] and len(calls) == 2
    assert contrast.trained(tmp_path, {**cfg, "seed": 1}, "c") == [0.4, 0.7]  # another config
    assert len(calls) == 3


def test_probe_figures_are_reused_only_for_the_same_config_adapter_and_pairs(tmp_path, monkeypatch):
    import yaml

    calls = []
    monkeypatch.setattr(
        contrast, "probe_figures", lambda config, probes: calls.append(config) or {"auc": 0.7}
    )
    adapter = tmp_path / "c" / "out"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    config = tmp_path / "eval_c.yml"
    config.write_text(yaml.safe_dump({"model": {"adapter": str(adapter)}}))
    probes = {"heldout": _pairs("m")}

    def probed() -> dict:
        return contrast.cached_probe_figures(config, probes, "c")

    assert probed() == {"auc": 0.7} and len(calls) == 1
    assert probed() == {"auc": 0.7} and len(calls) == 1  # reused
    (adapter / "adapter_model.safetensors").write_bytes(b"retrained")
    assert probed() == {"auc": 0.7} and len(calls) == 2  # other weights: probed again
    probes["heldout"] = _pairs("h")
    assert probed() == {"auc": 0.7} and len(calls) == 3  # other pairs
    config.write_text(yaml.safe_dump({"model": {"adapter": str(adapter), "batch_size": 4}}))
    assert probed() == {"auc": 0.7} and len(calls) == 4  # another config
    assert probed() == {"auc": 0.7} and len(calls) == 4
    base = tmp_path / "eval_base.yml"
    base.write_text(yaml.safe_dump({"model": {"adapter": None}}))
    assert contrast.cached_probe_figures(base, probes, "base") == {"auc": 0.7}
    assert contrast.cached_probe_figures(base, probes, "base") == {"auc": 0.7} and len(calls) == 5
