"""Write CPU-safe Axolotl configs and run the real `axolotl` CLI in a subprocess (tests only)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

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
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_axolotl(args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `axolotl <args>` with the offline, 2-thread CPU environment the notes ask for."""
    env = offline_cpu_env(pythonpath=Path(__file__).resolve().parents[1])
    exe = Path(sys.executable).with_name("axolotl")
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
