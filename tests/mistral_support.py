"""Mistral-shaped things for tests, offline: the tokenizer files mistral-common ships in its
package, and a tiny random-weight Mistral model over its Tekken vocabulary."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def shipped(name: str) -> Path:
    """A tokenizer file from mistral-common's package data; skips where it is not there."""
    spec = importlib.util.find_spec("mistral_common")
    if spec is None or spec.origin is None:
        pytest.skip("mistral-common is not installed")
    path = Path(spec.origin).parent / "data" / name
    if not path.is_file():
        pytest.skip(f"this mistral-common ships no {name}")
    return path


def tiny_mistral(folder: Path) -> Path:
    """A Mistral-shaped model folder, offline: seeded random weights of a one-layer Mistral over
    the Tekken vocabulary, and the `tekken.json` mistral-common ships (what Axolotl's loader
    reads with `tokenizer_use_mistral_common: true`)."""
    import shutil

    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    config = MistralConfig(
        vocab_size=131072, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, pad_token_id=11,
    )  # fmt: skip
    MistralForCausalLM(config).save_pretrained(folder)
    shutil.copy(shipped("tekken_240911.json"), folder / "tekken.json")
    return folder
