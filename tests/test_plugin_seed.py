"""The plugin seeds LoRA's initial weights from `seed`: one config, one initial adapter.

torch 2.13 seeds its default generator differently in every process and Axolotl 0.19 seeds only
when it builds the Trainer, after `get_peft_model` has drawn LoRA's A matrices; Axolotl 0.21+
seeds right before `get_peft_model`. The plugin's `pre_lora_load` hook (called by both right
before it) does the same, so 0.19 runs start from the same weights too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("axolotl")

from axolotl_mistake.plugin import MistakeAnalysisPlugin
from tests.axolotl_runner import fixture_datasets, lora_config, run_axolotl, write_config

PLUGIN = "axolotl_mistake.MistakeAnalysisPlugin"
ACTIVE = {"plugins": [PLUGIN], "datasets": [{"path": "x.jsonl", "type": "alpaca"}]}


def initial_lora_a(model_dir: Path, cfg: dict, process_seed: int) -> torch.Tensor:
    """LoRA's first A matrix as `get_peft_model` draws it after the plugin's hook, starting from
    the generator state `process_seed` (standing in for a process's random start)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    torch.manual_seed(process_seed)
    MistakeAnalysisPlugin().pre_lora_load(cfg, model)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"]))
    return next(p for n, p in peft_model.named_parameters() if "lora_A" in n).detach().clone()


def test_same_seed_same_initial_adapter_whatever_the_process_state(tiny_model_dir):
    cfg = {**ACTIVE, "seed": 7}
    first = initial_lora_a(tiny_model_dir, cfg, process_seed=1)
    assert torch.equal(first, initial_lora_a(tiny_model_dir, cfg, process_seed=2))
    other = initial_lora_a(tiny_model_dir, {**ACTIVE, "seed": 8}, process_seed=1)
    assert not torch.equal(first, other)


@pytest.mark.parametrize(
    "cfg",
    [
        {**ACTIVE},  # no seed: nothing to seed with
        {**ACTIVE, "seed": 7, "lora_model_dir": "adapter"},  # a loaded adapter draws nothing
        {"plugins": [], "datasets": [{"path": "x.jsonl", "type": "alpaca"}], "seed": 7},
    ],
    ids=["no-seed", "lora-model-dir", "inactive"],
)
def test_generator_left_alone(tiny_model_dir, cfg):
    """Without a seed, with an adapter to load, or inactive (0.21's entry-point registration for
    a config that does not use the plugin) the hook must not touch the generator."""
    first = initial_lora_a(tiny_model_dir, cfg, process_seed=1)
    assert not torch.equal(first, initial_lora_a(tiny_model_dir, cfg, process_seed=2))


def _adapter(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_axolotl_train_twice_gives_the_same_adapter(tiny_model_dir, tmp_path):
    """The real `axolotl train` (two processes, one step each): the same adapter.

    LoRA's A matrices get no update at the first step (B starts at zero), so they are the seeded
    draw and must be equal bit for bit; unseeded they differ by about 0.1. The B matrices are
    one Adam step from zero, where CPU float sums are not guaranteed bit-stable across processes
    (seen once in CI: up to 2e-6 apart), so they are compared to a tolerance.
    """
    adapters = []
    for run in ("a", "b"):
        work = tmp_path / run
        work.mkdir()
        cfg = lora_config(
            tiny_model_dir, fixture_datasets(work), work, plugins=[PLUGIN], max_steps=1
        )
        result = run_axolotl(
            ["train", str(write_config(cfg, work / "cfg.yml")), "--launcher", "python"], cwd=work
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-3000:]
        # the plugin's INFO line reaches Axolotl's console (a plain logger's INFO did not)
        assert "adapter initialisation seeded with seed 0" in output, output[-3000:]
        adapters.append(_adapter(work / "out"))
    first, second = adapters
    assert first.keys() == second.keys()
    a_keys = [k for k in first if "lora_A" in k]
    assert a_keys
    for key in a_keys:
        assert torch.equal(first[key], second[key]), key
    for key in first:
        assert torch.allclose(first[key], second[key], rtol=0, atol=1e-4), key
