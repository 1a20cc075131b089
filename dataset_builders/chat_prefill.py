"""The chat prompt up to the start of the assistant's reply, so a fixed opening (the anchored
verdict sentence) can be appended as raw text and the model continues after it.

Renders with a tokenizer's own chat template (generation prompt on), loaded once from a local
folder or the HF cache. A mistral-common tokenizer has no text form of its control tokens, so
for it no renderer is made: a local analyst gets chat requests whose reply is prefilled
(`GenerationRequest.prefill`, encoded by mistral-common itself), and a served one is refused.
Never calls a model and never writes files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from axolotl_mistake.errors import InputError, first_line
from axolotl_mistake.mistral_common import is_mistral_common

ChatRenderer = Callable[[list], str]


def chat_renderer(tokenizer: Any) -> ChatRenderer:
    """messages -> the rendered chat prompt ending with the assistant's generation prompt.

    A leading BOS that the tokenizer adds again when the text is encoded is dropped, so the
    raw-text prompt tokenizes like the templated one. A mistral-common tokenizer is refused
    (ValueError): it reads no control tokens out of text, so the prompt would reach the model
    with `[INST]` spelled out in plain characters.
    """
    if is_mistral_common(tokenizer):
        raise ValueError(
            "its tokenizer is a mistral-common one, which reads no control tokens out of text"
        )
    bos = getattr(tokenizer, "bos_token", None)
    drop_bos = bool(bos) and _adds_bos(tokenizer)

    def render(messages: list) -> str:
        text = tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
        )
        if drop_bos and text.startswith(bos):
            text = text[len(bos) :]
        return text

    return render


def _adds_bos(tokenizer: Any) -> bool:
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == getattr(tokenizer, "bos_token_id", None)


def load_chat_renderer(
    model: str,
    revision: str | None,
    *,
    file: str | None,
    field: str,
    prefill_ok: bool = False,
    load: Callable[[], Any] | None = None,
) -> ChatRenderer | None:
    """The renderer of `model`'s chat template ('embedded' = the bundled model); an InputError
    naming `field` when the tokenizer cannot be loaded locally or has no chat template.

    `load` loads the tokenizer instead of `AutoTokenizer` (a local analyst's own rule, which
    for vLLM can pick mistral-common where `AutoTokenizer` does not). None for a mistral-common
    tokenizer when `prefill_ok` (the analyst runs in this process and encodes a prefilled reply
    itself); without it such a tokenizer is an InputError."""
    from transformers import AutoTokenizer

    from axolotl_mistake.models import ensure_embedded_model

    where = str(ensure_embedded_model()) if model == "embedded" else model
    try:
        if load is not None:
            tokenizer = load()
        else:
            tokenizer = AutoTokenizer.from_pretrained(where, revision=revision)
    except (OSError, ValueError) as exc:
        first = first_line(exc)
        raise InputError(
            f"anchored chat analyses render the analyst's chat template locally, but the "
            f"tokenizer {model!r} cannot be loaded ({first}); set analyses.chat_template_from "
            "to a local folder with the model's tokenizer",
            file=file,
            field=field,
        ) from None
    if prefill_ok and is_mistral_common(tokenizer):
        return None
    try:
        renderer = chat_renderer(tokenizer)
    except ValueError as exc:  # a mistral-common tokenizer
        raise InputError(
            f"anchored chat analyses send a served analyst the verdict sentence appended to "
            f"{model!r}'s rendered chat prompt as text, and {exc} ([INST] would reach the model "
            "as plain characters); run the analyst locally (kind transformers or vllm) without "
            "analyses.chat_template_from, so that its backend encodes the prefilled reply with "
            "mistral-common, or use prompt_format 'alpaca' for the analyses",
            file=file,
            field=field,
        ) from None
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(
            f"the tokenizer {model!r} has no chat template; use prompt_format 'alpaca' or set "
            "analyses.chat_template_from",
            file=file,
            field=field,
        )
    return renderer
