"""Answer the prompt sets with the evaluated model, plain or harmless-guided, batched and cached.

Prompts are rendered only through `axolotl_mistake.templates`; every call goes through the
generation `CachedBackend`, so an interrupted run resumes from the cache in its output folder.
A prompt that would not fit the model's context is dropped and counted, never run. Nothing here
judges answers or computes metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from axolotl_mistake.generation.base import (
    CONTEXT_LENGTH_EXCEEDED,
    Backend,
    Completion,
    GenerationRequest,
    SamplingParams,
    context_error,
)
from axolotl_mistake.templates import (
    alpaca_prompt,
    as_user_messages,
    harmless_guided_messages,
    harmless_guided_prompt,
)

if TYPE_CHECKING:
    from axolotl_mistake.evaluate.prompt_sets import EvalItem

Mode = Literal["plain", "harmless_guided"]
PromptFormat = Literal["alpaca", "chat"]

ALPACA_STOP = ("\n### ",)
"""Alpaca-format answers end where the model starts a new section (as in the builder)."""


@dataclass
class Answer:
    """The evaluated model's answer to one item in one mode (`error` set if the call failed)."""

    id: str
    set: str
    mode: str
    question: str
    answer: str
    error: str | None = None
    target: str | None = None
    safe: bool | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DroppedItem:
    """A prompt left out because it would not fit the model's context."""

    id: str
    set: str
    mode: str
    reason: str


def build_request(item: EvalItem, mode: Mode, prompt_format: PromptFormat) -> GenerationRequest:
    """The request for one item: Alpaca text or chat messages, with the hint in guided mode."""
    template = f"eval:{mode}:{prompt_format}"
    if prompt_format == "alpaca":
        if mode == "plain":
            prompt = alpaca_prompt(item.instruction, item.input)
        else:
            prompt = harmless_guided_prompt(item.instruction, item.input)
        return GenerationRequest(prompt=prompt, template=template)
    if mode == "plain":
        messages = as_user_messages(item.question)
    else:
        messages = harmless_guided_messages(item.instruction, item.input)
    return GenerationRequest(messages=tuple(messages), template=template)


def generate_chunks(
    backend: Backend,
    requests: Sequence[GenerationRequest],
    params: SamplingParams,
    batch_size: int,
) -> Iterator[tuple[int, list[Completion]]]:
    """(start index, completions) per chunk of `batch_size` requests, one completion each, so
    callers see progress and the cache fills chunk by chunk."""
    for start in range(0, len(requests), batch_size):
        chunk = requests[start : start + batch_size]
        completions = backend.generate(chunk, params)
        if len(completions) != len(chunk):
            raise RuntimeError(
                f"backend returned {len(completions)} completions for {len(chunk)} requests"
            )
        yield start, completions


def answer_items(
    backend: Backend,
    items: Sequence[EvalItem],
    mode: Mode,
    prompt_format: PromptFormat,
    params: SamplingParams,
    batch_size: int = 16,
    advance: Callable[[int], None] | None = None,
) -> tuple[list[Answer], list[DroppedItem]]:
    """Answers in item order, and the items dropped as too long for the model's context.

    Too-long prompts are found before any call (or from the backend's refusal) and never
    answered; the backend is called in chunks so progress and cache advance.
    """
    answers: list[Answer] = []
    dropped: list[DroppedItem] = []
    runnable: list[tuple[EvalItem, GenerationRequest]] = []
    for item in items:
        request = build_request(item, mode, prompt_format)
        reason = context_error(backend, request, params.max_new_tokens)
        if reason is None:
            runnable.append((item, request))
        else:
            dropped.append(DroppedItem(item.id, item.set, mode, reason))
    if advance is not None and dropped:
        advance(len(dropped))
    requests = [request for _, request in runnable]
    for start, completions in generate_chunks(backend, requests, params, batch_size):
        for (item, _), completion in zip(runnable[start:], completions):
            if completion.extra.get("error_code") == CONTEXT_LENGTH_EXCEEDED:
                dropped.append(DroppedItem(item.id, item.set, mode, completion.error or ""))
                continue
            answers.append(
                Answer(
                    id=item.id,
                    set=item.set,
                    mode=mode,
                    question=item.question,
                    answer=completion.text if completion.ok else "",
                    error=completion.error,
                    target=item.target,
                    safe=item.safe,
                )
            )
        if advance is not None:
            advance(len(completions))
    return answers, dropped
