"""Axolotl strategy `type: axolotl_mistake.chat_unguided_analysis` — template (c) for chat models.

The unguided analysis body is the user turn and the critique the assistant turn, rendered with
the tokenizer's chat template (or the config's `chat_template`). Only the assistant turn, up to
and including its end-of-turn token, receives loss; never the bad answer in the user turn. A
template that puts no end-of-turn token after the reply (GLM-4) gets the tokenizer's EOS there.
A mistral-common tokenizer (`mistral_common.py`) is split on its own token ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from axolotl_mistake.axolotl_cfg import cfg_get
from axolotl_mistake.mistral_common import chat_ids, is_mistral_common
from axolotl_mistake.strategies_common import (
    MistakeAnalysisTokenizingStrategy,
    build_strategy,
    refuse_train_on_inputs,
)
from axolotl_mistake.templates import unguided_analysis_messages


class ChatTemplateMismatchError(ValueError):
    """The chat template does not render the prompt as a prefix of the full conversation."""


class ChatUnguidedAnalysisStrategy(MistakeAnalysisTokenizingStrategy):
    """(instruction, bad answer) -> critique as one user/assistant exchange."""

    strategy_name = "axolotl_mistake.chat_unguided_analysis"

    def __init__(
        self,
        *args: Any,
        chat_template: str | None = None,
        template_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.chat_template = chat_template
        self.template_kwargs = dict(template_kwargs or {})
        """The config's `chat_template_kwargs` (e.g. `enable_thinking: false`), passed to the
        template as Axolotl's own `chat_template` type passes them, so both render alike."""

    def _render(self, conversations: list[list[dict]], generation_prompt: bool) -> list[str]:
        return [
            self.tokenizer.apply_chat_template(
                conv,
                chat_template=self.chat_template,
                tokenize=False,
                add_generation_prompt=generation_prompt,
                **self.template_kwargs,
            )
            for conv in conversations
        ]

    def token_spans(
        self, rows: Sequence[dict[str, str]]
    ) -> list[tuple[list[int], list[int], list[int]]]:
        """Split each rendered conversation into user prompt / assistant turn / what follows.

        Chat templates wrap the assistant turn themselves (end-of-turn token, trailing newline),
        so the split is done on rendered text: the trained span runs up to and including the
        end-of-turn (EOS) token, anything the template adds after it is context.
        """
        users = [
            [dict(m) for m in unguided_analysis_messages(r["instruction"], r["bad"], r["input"])]
            for r in rows
        ]
        if is_mistral_common(self.tokenizer):
            return self._token_level_spans(users, rows)
        prompts = self._render(users, generation_prompt=True)
        fulls = self._render(
            [u + [{"role": "assistant", "content": r["critique"]}] for u, r in zip(users, rows)],
            generation_prompt=False,
        )
        tails = []
        for prompt, full in zip(prompts, fulls):
            if not full.startswith(prompt):
                raise ChatTemplateMismatchError(
                    "the chat template does not render the user turn + generation prompt as a "
                    "prefix of the full conversation, so the assistant turn cannot be isolated "
                    "for loss masking; set `chat_template` to a standard template"
                )
            tails.append(full[len(prompt) :])
        p_ids = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        t_ids = self.tokenizer(tails, add_special_tokens=False)["input_ids"]
        eos = self.tokenizer.eos_token_id
        spans = []
        for prompt_ids, tail_ids, tail, row in zip(p_ids, t_ids, tails, rows):
            trained, rest = _through_eos(list(tail_ids), eos)
            if eos is not None and _unterminated(tail, row["critique"]):
                trained.append(eos)
            spans.append((list(prompt_ids), trained, rest))
        return spans

    def _token_level_spans(
        self, users: list[list[dict]], rows: Sequence[dict[str, str]]
    ) -> list[tuple[list[int], list[int], list[int]]]:
        """The split for a mistral-common tokenizer (`mistral_common.py`), done on
        token ids: it encodes rendered text's `<s>`, `[INST]` and `</s>` as plain characters,
        so the text split would train a literal "</s>" and never the stop token. Its own chat
        encoding gives the ids (the prompt with the generation prompt, then the whole
        exchange, which mistral-common requires to end on the assistant's turn)."""
        eos = self.tokenizer.eos_token_id
        spans = []
        for user, row in zip(users, rows):
            prompt = chat_ids(self.tokenizer, user, generation_prompt=True)
            exchange = user + [{"role": "assistant", "content": row["critique"]}]
            full = chat_ids(self.tokenizer, exchange, generation_prompt=False)
            if full[: len(prompt)] != prompt or len(full) == len(prompt):
                raise ChatTemplateMismatchError(
                    "the mistral-common tokenizer does not encode the user turn + generation "
                    "prompt as a prefix of the whole exchange, so the assistant turn cannot be "
                    "isolated for loss masking"
                )
            spans.append((prompt, *_through_eos(full[len(prompt) :], eos)))
        return spans


def _through_eos(tail: list[int], eos: int | None) -> tuple[list[int], list[int]]:
    """The assistant turn's ids up to and including its first EOS (trained), and what the
    format adds after it (context); all of it is trained when there is no EOS."""
    end = tail.index(eos) + 1 if eos in tail else len(tail)
    return tail[:end], tail[end:]


def _unterminated(tail: str, critique: str) -> bool:
    """True when the template ends the reply with nothing at all (GLM-4's ends a turn only by
    starting the next one, so a single-turn row has no stop token): the reply is then
    trained with the tokenizer's EOS, or the model learns critiques that never stop."""
    return bool(critique.strip()) and tail.rstrip().endswith(critique.strip())


def _resolve_chat_template(tokenizer: Any, cfg: Any, ds_cfg: Any) -> str | None:
    """The config's `chat_template` (Axolotl's resolver), else the tokenizer's own."""
    if is_mistral_common(tokenizer):  # it encodes chats itself, with no Jinja template
        return None
    if cfg_get(ds_cfg, "chat_template") or cfg_get(cfg, "chat_template"):
        from axolotl.utils.chat_templates import get_chat_template_from_config

        return get_chat_template_from_config(cfg, ds_cfg=ds_cfg, tokenizer=tokenizer)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "type: axolotl_mistake.chat_unguided_analysis needs a chat template: the tokenizer "
            "has none; set `chat_template:` in the config (e.g. chatml)"
        )
    return None


def load(tokenizer: Any, cfg: Any, ds_cfg: Any = None, processor: Any = None):
    """Entry point Axolotl calls for `type: axolotl_mistake.chat_unguided_analysis`."""
    refuse_train_on_inputs(cfg, ChatUnguidedAnalysisStrategy.strategy_name)
    template = _resolve_chat_template(tokenizer, cfg, ds_cfg)
    return build_strategy(
        ChatUnguidedAnalysisStrategy,
        tokenizer,
        cfg,
        ds_cfg,
        chat_template=template,
        template_kwargs=cfg_get(cfg, "chat_template_kwargs") or {},
    )
