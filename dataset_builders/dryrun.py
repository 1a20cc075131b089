"""`--dry-run`: instructions, model calls, prompt tokens (real tokenizer) and an upper bound of
generated tokens per stage, without generating or writing anything.

Prompts that depend on generated text (analyses of guided mistakes, revisions) are counted
with that text at its token budget, so their numbers are upper bounds. The stages' own plans
(`planning.walk`) say which requests each would send. Never generates or writes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from axolotl_mistake.errors import InputError, first_line
from axolotl_mistake.generation.common import encode_request
from axolotl_mistake.generation.config import BackendConfig, LocalBackendConfig
from dataset_builders.chat_prefill import ChatRenderer
from dataset_builders.config import BuildConfig
from dataset_builders.planning import walk
from dataset_builders.stages.base import uid_of
from dataset_builders.stages.items import Item


@dataclass
class StagePlan:
    """One stage's numbers in a dry run."""

    stage: str
    instructions: int
    calls: int
    prompt_tokens: int
    max_new_tokens: int
    """Upper bound of generated tokens: calls x the stage's max_new_tokens."""
    exact: bool = True
    """False when prompt_tokens is an upper bound (depends on text not generated yet)."""

    def to_dict(self) -> dict:
        return {
            "stage": self.stage,
            "instructions": self.instructions,
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "max_new_tokens": self.max_new_tokens,
            "prompt_tokens_exact": self.exact,
        }


def load_tokenizer(bcfg: BackendConfig, key: str = "model") -> tuple[Any, str]:
    """The model's real tokenizer (for a local kind, the one its backend will load:
    `LocalBackendConfig.load_tokenizer`); for a served model whose tokenizer is not available
    locally, the embedded model's (noted in the returned label). A local model whose tokenizer
    cannot load is an InputError on `<key>.model`, as the real build reports it."""
    from transformers import AutoTokenizer

    from axolotl_mistake.models import ensure_embedded_model

    if bcfg.model == "embedded":
        return AutoTokenizer.from_pretrained(ensure_embedded_model()), "embedded"
    try:
        if isinstance(bcfg, LocalBackendConfig):  # the one its engine will pick
            return bcfg.load_tokenizer(), bcfg.model
        return AutoTokenizer.from_pretrained(bcfg.model, revision=bcfg.revision), bcfg.model
    except (OSError, ValueError) as exc:
        if bcfg.kind != "openai":
            raise InputError(
                f"cannot load model {bcfg.model!r}: {first_line(exc)}", field=f"{key}.model"
            ) from None
        return (
            AutoTokenizer.from_pretrained(ensure_embedded_model()),
            f"embedded (stand-in: no local tokenizer for {bcfg.model})",
        )


class TokenCounter:
    """Counts prompt tokens of requests as a local backend encodes them (`encode_request`, in
    its default chat mode)."""

    def __init__(self, tokenizer: Any):
        self.tok = tokenizer

    def __call__(self, requests: Sequence) -> int:
        return sum(len(encode_request(r, self.tok, "auto")[1]) for r in requests)


def plan(
    cfg: BuildConfig, items: list[Item], tokenizer: Any, render_chat: ChatRenderer | None = None
) -> list[StagePlan]:
    """Per-call-site plan of the calls the build would make on `items` (the shard's items)."""
    count = TokenCounter(tokenizer)
    planned, unknown = walk(cfg, items, render_chat)
    plans: list[StagePlan] = []
    for step in planned:
        instructions = len({uid_of(r) for r in step.inputs})
        for call in step.plan.calls:
            requests = [r for _, r in call.pairs]
            pending = [unknown(record) for record, _ in call.pairs]
            plans.append(
                StagePlan(
                    call.label,
                    instructions,
                    len(requests),
                    count(requests) + sum(pending),
                    len(requests) * call.max_new_tokens,
                    exact=not any(pending),
                )
            )
    return plans
