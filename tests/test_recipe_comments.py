"""Checks of the shipped recipes beyond tests/test_recipes.py and
tests/test_recipe_commands.py: what a user copying a recipe to a GPU machine would hit.

- Overrides that a recipe's comments tell users to append to `axolotl train` (outside the
  header's `Commands` block, which test_recipe_commands.py already parses) must parse with
  Axolotl's own CLI parser, with nothing left over for the launcher, and the overridden config
  must pass `load_cfg`.
- The build config that claims to be the builder's defaults written out names every key in
  which it is not.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

pytest.importorskip("axolotl")

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
GPU_CAPABILITIES = (
    {"bf16": True, "fp8": False, "tf32": True, "n_gpu": 1, "compute_capability": "sm_80"},
    {"torch_version": "2.8.0"},
)


def train_recipes() -> list[Path]:
    return sorted(
        p for p in RECIPES.glob("*.yml") if not p.name.endswith((".build.yml", ".eval.yml"))
    )


def header_length(path: Path) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))


# `--flag [value]` pairs that end a comment line, e.g. "use QLoRA instead: --adapter qlora ..."
OVERRIDE = re.compile(r"(--[a-z][\w-]*(?:\s+(?!--)\S+)?(?:\s+--[a-z][\w-]*(?:\s+(?!--)\S+)?)*)\s*$")


def comment_overrides() -> list[tuple[Path, str]]:
    """(recipe, flags) for each comment line below the header that ends in CLI overrides."""
    found = []
    for recipe in train_recipes():
        lines = recipe.read_text(encoding="utf-8").splitlines()
        for line in lines[header_length(recipe) :]:
            comment = line.split("#", 1)[1] if "#" in line else ""
            match = OVERRIDE.search(comment)
            if match:
                found.append((recipe, match.group(1)))
    return found


OVERRIDES = comment_overrides()


def test_comment_overrides_were_found():
    """Guard the scanner: the GLM recipe's QLoRA variant for one 24 GB GPU is one of them."""
    assert any(r.name == "glm4_9b_chat_goal_hijack.yml" for r, _ in OVERRIDES), OVERRIDES


@pytest.mark.parametrize(
    "recipe,flags", OVERRIDES, ids=[f"{r.name}:{f}" for r, f in OVERRIDES] or None
)
def test_comment_override_parses_and_validates(
    recipe, flags, tiny_model_dir, fresh_plugin_manager, monkeypatch, tmp_path
):
    """`axolotl train` hands every argument it does not know to the launcher: with the default
    accelerate launcher, a stray `true` becomes `accelerate launch true -m axolotl.cli.train
    ...`, which tries to run a script named `true`."""
    import axolotl.cli.config as axolotl_config
    from axolotl.cli.main import cli

    command = cli.get_command(None, "train")
    ctx = command.make_context("train", [str(recipe), *shlex.split(flags)])
    assert not ctx.args, (
        f"{recipe.name}: `axolotl train ... {flags}` leaves {ctx.args} for the launcher "
        "(accelerate would take the first as its training script)"
    )
    given = {
        param.name: ctx.params[param.name]
        for param in command.params
        if any(opt in shlex.split(flags) for opt in [*param.opts, *param.secondary_opts])
    }
    assert given, f"{recipe.name}: no Axolotl option in {flags!r}"
    monkeypatch.setattr(axolotl_config, "gpu_capabilities", lambda: GPU_CAPABILITIES)
    monkeypatch.chdir(tmp_path)  # load_cfg writes output_dir/debug.log relative to the cwd
    cfg = axolotl_config.load_cfg(str(recipe), base_model=str(tiny_model_dir), **given)
    for key, value in given.items():
        assert cfg[key] == value, (key, cfg[key], value)


# --- build configs: "the builder's defaults written out" -------------------------------------


def test_default_build_claim_names_every_difference():
    """smollm2_135m_mistake.build.yml says `python -m dataset_builders.build` with no arguments
    builds exactly it (the README's main job relies on that): every key in which it differs from
    the builder's defaults must be named in its header as `key.path: value`."""
    from dataset_builders.config import load_config

    build = RECIPES / "smollm2_135m_mistake.build.yml"
    header = "\n".join(
        line for line in build.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    )
    assert "with no arguments" in header and "builds exactly this" in header
    default, _, _ = load_config([])
    written, _, _ = load_config(["--config", str(build)])

    def differences(a, b, path=""):
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                yield from differences(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        elif a != b:
            yield path, b

    named = " ".join(" ".join(header.split("#")).split())
    unnamed = [
        f"{key}: {value}"
        for key, value in differences(default.model_dump(), written.model_dump())
        if f"`{key}: {value}`" not in named
    ]
    assert not unnamed, f"{build.name} differs from the builder's defaults in {unnamed}"
