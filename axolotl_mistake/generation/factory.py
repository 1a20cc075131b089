"""Turn a backend config into a ready `Backend`: the registry in `config.BACKENDS` picks the class.

Engines are imported only here, when a backend is built, so that e.g. the openai backend never
pulls in torch or vllm. It must never cache, retry or render prompts itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from axolotl_mistake.generation.base import Backend
from axolotl_mistake.generation.config import BackendConfig, parse_backend_config


def load_backend(cfg: BackendConfig | Mapping[str, Any]) -> Backend:
    """Build the backend `cfg.kind` names (loading model weights for local kinds)."""
    return parse_backend_config(cfg).load()


def load_configured(bcfg: BackendConfig, where: str, file: str | None = None) -> Backend:
    """Load the model a config key configured; any failure is an InputError naming the key
    (`<where>.model`, or `<where>.api_key_env` for a key that is not in the environment), in
    `file` (None: the caller's config, see `configio.locate`)."""
    from axolotl_mistake.errors import InputError, first_line

    env = getattr(bcfg, "api_key_env", None)
    if env and not os.environ.get(env):
        raise InputError(
            f"environment variable {env!r} is not set or empty; export the API key there",
            file=file,
            field=f"{where}.api_key_env",
        )
    model = getattr(bcfg, "model", None)
    if getattr(bcfg, "local", False) and isinstance(model, str) and Path(model).is_dir():
        if not (Path(model) / "config.json").is_file():
            raise InputError(
                f"not a model folder (no config.json): {model}", file=file, field=f"{where}.model"
            )
    try:
        return load_backend(bcfg)
    except (OSError, ValueError, ImportError) as exc:
        raise InputError(
            f"cannot load model {bcfg.model!r}: {first_line(exc)}",
            file=file,
            field=f"{where}.model",
        ) from None


class LoadedBackends:
    """Each distinct backend config loaded once (a build's or an eval's stages may name one
    model several times), by `load_configured`."""

    def __init__(self) -> None:
        self._loaded: dict[str, Backend] = {}

    def load(self, bcfg: BackendConfig, where: str, file: str | None = None) -> Backend:
        key = bcfg.model_dump_json()
        if key not in self._loaded:
            self._loaded[key] = load_configured(bcfg, where, file)
        return self._loaded[key]

    def __getitem__(self, bcfg: BackendConfig) -> Backend:
        """The backend of a config already loaded."""
        return self._loaded[bcfg.model_dump_json()]
