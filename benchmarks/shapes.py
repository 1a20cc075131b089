"""Random-weight Llama shapes shared by the benchmarks and the tests: the one place a shape is
written. Builds configs (and, for the tests, a saved tiny model); never loads or downloads weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Shape:
    """The sizes that make a Llama architecture (vocabulary and special ids come separately)."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    positions: int


LLAMA2_7B = Shape(hidden=4096, intermediate=11008, layers=32, heads=32, kv_heads=32, positions=4096)
"""Llama-2-7B (and Alpaca-7B): the paper's model size, for GPU speed and memory checks."""

TINY = Shape(hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2, positions=2048)
"""Two small layers: fast CPU tests and smoke runs whose numbers mean nothing."""


def llama_config(shape: Shape, tokenizer: Any = None, **extra: Any) -> Any:
    """A `LlamaConfig` of `shape`; with a tokenizer, its vocabulary size and special token ids
    (so generation stops and pads like the real model), else Llama-2's 32,000 tokens."""
    from transformers import LlamaConfig

    ids: dict[str, Any] = {"vocab_size": 32000}
    if tokenizer is not None:
        ids = {
            "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
    return LlamaConfig(
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=shape.positions,
        **{**ids, **extra},
    )


def build_tiny_model(tokenizer_dir: Path, out: Path, seed: int = 0) -> Path:
    """Save a `TINY` Llama (seeded random weights) with `tokenizer_dir`'s tokenizer into `out`."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(llama_config(TINY, tokenizer, tie_word_embeddings=True))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
