"""Tokenizers of mistral-common: chat rows as token ids.

Axolotl builds one with `tokenizer_use_mistral_common: true` (its `HFMistralTokenizer`), and
under transformers 5 `AutoTokenizer` (so Axolotl's loader too) returns transformers' own
`MistralCommonBackend` for a Mistral repo that ships `tekken.json`. Neither reads control
tokens out of text: a conversation rendered to text and tokenized again turns `<s>`, `[INST]`
and `</s>` into plain characters, so a model trained on it would learn to print "</s>" and
never to stop. Chat rows for such a tokenizer are encoded by mistral-common itself.
"""

from __future__ import annotations

import sys
from typing import Any

BACKEND_NAMES = ("MistralCommonBackend", "MistralCommonTokenizer")
"""transformers' wrapper class: its name in transformers 5, then its name before."""
VLLM_HOLDS_TRANSFORMERS = "0.11.1"
"""The first vLLM whose `MistralTokenizer` keeps transformers' class as `transformers_tokenizer`
(read from the wheels on PyPI: 0.8.0 and 0.11.0 do not; 0.11.1, 0.11.2, 0.12.0, 0.13.0, 0.14.0,
0.18.0, 0.22.0, 0.26.0, 0.30.0 and 0.34.0 do). The `vllm` extra allows older releases, which
serve every other model."""


def is_mistral_common(tokenizer: Any) -> bool:
    """Whether `tokenizer` is a mistral-common one (Axolotl's wrapper subclasses transformers').

    Only asks when transformers' module is already imported: an instance of its class cannot
    exist otherwise, and importing it costs about 1.4 s, which every other tokenizer's
    generation, evaluation and training would pay for nothing."""
    module = sys.modules.get("transformers.tokenization_mistral_common")
    if module is None:
        return False
    classes = tuple(getattr(module, name) for name in BACKEND_NAMES if hasattr(module, name))
    return bool(classes) and isinstance(tokenizer, classes)


def unwrap(tokenizer: Any) -> Any:
    """The transformers mistral-common tokenizer inside vLLM's `MistralTokenizer` (what
    `LLM.get_tokenizer()` returns for a Mistral model; it keeps transformers' class as
    `transformers_tokenizer` and has no `chat_template`), else `tokenizer` itself, so the
    project's one encoding step sees what it is. A vLLM Mistral tokenizer without that class
    inside is refused (ValueError): read as it is, its chats would go out as plain text."""
    inner = getattr(tokenizer, "transformers_tokenizer", None)
    if inner is not None and is_mistral_common(inner):
        return inner
    cls = type(tokenizer)
    vllms = cls.__name__ == "MistralTokenizer" and cls.__module__.startswith("vllm.")
    if vllms or getattr(tokenizer, "IS_MISTRAL_TOKENIZER", False):  # vLLM's, in another shape
        raise ValueError(
            "this vLLM's Mistral tokenizer does not hold transformers' mistral-common class, so "
            "the project cannot encode chats for it (they would go out as plain text); use "
            f"vLLM {VLLM_HOLDS_TRANSFORMERS} or later, whose MistralTokenizer holds it as "
            "`transformers_tokenizer`"
        )
    return tokenizer


def chat_ids(tokenizer: Any, messages: list[dict], generation_prompt: bool) -> list[int]:
    """The ids mistral-common encodes `messages` to: up to the assistant's generation prompt,
    or (`generation_prompt` false) a whole exchange ending on the assistant's reply and its EOS.

    mistral-common validates by mode: Axolotl's wrapper runs in fine-tuning mode, where an
    exchange must end on the assistant's turn and is closed with EOS; transformers' own class
    (what `AutoTokenizer` returns for a Mistral repo with `tekken.json`) runs in test mode, which
    refuses that and encodes the reply only as a message to continue, so the EOS is added here
    (the same ids: checked in tests/test_mistral_common.py)."""
    if generation_prompt:
        return _ids(
            tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        )
    if _mode(tokenizer) == "finetuning":
        return _ids(tokenizer.apply_chat_template(messages, tokenize=True))
    ids = _ids(tokenizer.apply_chat_template(messages, tokenize=True, continue_final_message=True))
    return [*ids, int(tokenizer.eos_token_id)]


def reply_opening_ids(tokenizer: Any, messages: list[dict], opening: str) -> list[int]:
    """The ids of `messages` and then an assistant reply that begins with `opening` and is left
    open (no EOS) for the model to continue: mistral-common's own encoding of a prefilled reply,
    since its control tokens cannot be written into the text. Fine-tuning mode refuses to
    continue a reply, so there the closed exchange is encoded and its EOS dropped (the same
    ids: checked in tests/test_mistral_common.py)."""
    turns = [*messages, {"role": "assistant", "content": opening}]
    if _mode(tokenizer) == "finetuning":
        return chat_ids(tokenizer, turns, generation_prompt=False)[:-1]
    return _ids(tokenizer.apply_chat_template(turns, tokenize=True, continue_final_message=True))


def _mode(tokenizer: Any) -> str:
    mode = getattr(tokenizer, "mode", None)
    return str(getattr(mode, "value", mode))


def _ids(encoded: Any) -> list[int]:
    """Token ids from `apply_chat_template(tokenize=True)`: a list, or a BatchEncoding."""
    ids = encoded if isinstance(encoded, list) else encoded["input_ids"]
    return [int(i) for i in ids]
