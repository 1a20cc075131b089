"""Turn a backend config into a ready `Backend`: the registry in `config.BACKENDS` picks the class.

Engines are imported only here, when a backend is built, so that e.g. the openai backend never
pulls in torch or vllm. It must never cache, retry or render prompts itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from axolotl_mistake.generation.base import Backend
from axolotl_mistake.generation.config import BackendConfig, parse_backend_config


def load_backend(cfg: BackendConfig | Mapping[str, Any]) -> Backend:
    """Build the backend `cfg.kind` names (loading model weights for local kinds)."""
    return parse_backend_config(cfg).load()
