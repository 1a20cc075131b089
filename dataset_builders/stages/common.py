"""Small helpers every stage shares: stable hashing, chunked backend calls with failure
bookkeeping (text normalisation and n-grams: `axolotl_mistake.copying`; refusals and
verdicts: `axolotl_mistake.verdicts`).

Pure functions only: nothing here reads or writes files; model calls go through the backend
the caller passes (always a CachedBackend in a build).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from axolotl_mistake.copying import ngrams, normalise, overlap, words  # noqa: F401 (re-exported)
from axolotl_mistake.generation.base import (
    Backend,
    Completion,
    GenerationRequest,
    SamplingParams,
    request_key,
)


class Progress(Protocol):
    """Called with the number of units just finished (drives a progress bar; may be a no-op).

    `replayed`: they came from the call cache of an earlier, interrupted run, at no cost, so an
    estimate of the time left must not take them for speed (a resumed build said minutes were
    left while hours of calls were)."""

    def __call__(self, done: int, /, *, replayed: bool = False) -> None: ...


def no_progress(_: int, /, *, replayed: bool = False) -> None:
    """Progress callback that does nothing (tests, dry runs)."""


def stable_hash(*parts: object) -> int:
    """A 64-bit hash that is the same in every process and on every machine (unlike hash())."""
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big")


@dataclass
class CallFailure:
    """One model call that failed (not cached; a rerun retries it)."""

    stage: str
    key: str
    item: str
    error: str

    def to_dict(self) -> dict:
        return {"stage": self.stage, "key": self.key, "item": self.item, "error": self.error}


@dataclass
class StageResult:
    """What every stage returns: its output records and named counts for the manifest."""

    records: list
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[CallFailure] = field(default_factory=list)

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount

    def keep(self, records: list) -> StageResult:
        """The stage's output, put in build order (`sort_key`) and counted as kept; returns
        itself, so a stage ends with `return result.keep(out)`."""
        self.records = sorted(records, key=lambda r: r.sort_key)
        self.add("kept", len(self.records))
        return self


def _cache_hits(backend: Backend) -> int:
    """The cache hits a CachedBackend has served so far (0 for any other backend)."""
    stats = getattr(backend, "stats", None)
    return stats.get("hits", 0) if isinstance(stats, dict) else 0


def call_in_chunks(
    backend: Backend,
    requests: Sequence[GenerationRequest],
    params: SamplingParams,
    *,
    chunk_size: int,
    progress: Progress = no_progress,
) -> list[Completion]:
    """All completions, in request order, moving the progress bar as each one finishes.

    Uses the backend's `generate_iter` when it has one (a CachedBackend commits each finished
    call at once, so a crash loses at most the calls in flight); otherwise sends chunks.
    """
    out: list[Completion | None] = [None] * len(requests)
    stream = getattr(backend, "generate_iter", None)
    size = max(1, chunk_size)
    hits = _cache_hits(backend)
    for start in range(0, len(requests), size):
        chunk = list(requests[start : start + size])
        if callable(stream):
            for index, completion in stream(chunk, params):
                out[start + index] = completion
                # a CachedBackend counts a hit right before it yields it
                before, hits = hits, _cache_hits(backend)
                progress(1, replayed=hits > before)
        else:
            got = backend.generate(chunk, params)
            if len(got) != len(chunk):
                raise RuntimeError(
                    f"backend {backend.name} returned {len(got)} completions for {len(chunk)} requests"
                )
            out[start : start + len(chunk)] = got
            progress(len(chunk))
    missing = [i for i, c in enumerate(out) if c is None]
    if missing:
        raise RuntimeError(f"backend {backend.name} gave no completion for request {missing[0]}")
    return out  # type: ignore[return-value]


def sampling_params(cfg: object, seed: int) -> SamplingParams:
    """Decoding settings of a generating stage (mistakes, analyses, revise) from its config:
    `max_new_tokens`, `temperature`, `stop` and, where the stage has it, `top_p`."""
    return SamplingParams(
        max_new_tokens=cfg.max_new_tokens,  # type: ignore[attr-defined]
        temperature=cfg.temperature,  # type: ignore[attr-defined]
        top_p=getattr(cfg, "top_p", 1.0),
        stop=tuple(cfg.stop),  # type: ignore[attr-defined]
        seed=seed,
    )


def k_requests(records, k: int, prompt_format: str, template: str, prompt, messages) -> list:
    """(record, request) pairs, `k` samples per record: `prompt(r)` / `messages(r)` render it."""
    return [
        (r, make_request(prompt_format, prompt(r), messages(r), template=template, sample_index=j))
        for r in records
        for j in range(k)
    ]


def key_of(backend: Backend, request: GenerationRequest, params: SamplingParams) -> str:
    """The cache key of a call (recorded as provenance and in failure reports)."""
    return request_key(backend, request, params)


def make_request(
    prompt_format: str, prompt: str, messages: Sequence, *, template: str, sample_index: int = 0
) -> GenerationRequest:
    """A request in the build's prompt format: raw Alpaca text or chat messages."""
    if prompt_format == "chat":
        return GenerationRequest(
            messages=tuple(dict(m) for m in messages),  # type: ignore[misc]
            template=template,
            sample_index=sample_index,
        )
    return GenerationRequest(prompt=prompt, template=template, sample_index=sample_index)


def model_label(backend: Backend) -> str:
    """How provenance names a model: its id, plus the revision when pinned."""
    rev = getattr(backend, "revision", None)
    return f"{backend.model_id}@{rev}" if rev else backend.model_id


def clip_answer(text: str, max_chars: int | None) -> str:
    """`text` cut to at most `max_chars` characters at a word boundary, ending with '…'."""
    text = text.strip()
    if max_chars is None or len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    if space >= max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"
