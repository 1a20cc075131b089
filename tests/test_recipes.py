"""Every recipe in recipes/ passes Axolotl's own config validation with the plugin loaded, every
build config passes the builder's validation, and every recipe carries the required header."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip("axolotl")

from axolotl_mistake.plugin import MistakeAnalysisPlugin

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PLUGIN = "axolotl_mistake.MistakeAnalysisPlugin"
HEADER_FIELDS = ("Reproduces:", "Base model:", "Hardware:", "Expected time", "Commands")


def train_recipes() -> list[Path]:
    return sorted(
        p for p in RECIPES.glob("*.yml") if not p.name.endswith((".build.yml", ".eval.yml"))
    )


def build_configs() -> list[Path]:
    return sorted(RECIPES.glob("*.build.yml"))


def header(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


def build_config_of(recipe: Path) -> Path:
    """The build config a recipe's header tells users to run."""
    found = re.search(r"dataset_builders\.build --config (recipes/\S+\.build\.yml)", header(recipe))
    assert found, f"{recipe.name}: header names no `python -m dataset_builders.build --config ...`"
    return RECIPES.parent / found.group(1)


GPU_CAPABILITIES = (
    {"bf16": True, "fp8": False, "tf32": True, "n_gpu": 1, "compute_capability": "sm_80"},
    {"torch_version": "2.8.0"},
)


def test_recipes_exist():
    names = {p.name for p in train_recipes()}
    for required in (
        "alpaca7b_mistake.yml",
        "alpaca7b_sft.yml",
        "alpaca7b_coh.yml",
        "alpaca7b_critique_revise.yml",
        "glm4_9b_chat_goal_hijack.yml",
        "llama3_8b_instruct_mistake.yml",
        "mistral_nemo_12b_instruct_mistake.yml",
        "qwen25_7b_instruct_mistake.yml",
        "smollm2_135m_mistake.yml",
    ):
        assert required in names
    assert (RECIPES / "README.md").is_file()


@pytest.mark.parametrize("recipe", train_recipes(), ids=lambda p: p.name)
def test_recipe_header(recipe):
    text = header(recipe)
    assert text.startswith(f"# {recipe.name} "), f"{recipe.name}: header must start with its name"
    for field in HEADER_FIELDS:
        assert field in text, f"{recipe.name}: header lacks '{field}'"
    assert f"axolotl train recipes/{recipe.name}" in text
    if "CPU only" not in text:  # every GPU recipe documents its multi-GPU launch
        match = re.search(r"--deepspeed (recipes/\S+\.json)", text)
        assert match, f"{recipe.name}: no multi-GPU (DeepSpeed) command in the header"
        json.loads((RECIPES.parent / match.group(1)).read_text())


@pytest.mark.parametrize("recipe", train_recipes(), ids=lambda p: p.name)
def test_recipe_passes_axolotl_validation(recipe, fresh_plugin_manager):
    """Axolotl's validate_config (no model download: it runs before normalize_config)."""
    from axolotl.cli.config import gpu_capabilities, prepare_plugins
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    assert PLUGIN in raw.get("plugins", []), f"{recipe.name}: plugin not listed"
    cfg = DictDefault(raw)
    cfg.axolotl_config_path = str(recipe)
    prepare_plugins(cfg)
    # Axolotl only logs a plugin that failed to import: make sure ours is really there
    assert isinstance(fresh_plugin_manager.plugins.get(PLUGIN), MistakeAnalysisPlugin)
    cpu = "CPU only" in header(recipe)
    capabilities, env = gpu_capabilities() if cpu else GPU_CAPABILITIES
    validated = validate_config(cfg, capabilities=capabilities, env_capabilities=env)
    assert validated.base_model == raw["base_model"]
    assert validated.train_on_inputs is False
    for key, value in raw.items():
        if key.startswith("mistake_"):
            assert validated[key] == value, key
    if cpu:  # the CPU settings of AXOLOTL_CPU_NOTES.md are mandatory
        for key, value in {
            "bf16": False,
            "fp16": False,
            "lora_mlp_kernel": False,
            "lora_qkv_kernel": False,
            "lora_o_kernel": False,
            "lora_embedding_kernel": False,
            "attn_implementation": "sdpa",
            "optimizer": "adamw_torch",
        }.items():
            assert raw.get(key) == value, f"{recipe.name}: CPU recipe needs {key}: {value}"


@pytest.mark.parametrize("recipe", train_recipes(), ids=lambda p: p.name)
def test_recipe_reads_its_build_output(recipe):
    """Dataset paths point into the `output` folder of the build config the header names."""
    from dataset_builders.config import load_config

    build, _, _ = load_config(["--config", str(build_config_of(recipe))])
    raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    for ds in raw["datasets"]:
        assert Path(ds["path"]).parent == Path(build.output), (recipe.name, ds["path"])
    if raw.get("mistake_probe_pairs") == "builtin":
        from axolotl_mistake.plugin import builtin_probe_pairs

        assert builtin_probe_pairs().is_file()


@pytest.mark.parametrize("build", build_configs(), ids=lambda p: p.name)
def test_build_config_passes_builder_validation(build):
    config = pytest.importorskip(
        "dataset_builders.config", reason="the builder's config module is not there yet"
    )
    cfg, _, _ = config.load_config(["--config", str(build)])
    text = header(build)
    assert text.startswith(f"# {build.name} ")
    for field in HEADER_FIELDS:
        assert field in text, f"{build.name}: header lacks '{field}'"
    assert f"dataset_builders.build --config recipes/{build.name}" in text
    assert cfg.output.startswith("outputs/")


def test_readme_indexes_every_recipe():
    readme = (RECIPES / "README.md").read_text(encoding="utf-8")
    for recipe in train_recipes():
        assert f"`{recipe.name}`" in readme or f"({recipe.name})" in readme, recipe.name
    for build in build_configs():
        assert build.name in readme, build.name
