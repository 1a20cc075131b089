"""Generation backends behind one interface (see `base`), plus the call cache.

`load_backend(BackendConfig(...))` builds a backend; wrap it in `CachedBackend(backend,
CallCache(path))` so every finished call is stored and a rerun repeats only missing calls.
Engine modules (transformers, openai, vllm) are imported lazily by the factory.
"""

from axolotl_mistake.generation.base import (
    Backend,
    Completion,
    GenerationRequest,
    SamplingParams,
    request_key,
)
from axolotl_mistake.generation.cache import CachedBackend, CallCache
from axolotl_mistake.generation.config import BackendConfig
from axolotl_mistake.generation.factory import load_backend

__all__ = [
    "Backend",
    "BackendConfig",
    "CachedBackend",
    "CallCache",
    "Completion",
    "GenerationRequest",
    "SamplingParams",
    "load_backend",
    "request_key",
]
