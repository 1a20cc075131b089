"""Helpers the backends share: per-request seeds, stop strings, prompt rendering, model limits.

A request's seed depends only on `SamplingParams.seed`, its `sample_index` and its prompt text,
never on batch size, neighbours or order. No global RNG state, and no engine imports at import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from axolotl_mistake.fileio import hash_file
from axolotl_mistake.generation.base import (
    CONTEXT_LENGTH_EXCEEDED,
    BaseBackend,
    Completion,
    GenerationRequest,
    SamplingParams,
    context_error_message,
    failed,
)
from axolotl_mistake.mistral_common import chat_ids, is_mistral_common, reply_opening_ids
from axolotl_mistake.templates import ChatMessage

__all__ = [
    "LocalBackend",
    "adapter_fingerprint",
    "encode_request",
    "folder_fingerprint",
    "has_chat_template",
    "model_context_limit",
    "plain_chat_text",
    "render_request",
    "request_messages",
    "request_seed",
    "resolve_model",
    "truncate_at_stop",
]

_NO_LIMIT = 10**8
"""Tokenizers without a known limit report a huge model_max_length (1e30); ignore those."""


def resolve_model(model: str, revision: str | None) -> tuple[str, str, str | None]:
    """(load path, model id for cache keys, revision) of a local backend's `model` key.

    'embedded' is the bundled SmolLM2 folder (converted once); anything else is used as given.
    """
    if model == "embedded":
        from axolotl_mistake.models import EMBEDDED_MODEL_ID, ensure_embedded_model

        return str(ensure_embedded_model()), EMBEDDED_MODEL_ID, None
    if looks_like_path(model) and not Path(model).expanduser().exists():
        raise FileNotFoundError(
            f"model folder not found: {model} (give an existing folder, a Hub id such as "
            "'org/name', or 'embedded')"
        )
    return model, model, revision


def looks_like_path(model: str) -> bool:
    """True for a `model` value that can only be a local path, never a Hub id ('org/name')."""
    return (
        model.startswith(("/", "./", "../", "~"))
        or model.endswith("/")
        or model.count("/") > 1
        or "\\" in model
    )


def adapter_fingerprint(folder: str | Path) -> str:
    """A short content hash of a LoRA adapter folder (config + weights), for cache keys."""
    folder = Path(folder)
    digest = hashlib.sha256()
    names = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
    found = False
    for name in names:
        path = folder / name
        if path.is_file():
            found = True
            digest.update(name.encode())
            hash_file(digest, path)
    if not found:
        raise FileNotFoundError(
            f"{folder}: not a LoRA adapter folder (no adapter_config.json / adapter_model.*)"
        )
    return digest.hexdigest()[:16]


def folder_fingerprint(path: str | Path) -> str | None:
    """A short fingerprint of a local model folder's files (names, sizes, modification times),
    for cache keys: weights saved again into the same folder (a re-merge, a retrained model)
    change it, so their completions are never answered from the old weights' cache. Cheap
    (no reading of the weights); None for a Hub id."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        stat = file.stat()
        digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "files@" + digest.hexdigest()[:16]


def model_context_limit(model_config: Any, tokenizer: Any = None) -> int | None:
    """The most tokens a model takes: its position limit, capped by the tokenizer's, if known."""
    limits = []
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(model_config, attr, None)
        if isinstance(value, int) and 0 < value < _NO_LIMIT:
            limits.append(value)
            break
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < _NO_LIMIT:
        limits.append(value)
    return min(limits) if limits else None


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


def has_chat_template(tokenizer: Any) -> bool:
    """Whether `tokenizer` can render chat turns: a Jinja template, or mistral-common's own."""
    return bool(getattr(tokenizer, "chat_template", None)) or is_mistral_common(tokenizer)


def request_messages(request: GenerationRequest, tokenizer: Any, chat: str) -> list[dict] | None:
    """The turns `request` puts through the tokenizer's chat template, or None when the model
    sees plain text. One rule for every local backend (BackendConfig.chat): `messages` go
    through the template unless chat='never' or there is none; a raw `prompt` goes through it
    only with chat='always', as one user turn. A mistral-common tokenizer's chat format is
    built in (it may have no Jinja `chat_template`)."""
    has_template = has_chat_template(tokenizer)
    if request.messages is not None:
        if chat == "never" or not has_template:
            return None
        return [dict(m) for m in request.messages]
    if chat == "always":
        return [{"role": "user", "content": request.prompt or ""}]
    return None


def render_request(request: GenerationRequest, tokenizer: Any, chat: str) -> tuple[str, bool]:
    """The text a local model sees for `request`, and whether the chat template made it.

    A mistral-common tokenizer's text is only a view (`encode_request` gives its real ids)."""
    return _render(request, request_messages(request, tokenizer, chat), tokenizer)


def _render(
    request: GenerationRequest, messages: list[dict] | None, tokenizer: Any
) -> tuple[str, bool]:
    """`render_request` once `request_messages` has said which turns the template renders."""
    opening = request.prefill or ""
    if messages is None:
        if request.messages is not None:
            return plain_chat_text(request.messages) + opening, False
        return request.prompt or "", False
    if is_mistral_common(tokenizer):
        return tokenizer.decode(_mistral_ids(request, messages, tokenizer)), True
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + opening, True


def _mistral_ids(request: GenerationRequest, messages: list[dict], tokenizer: Any) -> list[int]:
    """mistral-common's ids of the turns up to the assistant's reply (or into it, prefilled)."""
    if request.prefill is not None:
        return reply_opening_ids(tokenizer, messages, request.prefill)
    return chat_ids(tokenizer, messages, generation_prompt=True)


def encode_request(request: GenerationRequest, tokenizer: Any, chat: str) -> tuple[str, list[int]]:
    """The text a local model sees for `request` and its token ids: the one step from a request
    to ids, for every tokenizer.

    A chat template's text carries its own BOS, so it is not added again. A mistral-common
    tokenizer reads no control tokens out of text (`[INST]` would become plain characters), so
    its chat turns are encoded by mistral-common itself, and a raw prompt that spells out one
    of its special tokens is refused rather than sent as characters."""
    messages = request_messages(request, tokenizer, chat)
    mistral = is_mistral_common(tokenizer)
    if messages is not None and mistral:
        ids = _mistral_ids(request, messages, tokenizer)
        return tokenizer.decode(ids), ids
    text, templated = _render(request, messages, tokenizer)
    if mistral:
        spelled = [t for t in tokenizer.all_special_tokens if t and t in text]
        if spelled:
            raise ValueError(
                f"the prompt spells out special tokens {spelled[:3]} as text, and a "
                "mistral-common tokenizer reads them as plain characters; send chat messages "
                "instead of pre-rendered chat text"
            )
    return text, list(tokenizer(text, add_special_tokens=not templated)["input_ids"])


class LocalBackend(BaseBackend):
    """A backend whose tokenizer is in this process (transformers, vllm): it renders prompts
    with the shared chat rule and refuses, before running anything, what cannot fit."""

    tokenizer: Any
    chat: str = "auto"

    def _check_chat(self, model: str) -> None:
        """Refuse a chat mode this tokenizer cannot honour (at load, not at the first call)."""
        if self.chat not in ("auto", "always", "never"):
            raise ValueError(f"chat must be auto, always or never, not {self.chat!r}")
        if self.chat == "always" and not has_chat_template(self.tokenizer):
            raise ValueError(f"chat='always' but the tokenizer of {model!r} has no chat template")

    def render(self, request: GenerationRequest) -> tuple[str, bool]:
        """The text the model sees, and whether it came from the chat template."""
        return render_request(request, self.tokenizer, self.chat)

    def encode(self, request: GenerationRequest) -> tuple[str, list[int]]:
        """Rendered text and its token ids (`encode_request`)."""
        return encode_request(request, self.tokenizer, self.chat)

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        return len(self.encode(request)[1])

    def encode_all(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> tuple[list[tuple[int, str, list[int]]], list[tuple[int, Completion]]]:
        """(index, text, ids) of the requests that can run, and failures for those that cannot:
        a template that rejects the turns, an empty prompt, a prompt beyond `max_context`."""
        ready: list[tuple[int, str, list[int]]] = []
        refused: list[tuple[int, Completion]] = []
        for i, request in enumerate(requests):
            try:
                text, ids = self.encode(request)
            except Exception as exc:  # e.g. a chat template that rejects the turns
                refused.append(
                    (i, failed(f"could not render the prompt: {type(exc).__name__}: {exc}"))
                )
                continue
            if not ids:
                refused.append((i, failed("empty prompt (no tokens to condition on)")))
                continue
            too_long = self.max_context and context_error_message(
                len(ids), params.max_new_tokens, self.max_context
            )
            if too_long:
                refused.append(
                    (i, failed(too_long, code=CONTEXT_LENGTH_EXCEEDED, prompt_tokens=len(ids)))
                )
                continue
            ready.append((i, text, ids))
        return ready, refused
