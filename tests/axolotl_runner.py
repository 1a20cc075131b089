"""Write CPU-safe Axolotl configs and run the real `axolotl` CLI in a subprocess (tests only)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from axolotl_mistake.fileio import write_atomic
from axolotl_mistake.offline_env import offline_cpu_env

CPU_SETTINGS: dict[str, Any] = {
    # From AXOLOTL_CPU_NOTES.md: each of these must be explicit on CPU.
    "bf16": False,
    "fp16": False,
    "tf32": False,
    "lora_mlp_kernel": False,
    "lora_qkv_kernel": False,
    "lora_o_kernel": False,
    "lora_embedding_kernel": False,
    "attn_implementation": "sdpa",
    "optimizer": "adamw_torch",
}


FIXTURES = Path(__file__).parent / "fixtures"


def fixture_datasets(
    workdir: Path, analysis_type: str = "axolotl_mistake.unguided_analysis"
) -> list[dict]:
    """The shipped fixture rows copied into `workdir` (Axolotl writes beside its inputs): one
    analysis dataset of `analysis_type` and one plain Alpaca SFT dataset."""
    shutil.copy(FIXTURES / "analysis_rows.jsonl", workdir / "analysis.jsonl")
    shutil.copy(FIXTURES / "sft_rows.jsonl", workdir / "sft.jsonl")
    return [
        {"path": str(workdir / "analysis.jsonl"), "ds_type": "json", "type": analysis_type},
        {"path": str(workdir / "sft.jsonl"), "ds_type": "json", "type": "alpaca"},
    ]


def lora_config(base_model: Path, datasets: list[dict], workdir: Path, **overrides: Any) -> dict:
    """A small LoRA run on CPU: a few steps, no checkpoints, adapter saved at the end."""
    cfg: dict[str, Any] = {
        "base_model": str(base_model),
        "datasets": datasets,
        "dataset_prepared_path": str(workdir / "prepared"),
        "val_set_size": 0,
        "output_dir": str(workdir / "out"),
        "adapter": "lora",
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "lora_target_linear": True,
        "sequence_len": 512,
        "sample_packing": False,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "max_steps": 3,
        "learning_rate": 0.0002,
        "lr_scheduler": "constant",
        "warmup_steps": 0,
        "logging_steps": 1,
        "save_strategy": "no",
        "seed": 0,
        "dataset_num_proc": 1,
        **CPU_SETTINGS,
    }
    cfg.update(overrides)
    return cfg


def write_config(cfg: dict, path: Path) -> Path:
    write_atomic(path, yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_axolotl(
    args: list[str], cwd: Path, timeout: int | None = 900
) -> subprocess.CompletedProcess:
    """Run `axolotl <args>` with the offline, 2-thread CPU environment the notes ask for
    (`timeout` None: no limit)."""
    env = offline_cpu_env(pythonpath=Path(__file__).resolve().parents[1])
    exe = Path(sys.executable).with_name("axolotl")
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


GPU_ONLY_KEYS = ("load_in_4bit", "gradient_checkpointing", "evals_per_epoch", "saves_per_epoch")
"""Settings of the GPU recipes that a CPU run leaves out (QLoRA, checkpointing, periodic evals)."""


def train_recipe_on_cpu(recipe: dict, base_model: Path, workdir: Path, name: str) -> str:
    """Two steps of a GPU recipe's config on CPU — its plugin, datasets and probe kept, the
    hardware settings swapped for CPU LoRA on `base_model` — asserting that it trains, the probe
    runs at start and end, and the adapter is saved. Returns the log."""
    cfg = {k: v for k, v in recipe.items() if k not in GPU_ONLY_KEYS}
    cfg.update(
        CPU_SETTINGS,
        base_model=str(base_model),
        dataset_prepared_path=str(workdir / "prepared"),
        output_dir=str(workdir / "out"),
        adapter="lora",
        sequence_len=512,
        sample_packing=False,
        pad_to_sequence_len=False,
        val_set_size=0,
        micro_batch_size=2,
        gradient_accumulation_steps=1,
        max_steps=2,
        logging_steps=1,
        mistake_probe_max_pairs=4,
    )
    config = write_config(cfg, workdir / name)
    run = run_axolotl(["train", str(config), "--launcher", "python"], cwd=workdir)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    assert "Plugin loaded successfully: axolotl_mistake.MistakeAnalysisPlugin" in log
    assert log.count("'discrimination_auc'") == 2, log[-4000:]
    assert (workdir / "out" / "adapter_model.safetensors").is_file()
    return log
