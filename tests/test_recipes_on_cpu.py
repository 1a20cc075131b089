"""Every GPU recipe as shipped, built, trained and evaluated on CPU: only what needs a GPU, the
Hub or an API key is swapped — the model for a tiny random one of the same tokenizer kind (the
embedded model's ChatML tokenizer; the Tekken one for the Mistral recipe), Hub sources for the
public samples in ../shared/data, sizes and budgets for a few rows and steps, QLoRA and bf16 for
CPU LoRA, the `llm` judge left out. Stages, prompt formats, chat modes, dataset blocks, the plugin and its
probe, evaluation modes and prompt sets stay the recipe's own.

No GPU run of these recipes was possible here, and a chat-format build once crashed before its
first model call (the context bound hashed dicts): these runs are what stands in for one. The
random models' text cannot pass a quality gate or a self-check, so the gates are relaxed and the
answers' labels verify the mistakes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.axolotl_runner import train_recipe_on_cpu
from tests.mistral_support import tiny_mistral

pytest.importorskip("axolotl")

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
GPU_BUILDS = sorted(p for p in RECIPES.glob("*.build.yml") if not p.name.startswith("smollm2"))
GPU_RECIPES = sorted(
    p
    for p in RECIPES.glob("*.yml")
    if not p.name.endswith((".build.yml", ".eval.yml")) and not p.name.startswith("smollm2")
)
GPU_EVALS = sorted(p for p in RECIPES.glob("*.eval.yml") if not p.name.startswith("smollm2"))


def _local_source(source: dict, data: Path) -> dict:
    """A Hub source as the same kind read from the shared sample of that dataset."""
    files = {
        "pku_saferlhf": data / "pku_saferlhf" / "test_sample.jsonl",
        "alpaca": data / "alpaca" / "alpaca_5000_pr152.jsonl",
        "hh_rlhf": data / "hh_rlhf" / "harmless-base_test.jsonl.gz",
        "xstest": data / "xstest" / "xstest_prompts.csv",
    }
    kept = {k: v for k, v in source.items() if k not in ("hub_id", "split", "data_dir")}
    return {**kept, "path": str(files[source["kind"]])}


def _mistral(path: Path) -> bool:
    return "mistral" in path.name


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory) -> dict[str, Path]:
    return {"chatml": tiny_model_dir, "tekken": tiny_mistral(tmp_path_factory.mktemp("mistral"))}


@pytest.fixture(scope="module")
def builds(models, shared_data, tmp_path_factory) -> dict[str, Path]:
    """Each GPU build config run once, on CPU: its output folder by the config's `output` name."""
    from dataset_builders.build import main

    out: dict[str, Path] = {}
    for build in GPU_BUILDS:
        cfg: dict[str, Any] = yaml.safe_load(build.read_text())
        folder = tmp_path_factory.mktemp(build.stem)
        model = models["tekken" if _mistral(build) else "chatml"]
        chat = cfg["model"].get("chat", "auto")
        cfg["model"] = {"kind": "transformers", "model": str(model), "device": "cpu", "chat": chat}
        for key in ("redteam", "helpful"):
            cfg[key] = [_local_source(s, shared_data) for s in cfg[key]]
        select = cfg["select"]
        select.update(redteam_n=4, helpful_n=4)
        select["decontaminate"] = [
            {**_local_source(s, shared_data), "limit": 50} for s in select["decontaminate"]
        ]
        cfg["mistakes"]["max_new_tokens"] = 8
        cfg["verify"] = {"mode": "label"}
        cfg["analyses"].update(
            max_new_tokens=6, min_chars=1, max_echo_overlap=1.0, temperature=1.0, stop=[]
        )
        if "revise" in cfg:
            cfg["revise"].update(
                max_new_tokens=6, min_chars=1, max_echo_overlap=1.0, temperature=1.0, stop=[]
            )
        cfg.update(output=str(folder / "out"), progress=False)
        config = folder / build.name
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        assert main(["--config", str(config)]) == 0, build.name
        out[Path(yaml.safe_load(build.read_text())["output"]).name] = folder / "out"
    return out


@pytest.mark.slow
@pytest.mark.parametrize("build", GPU_BUILDS, ids=lambda p: p.name)
def test_a_gpu_build_writes_its_rows_on_cpu(build, builds):
    out = builds[Path(yaml.safe_load(build.read_text())["output"]).name]
    manifest = json.loads((out / "manifest.json").read_text())
    for name, entry in manifest["files"].items():  # every file asked for holds rows
        rows = (out / name).read_text().splitlines()
        assert len(rows) == entry["rows"] > 0, name
    assert manifest["counts"]["context_bound"]["too_long_for_context"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("recipe", GPU_RECIPES, ids=lambda p: p.name)
def test_a_gpu_recipe_trains_on_its_builds_rows_on_cpu(recipe, builds, models, tmp_path):
    """Two steps of the recipe on its own build's rows: it trains, the probe runs at start and
    end in the recipe's style, and the adapter is saved."""
    cfg: dict[str, Any] = yaml.safe_load(recipe.read_text())
    for ds in cfg["datasets"]:
        shipped = Path(ds["path"])
        ds["path"] = str(builds[shipped.parent.name] / shipped.name)
    model = models["tekken" if _mistral(recipe) else "chatml"]
    train_recipe_on_cpu(cfg, model, tmp_path, recipe.name)


@pytest.mark.slow
@pytest.mark.parametrize("evaluation", GPU_EVALS, ids=lambda p: p.name)
def test_a_gpu_evaluation_config_runs_on_cpu(evaluation, models, shared_data, tmp_path):
    """The evaluation config as shipped — prompt format, modes, prompt sets, the offline
    `refusal` judge — on the tiny model without an adapter, a few items per set; the `llm` judge
    (an endpoint and a key) is left out and the Hub-only attack prompts are noted as not
    loaded, as offline."""
    from axolotl_mistake.evaluate.__main__ import main

    cfg: dict[str, Any] = yaml.safe_load(evaluation.read_text())
    model = models["tekken" if _mistral(evaluation) else "chatml"]
    cfg["model"] = {"kind": "transformers", "model": str(model), "device": "cpu", "batch_size": 4}
    cfg.update(output_dir=str(tmp_path / "run"), bootstrap={"samples": 100, "seed": 0})
    cfg["sampling"]["max_new_tokens"] = 4
    for prompt_set in cfg["prompt_sets"].values():
        for holder in (prompt_set, prompt_set.get("from_instructions") or {}):
            if "source" in holder:
                holder["source"] = {**_local_source(holder["source"], shared_data), "limit": 50}
                holder["limit"] = 4
    cfg["judges"] = [j for j in cfg["judges"] if j["kind"] != "llm"]
    cfg["primary_judge"] = "refusal"
    config = tmp_path / evaluation.name
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert main(["--config", str(config), "--quiet"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert not any(results["failures"]["failed"].values()), results["failures"]
    assert results["modes"] == cfg["modes"]
    assert results["discrimination"]["n"] > 0
