"""The context bound: before any model call, drop (and count) the selected instructions whose
longest prompt, plus the text still to be generated into it and its own generation budget,
would not fit the model that gets it.

Local models are measured with their own tokenizer against their context (`max_context`); an
endpoint (no local tokenizer) is bounded by characters, CHARS_PER_TOKEN per token of
`select.endpoint_context_tokens` when set. Uses the stages' own plans (`planning.walk`), so it
checks exactly the requests the build would send. Never calls a model, never writes files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from axolotl_mistake.errors import InputError
from axolotl_mistake.generation.base import GenerationRequest, context_error
from dataset_builders.chat_prefill import ChatRenderer
from dataset_builders.config import BuildConfig
from dataset_builders.planning import walk
from dataset_builders.stages.base import uid_of
from dataset_builders.stages.common import StageResult
from dataset_builders.stages.items import Item

CHARS_PER_TOKEN = 3
"""Characters one token of an endpoint model is assumed to hold (an estimate: English text
runs at about 4; the endpoint's own check remains the backstop)."""


def _text(request: GenerationRequest) -> str:
    return (
        request.prompt
        if request.prompt is not None
        else "\n".join(m["content"] for m in request.messages or ())
    )


def _turns(request: GenerationRequest) -> tuple | None:
    """A chat request's turns in a hashable form (its messages are dicts)."""
    if request.messages is None:
        return None
    return tuple(tuple(sorted(m.items())) for m in request.messages)


def endpoint_error(request: GenerationRequest, budget: int, context: int | None) -> str | None:
    """Why a prompt for an endpoint is too long for `context` tokens, or None (fits/unknown)."""
    if context is None:
        return None
    room = (context - budget) * CHARS_PER_TOKEN
    length = len(_text(request))
    if length <= room:
        return None
    return (
        f"prompt is {length} characters; with {budget} tokens still to generate, an endpoint "
        f"context of {context} tokens holds about {max(room, 0)} (select.endpoint_context_tokens, "
        f"{CHARS_PER_TOKEN} characters per token)"
    )


def bound_items(
    cfg: BuildConfig,
    items: Sequence[Item],
    backend_of: Any,
    render_chat: ChatRenderer | None = None,
    *,
    config_file: str | None = None,
    whole: bool = True,
) -> StageResult:
    """The items whose every request fits; counts `checked`, `too_long_for_context`, `kept`.

    `backend_of(config)` gives the loaded backend of a stage's backend config. Raises
    InputError when no red-team train item is left of the `whole` selection; one shard of
    several (`whole=False`) goes on empty instead, judged at the union by merge, as a shard
    with no red-team rows is.
    """
    planned, unknown = walk(cfg, items, render_chat)
    too_long: dict[str, str] = {}
    seen: set[tuple] = set()
    for step in planned:
        for call in step.plan.calls:
            if not call.pairs:  # e.g. origin mistakes: no request, and no model was loaded
                continue
            backend = backend_of(call.backend)
            local = getattr(backend, "max_context", None) is not None
            for record, request in call.pairs:
                uid = uid_of(record)
                budget = call.max_new_tokens + unknown(record)
                marker = (uid, call.label, budget, request.prompt, _turns(request))
                if uid in too_long or marker in seen:
                    continue  # the k samples of one prompt are one check
                seen.add(marker)
                why = (
                    context_error(backend, request, budget)
                    if local
                    else endpoint_error(request, budget, cfg.select.endpoint_context_tokens)
                )
                if why:
                    too_long[uid] = f"{call.label}: {why}"
    result = StageResult(records=[it for it in items if it.uid not in too_long])
    redteam = [it for it in items if it.role == "redteam" and it.split == "train"]
    result.add("checked", len(redteam))
    result.add("too_long_for_context", len(too_long))
    result.add("kept", len(redteam) - len(too_long))
    if whole and redteam and len(too_long) == len(redteam):
        example = next(iter(too_long.values()))
        raise InputError(
            f"every selected red-team instruction ({len(redteam)}) is too long for its model's "
            f"context (e.g. {example}); lower select.max_chars, pick shorter sources, lower the "
            "max_new_tokens budgets, or use a model with a longer context",
            file=config_file,
            field="select.max_chars",
        )
    return result
