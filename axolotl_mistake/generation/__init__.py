"""Generation backends behind one interface (see `base`), their configs, and the call cache.

`load_backend(BackendConfig(kind=..., ...))` builds a backend; wrap it in `CachedBackend(backend,
CallCache(path))` so every finished call is stored and a rerun repeats only missing calls.
Engines (torch, openai, vllm) are imported only when a backend of their kind is built.
"""

from axolotl_mistake.generation.base import (
    CONTEXT_LENGTH_EXCEEDED,
    Backend,
    BaseBackend,
    Completion,
    GenerationRequest,
    SamplingParams,
    context_error,
    failed,
    request_key,
)
from axolotl_mistake.generation.cache import CachedBackend, CallCache
from axolotl_mistake.generation.config import (
    BACKENDS,
    KINDS,
    BackendConfig,
    LocalBackendConfig,
    backend_classes,
    parse_backend_config,
)
from axolotl_mistake.generation.factory import load_backend

__all__ = [
    "BACKENDS",
    "CONTEXT_LENGTH_EXCEEDED",
    "KINDS",
    "Backend",
    "BackendConfig",
    "BaseBackend",
    "CachedBackend",
    "CallCache",
    "Completion",
    "GenerationRequest",
    "LocalBackendConfig",
    "SamplingParams",
    "backend_classes",
    "context_error",
    "failed",
    "load_backend",
    "parse_backend_config",
    "request_key",
]
