"""The one small interface every generation backend implements (transformers, openai, vllm).

Stages and evaluation call `Backend.generate(requests, params)`; batching, retries and
concurrency live inside the backend. A backend never caches: `cache.CachedBackend` wraps one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from axolotl_mistake.templates import ChatMessage


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings; part of every cache key. `temperature == 0` means greedy."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt: either raw `prompt` text or chat `messages` (rendered by the backend).

    `template` names the template that produced it and `sample_index` tells apart the k
    samples of one prompt; both are part of the cache key.
    """

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    template: str = ""
    sample_index: int = 0

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("GenerationRequest needs exactly one of `prompt` or `messages`")

    def payload(self) -> dict:
        """A JSON-able view used for hashing and logging."""
        return {
            "prompt": self.prompt,
            "messages": [dict(m) for m in self.messages] if self.messages else None,
            "template": self.template,
            "sample_index": self.sample_index,
        }


@dataclass
class Completion:
    """A backend's answer to one request. `error` is set (and `text` empty) when it failed."""

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Backend(Protocol):
    """What stages and evaluation need from a model."""

    name: str
    model_id: str
    revision: str | None

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[Completion]:
        """Return one completion per request, in order. Must not raise for one bad request."""
        ...


def request_key(backend: Backend, request: GenerationRequest, params: SamplingParams) -> str:
    """Stable hash of everything that determines a completion (the cache key)."""
    material = {
        "backend": backend.name,
        "model": backend.model_id,
        "revision": backend.revision,
        # Settings that change the text a backend produces beyond the model itself, such as
        # whether chat messages go through the chat template, or the compute dtype.
        "salt": getattr(backend, "cache_salt", None),
        "request": request.payload(),
        "params": asdict(params),
    }
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()
