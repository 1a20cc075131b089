"""Turn a `BackendConfig` into a ready `Backend`; the one place that picks an engine.

Engines are imported lazily so that, e.g., the openai backend never pulls in torch or vllm.
It must never cache, retry or render prompts itself: those live in the backends and `cache`.
"""

from __future__ import annotations

from axolotl_mistake.generation.base import Backend
from axolotl_mistake.generation.config import BackendConfig


def load_backend(cfg: BackendConfig) -> Backend:
    """Build the backend `cfg.kind` names (loading model weights for local kinds)."""
    if cfg.kind == "transformers":
        from axolotl_mistake.generation.transformers import TransformersBackend

        return TransformersBackend.from_config(cfg)
    if cfg.kind == "openai":
        from axolotl_mistake.generation.openai import OpenAIBackend

        return OpenAIBackend.from_config(cfg)
    if cfg.kind == "vllm":
        from axolotl_mistake.generation.vllm import VLLMBackend

        return VLLMBackend.from_config(cfg)
    raise ValueError(f"unknown backend kind {cfg.kind!r}")  # pragma: no cover (pydantic guards)
