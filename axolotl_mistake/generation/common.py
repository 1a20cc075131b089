"""Small helpers every backend shares: per-request seeds, stop-string truncation, plain rendering.

A request's seed depends only on `SamplingParams.seed`, its `sample_index` and its prompt text,
never on batch size, neighbours or order. Must stay pure (no global RNG state, no I/O).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from axolotl_mistake.generation.base import Completion, GenerationRequest
from axolotl_mistake.templates import ChatMessage


def collect(pairs: Iterable[tuple[int, Completion]], n: int) -> list[Completion]:
    """Order the (index, completion) pairs a backend's generate_iter yields into a list."""
    out: list[Completion | None] = [None] * n
    for i, completion in pairs:
        out[i] = completion
    missing = [i for i, c in enumerate(out) if c is None]
    if missing:
        raise RuntimeError(f"backend yielded no completion for request(s) {missing[:5]}")
    return out  # type: ignore[return-value]


def request_seed(seed: int, sample_index: int, prompt: str = "") -> int:
    """A 31-bit seed for one request: different across sample indices and prompts."""
    material = f"{seed}\x1f{sample_index}\x1f{prompt}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(material).digest()[:4], "big") & 0x7FFFFFFF


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before the earliest stop string; return (text, whether one was found)."""
    cut = -1
    for s in stop:
        if not s:
            continue
        pos = text.find(s)
        if pos != -1 and (cut == -1 or pos < cut):
            cut = pos
    if cut == -1:
        return text, False
    return text[:cut], True


def plain_chat_text(messages: Sequence[ChatMessage]) -> str:
    """Render chat turns without a chat template: the contents joined by blank lines.

    Used for base models without a template (chat='never' or 'auto' with no template); the
    project's message bodies are complete instructions, so no role labels are added.
    """
    return "\n\n".join(m["content"] for m in messages)


def render_request(request: GenerationRequest, tokenizer: Any, chat: str) -> tuple[str, bool]:
    """The text a local model sees for `request`, and whether the chat template made it.

    One rule for every local backend (BackendConfig.chat): `messages` go through the tokenizer's
    chat template unless chat='never' or there is none; a raw `prompt` goes through it only
    with chat='always'.
    """
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if request.messages is not None:
        if chat == "never" or not has_template:
            return plain_chat_text(request.messages), False
        messages = [dict(m) for m in request.messages]
    elif chat == "always":
        messages = [{"role": "user", "content": request.prompt or ""}]
    else:
        return request.prompt or "", False
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text, True
