"""The plugin seeds LoRA's initial weights from `seed`, so the same config trains the same adapter.

torch 2.13 seeds its default generator differently in every process and Axolotl 0.19 seeds only
when it builds the Trainer, after `get_peft_model` has drawn LoRA's A matrices; Axolotl 0.21+
seeds right before `get_peft_model`. The plugin's `pre_lora_load` hook (called by both right
before it) does the same, so runs repeat on 0.19 too.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("axolotl")

from axolotl_mistake.plugin import MistakeAnalysisPlugin
from tests.axolotl_runner import lora_config, run_axolotl, write_config

FIXTURES = Path(__file__).parent / "fixtures"
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


def _adapter_sha(folder: Path) -> str:
    return hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest()


def test_axolotl_train_twice_gives_the_same_adapter(tiny_model_dir, tmp_path):
    """The real `axolotl train` (two processes, one step each): byte-identical adapters."""
    shas = []
    for run in ("a", "b"):
        work = tmp_path / run
        work.mkdir()
        shutil.copy(FIXTURES / "analysis_rows.jsonl", work / "analysis.jsonl")
        datasets = [
            {
                "path": str(work / "analysis.jsonl"),
                "ds_type": "json",
                "type": "axolotl_mistake.unguided_analysis",
            }
        ]
        cfg = lora_config(tiny_model_dir, datasets, work, plugins=[PLUGIN], max_steps=1)
        result = run_axolotl(
            ["train", str(write_config(cfg, work / "cfg.yml")), "--launcher", "python"], cwd=work
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        shas.append(_adapter_sha(work / "out"))
    assert shas[0] == shas[1]
