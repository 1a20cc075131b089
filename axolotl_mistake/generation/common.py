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
from axolotl_mistake.templates import ChatMessage

__all__ = [
    "LocalBackend",
    "adapter_fingerprint",
    "folder_fingerprint",
    "model_context_limit",
    "plain_chat_text",
    "render_request",
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


class LocalBackend(BaseBackend):
    """A backend whose tokenizer is in this process (transformers, vllm): it renders prompts
    with the shared chat rule and refuses, before running anything, what cannot fit."""

    tokenizer: Any
    chat: str = "auto"

    def _check_chat(self, model: str) -> None:
        """Refuse a chat mode this tokenizer cannot honour (at load, not at the first call)."""
        if self.chat not in ("auto", "always", "never"):
            raise ValueError(f"chat must be auto, always or never, not {self.chat!r}")
        if self.chat == "always" and not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"chat='always' but the tokenizer of {model!r} has no chat template")

    def render(self, request: GenerationRequest) -> tuple[str, bool]:
        """The text the model sees, and whether it came from the chat template."""
        return render_request(request, self.tokenizer, self.chat)

    def encode(self, request: GenerationRequest) -> tuple[str, list[int]]:
        """Rendered text and its token ids (a chat template's own BOS is not doubled)."""
        text, templated = self.render(request)
        return text, list(self.tokenizer(text, add_special_tokens=not templated)["input_ids"])

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
