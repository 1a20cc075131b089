"""Random-weight Llama shapes shared by the benchmarks and the tests: the one place a shape is
written. Builds configs (and, for the tests, a saved tiny model); never loads or downloads weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Shape:
    """The sizes that make a Llama architecture, named as `LlamaConfig` names them (vocabulary
    and special token ids come separately)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int


LLAMA2_7B = Shape(4096, 11008, 32, 32, 32, 4096)
"""Llama-2-7B (and Alpaca-7B): the paper's model size, for GPU speed and memory checks."""

TINY = Shape(64, 128, 2, 4, 2, 2048)
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
    return LlamaConfig(**asdict(shape), **{**ids, **extra})


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
