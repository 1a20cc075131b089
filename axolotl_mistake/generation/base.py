"""The one small interface every generation backend implements, and the helpers all share.

Stages and evaluation call `Backend.generate(requests, params)` (or `generate_iter` to stream);
batching, retries and concurrency live inside the backend. A backend never caches
(`cache.CachedBackend` wraps one) and never raises for one bad request: it returns `failed(...)`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from axolotl_mistake.templates import ChatMessage

CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
"""`Completion.extra["error_code"]` of a request refused because it would not fit the model."""


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
    samples of one prompt; both are part of the cache key. `prefill` (with `messages` only) is
    the opening of the assistant's reply, which the model continues: the completion's text is
    the continuation alone. Only backends that encode prompts themselves (`LocalBackend`) can
    send it; the anchored verdict of a mistral-common analyst goes out so, since its control
    tokens cannot be written as text.
    """

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    template: str = ""
    sample_index: int = 0
    prefill: str | None = None

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("GenerationRequest needs exactly one of `prompt` or `messages`")
        if self.prefill is not None and self.messages is None:
            raise ValueError(
                "a GenerationRequest's `prefill` opens a chat reply: it needs `messages`"
            )

    def payload(self) -> dict:
        """A JSON-able view used for hashing and logging (`prefill` only when set, so every
        other request keeps the cache key it always had)."""
        view = {
            "prompt": self.prompt,
            "messages": [dict(m) for m in self.messages] if self.messages else None,
            "template": self.template,
            "sample_index": self.sample_index,
        }
        if self.prefill is not None:
            view["prefill"] = self.prefill
        return view


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


def failed(
    message: str,
    *,
    code: str | None = None,
    prompt_tokens: int = 0,
    upstream_status: int | None = None,
) -> Completion:
    """The completion of a request that could not be answered: `error` says why, text is empty.

    `code` (e.g. CONTEXT_LENGTH_EXCEEDED) lands in `extra["error_code"]` so callers can count
    failures by cause; `upstream_status` (the HTTP status an endpoint refused the request with)
    in `extra["upstream_status"]`, so a server fronting that endpoint can tell the client's
    mistake from its own.
    """
    extra: dict = {"error_code": code} if code else {}
    if upstream_status is not None:
        extra["upstream_status"] = upstream_status
    return Completion(
        text="", finish_reason="error", prompt_tokens=prompt_tokens, error=message, extra=extra
    )


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

    def generate_iter(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> Iterator[tuple[int, Completion]]:
        """Yield (request index, completion) as each finishes, in any order, once per request."""
        ...


def collect(pairs: Iterable[tuple[int, Completion]], n: int) -> list[Completion]:
    """Order the (index, completion) pairs a backend's generate_iter yields into a list."""
    out: list[Completion | None] = [None] * n
    for i, completion in pairs:
        out[i] = completion
    missing = [i for i, c in enumerate(out) if c is None]
    if missing:
        raise RuntimeError(f"backend yielded no completion for request(s) {missing[:5]}")
    return out  # type: ignore[return-value]


class BaseBackend:
    """Base class of the project's backends: `generate` from `generate_iter`, context limits.

    Subclasses implement `generate_iter`; local ones also set `max_context` and override
    `count_prompt_tokens`, so a prompt that cannot fit is refused before it is run.
    """

    name: str = ""
    model_id: str = ""
    revision: str | None = None
    max_context: int | None = None
    """Most tokens (prompt + new tokens) the model takes; None when the backend cannot know."""

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[Completion]:
        return collect(self.generate_iter(requests, params), len(requests))

    def generate_iter(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> Iterator[tuple[int, Completion]]:
        raise NotImplementedError

    def count_prompt_tokens(self, request: GenerationRequest) -> int | None:
        """Tokens the model would see for `request` (rendered as it will be); None if unknown."""
        return None

    def context_error(self, request: GenerationRequest, max_new_tokens: int) -> str | None:
        """Why `request` cannot run within `max_context`, or None when it fits (or is unknown)."""
        if self.max_context is None:
            return None
        count = self.count_prompt_tokens(request)
        if count is None:
            return None
        return context_error_message(count, max_new_tokens, self.max_context)


def context_error_message(
    prompt_tokens: int, max_new_tokens: int, max_context: int, *, name: str = "max_new_tokens"
) -> str | None:
    """The error for a prompt that does not fit the model's context, or None when it fits.

    `name` is what the caller calls the new-token budget (the HTTP API says max_tokens).
    """
    if prompt_tokens + max_new_tokens <= max_context:
        return None
    return (
        f"prompt is {prompt_tokens} tokens; with {name} {max_new_tokens} that is "
        f"{prompt_tokens + max_new_tokens} > the model's context of {max_context} tokens "
        "(max_context)"
    )


def context_error(backend: Any, request: GenerationRequest, max_new_tokens: int) -> str | None:
    """Check one request against any backend's context limit (None: fits, or cannot tell).

    Works for every `Backend`, wrapped or not; those without a local tokenizer (openai) cannot
    tell and return None (the server answers HTTP 400 instead).
    """
    check = getattr(backend, "context_error", None)
    return check(request, max_new_tokens) if callable(check) else None


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
    # What a model name alone does not pin down: the weights in a local folder (re-merged or
    # retrained in place), the endpoint serving a name. Only present when known, so the keys
    # of backends without one stay what they were.
    identity = getattr(backend, "cache_identity", None)
    if identity:
        material["identity"] = identity
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()
