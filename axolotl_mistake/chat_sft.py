"""Axolotl strategy `type: axolotl_mistake.chat_sft` — Axolotl's `chat_template` type for SFT
rows, plus the stop token a chat template leaves out.

GLM-4's chat template ends a turn only by starting the next one, so a conversation that ends
with the assistant's reply renders no stop token after it. Axolotl's `chat_template` type then
trains the reply without one (it warns "EOS token ... not found in chat_template") and the model
learns answers that do not stop. This type is Axolotl's own (same keys: `field_messages`,
`roles_to_train`, `train_on_eos`, ...; same tokens, same labels), except that when the rendered
conversation ends on a trained token that is not a stop token, the tokenizer's EOS follows it,
trained unless `train_on_eos: none` (as `chat_unguided_analysis` ends its critiques). Templates
that close their turns (ChatML, Llama 3, Qwen) come out exactly as Axolotl tokenizes them.
Axolotl's warning that the turn terminator "won't be trained" is untrue for this type, so it is
held back while the strategy is built and the type says what it adds instead.
Only the last reply is closed here: in a multi-turn GLM-4 row an earlier reply ends where the
next turn starts, and GLM-4 stops on that token too, so Axolotl trains it when `eot_tokens`
names it (`["<|user|>", "<|observation|>"]`, as the GLM recipe sets; without it Axolotl keeps
it masked). The builder's SFT rows are single-turn.
"""

from __future__ import annotations

import logging
from typing import Any

from axolotl.prompt_strategies.chat_template import (
    ChatTemplateStrategy,
    MistralStrategy,
    StrategyLoader,
)

from axolotl_mistake.strategies_common import IGNORE_INDEX

LOG = logging.getLogger(__name__)

PER_TOKEN = ("input_ids", "labels", "attention_mask")
"""The per-token lists Axolotl's `chat_template` type returns; each gets the EOS's entry."""


class StopTokenError(ValueError):
    """The stop token cannot be added: no EOS, or Axolotl returned a per-token list it does not
    name (appending to three lists and not the fourth would misalign them)."""


class _HoldEosWarning(logging.Filter):
    """Holds back Axolotl's "EOS token ... not found in chat_template; the turn terminator won't
    be trained" while this type's strategy is built: for this type it is not true (the EOS is
    added), so the strategy says what it does instead."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("EOS token") and "not found in chat_template" in message:
            self.seen = True
            return False
        return True


class EndsWithStopToken:
    """Mixin over an Axolotl chat strategy: a row whose last token is trained and is no stop
    token gets the tokenizer's EOS after it (see the module docstring)."""

    tokenizer: Any
    train_on_eos: str | None
    eot_tokens: list[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        axolotl_log = logging.getLogger(ChatTemplateStrategy.__module__)
        held = _HoldEosWarning()
        axolotl_log.addFilter(held)
        try:
            super().__init__(*args, **kwargs)
        finally:
            axolotl_log.removeFilter(held)
        if held.seen:
            LOG.warning(
                "type: axolotl_mistake.chat_sft: the chat template writes no EOS; this type adds "
                "it after each row's last reply (trained unless `train_on_eos: none`). In "
                "multi-turn rows, name the token that starts the next turn in `eot_tokens` "
                '(GLM-4: ["<|user|>", "<|observation|>"]) so earlier replies end on a trained one'
            )
        self.stop_ids = self._stop_ids()
        """EOS and the end-of-turn tokens as Axolotl's constructor validated them: a row already
        ending on one is left; worked out once here, not once per row."""

    def _tokenize_single_prompt(self, prompt: dict) -> dict[str, list[int]]:
        out = super()._tokenize_single_prompt(prompt)  # type: ignore[misc]
        ids, labels = out.get("input_ids"), out.get("labels")
        if not ids or not labels or labels[-1] == IGNORE_INDEX or ids[-1] in self.stop_ids:
            return out
        eos = self.tokenizer.eos_token_id
        if eos is None:
            raise StopTokenError(
                "type: axolotl_mistake.chat_sft: the chat template puts no stop token after the "
                "reply and the tokenizer has no EOS to add; set `special_tokens: {eos_token: ...}`"
            )
        others = [
            k
            for k, v in out.items()
            if k not in PER_TOKEN and isinstance(v, list) and len(v) == len(ids)
        ]
        if others:
            raise StopTokenError(
                f"type: axolotl_mistake.chat_sft: Axolotl returned per-token fields {others} "
                "this strategy does not know how to extend; use `type: chat_template`"
            )
        out = dict(out)
        out["input_ids"] = [*ids, eos]
        out["labels"] = [*labels, IGNORE_INDEX if self.train_on_eos == "none" else eos]
        if "attention_mask" in out:
            out["attention_mask"] = [*out["attention_mask"], 1]
        return out

    def _stop_ids(self) -> set[int]:
        """The ids of EOS and the configured end-of-turn tokens."""
        tokens = [self.tokenizer.eos_token, *(getattr(self, "eot_tokens", None) or [])]
        ids = {self.tokenizer.convert_tokens_to_ids(t) for t in tokens if t}
        return {i for i in ids if isinstance(i, int)}


class ChatSftStrategy(EndsWithStopToken, ChatTemplateStrategy):
    """Axolotl's `chat_template` strategy with the stop token."""


class MistralChatSftStrategy(EndsWithStopToken, MistralStrategy):
    """The same for `tokenizer_use_mistral_common` (Axolotl's Mistral strategy)."""


class ChatSftLoader(StrategyLoader):
    """Axolotl's `chat_template` loader (every key read the same way), building the strategies
    above instead of Axolotl's."""

    def _get_strategy_cls(self, cfg: Any) -> type:
        base = super()._get_strategy_cls(cfg)
        ours = {ChatTemplateStrategy: ChatSftStrategy, MistralStrategy: MistralChatSftStrategy}
        if base in ours:
            return ours[base]
        raise StopTokenError(
            f"type: axolotl_mistake.chat_sft: Axolotl chose {base.__name__}, which this "
            "strategy does not extend; use `type: chat_template`"
        )


if not hasattr(ChatTemplateStrategy, "_tokenize_single_prompt"):  # pragma: no cover
    raise ImportError(
        "axolotl_mistake.chat_sft: this Axolotl's ChatTemplateStrategy has no "
        "_tokenize_single_prompt, so the stop token would silently not be added"
    )

load = ChatSftLoader()
"""Entry point Axolotl calls for `type: axolotl_mistake.chat_sft` (as its own `chat_template`)."""
