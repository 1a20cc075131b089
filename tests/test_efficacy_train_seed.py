"""The efficacy script's training seed: it changes Axolotl's `seed` and nothing else, and its
default is the recipes' seed, so a default rerun resumes the adapters an earlier run trained."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import yaml

from tests.build_support import stub_manifest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the script imports it the same way
efficacy = importlib.import_module("efficacy_smollm2")


def test_default_seed_is_the_recipes_and_another_seed_changes_only_seed(tmp_path):
    default = efficacy.Experiment(tmp_path / "work", tmp_path, efficacy.QUICK, "1")
    seeded = efficacy.Experiment(tmp_path / "work", tmp_path, efficacy.QUICK, "1", train_seed=7)
    for arm, recipe in (("sft", "smollm2_135m_sft.yml"), ("anchored", "smollm2_135m_mistake.yml")):
        base, other = default.train_config(arm, "model"), seeded.train_config(arm, "model")
        assert base["seed"] == yaml.safe_load((REPO / "recipes" / recipe).read_text())["seed"]
        assert other["seed"] == 7
        assert {k: v for k, v in other.items() if k != "seed"} == {
            k: v for k, v in base.items() if k != "seed"
        }


def test_summary_keeps_the_builds_an_earlier_run_left(tmp_path):
    """A control-arm rerun builds only origin and anchored; paper's file list must stay."""
    for arm, n in (("origin", 3), ("paper", 4), ("anchored", 5)):
        (tmp_path / "build" / arm).mkdir(parents=True)
        manifest = stub_manifest(
            {"mistake_analysis.jsonl": {"role": "mistake_analysis", "rows": n}}
        )
        (tmp_path / "build" / arm / "manifest.json").write_text(json.dumps(manifest.to_json()))
    (tmp_path / "build" / "other").mkdir()  # another tool's manifest.json is not a build's
    (tmp_path / "build" / "other" / "manifest.json").write_text(json.dumps({"files": {}}))
    files = efficacy.built_files(tmp_path)
    assert sorted(files) == ["anchored", "origin", "paper"]
    assert files["paper"]["mistake_analysis.jsonl"]["rows"] == 4
    assert files["paper"]["mistake_analysis.jsonl"]["role"] == "mistake_analysis"
    assert efficacy.built_files(tmp_path / "empty") == {}


def test_a_build_seed_changes_only_the_builders_seed(tmp_path):
    default = efficacy.Experiment(tmp_path / "work", tmp_path, efficacy.QUICK, "1")
    seeded = efficacy.Experiment(tmp_path / "work", tmp_path, efficacy.QUICK, "1", build_seed=3)
    recipe = yaml.safe_load((REPO / "recipes" / "smollm2_135m_mistake.build.yml").read_text())
    for arm in ("origin", "paper", "anchored"):
        base, other = default.build_config(arm), seeded.build_config(arm)
        assert base["seed"] == recipe["seed"] and other["seed"] == 3
        assert {k: v for k, v in other.items() if k != "seed"} == {
            k: v for k, v in base.items() if k != "seed"
        }
    # the training is untouched: an earlier run's adapters stay current if the data do
    assert default.train_config("anchored", "m") == seeded.train_config("anchored", "m")
