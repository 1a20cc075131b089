"""Answer the prompt sets with the evaluated model, plain or harmless-guided, batched and cached.

Prompts are rendered only through `axolotl_mistake.templates`; every call goes through the
generation `CachedBackend`, so an interrupted run resumes from the cache in its output folder.
Nothing here judges answers or computes metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from axolotl_mistake.evaluate.prompt_sets import EvalItem
from axolotl_mistake.generation.base import Backend, GenerationRequest, SamplingParams
from axolotl_mistake.templates import (
    alpaca_prompt,
    as_user_messages,
    harmless_guided_messages,
    harmless_guided_prompt,
)

Mode = Literal["plain", "harmless_guided"]
PromptFormat = Literal["alpaca", "chat"]


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


def answer_items(
    backend: Backend,
    items: Sequence[EvalItem],
    mode: Mode,
    prompt_format: PromptFormat,
    params: SamplingParams,
    batch_size: int = 16,
    advance: Callable[[int], None] | None = None,
) -> list[Answer]:
    """Answers in item order; the backend is called in chunks so progress and cache advance."""
    answers: list[Answer] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        completions = backend.generate(
            [build_request(it, mode, prompt_format) for it in chunk], params
        )
        if len(completions) != len(chunk):
            raise RuntimeError(
                f"backend returned {len(completions)} completions for {len(chunk)} requests"
            )
        for item, completion in zip(chunk, completions):
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
            advance(len(chunk))
    return answers
