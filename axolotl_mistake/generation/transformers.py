"""Local Hugging Face backend (the default): batched, left-padded, length-sorted `generate()`.

Renders `messages` with the tokenizer's chat template (or plain text), decodes greedily or
samples with a per-request seed, cuts at stop strings and counts tokens. It must never cache
(wrap it in `cache.CachedBackend`) and never let one failing request raise for the whole batch.

Sampling guarantee: a request's sample depends only on the model, its rendered prompt and
`SamplingParams` (incl. `seed`) and its `sample_index` -- not on batch size, neighbours or order.
Each row draws from its own `torch.Generator` seeded by `common.request_seed`. (Padding can
change float rounding in the last bits, so on rare near-ties a batched and an unbatched run may
still differ; results within one configuration are exactly repeatable.)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from transformers import LogitsProcessor

from axolotl_mistake.generation.base import Completion, GenerationRequest, SamplingParams
from axolotl_mistake.generation.common import (
    collect,
    render_request,
    request_seed,
    truncate_at_stop,
)

log = logging.getLogger(__name__)


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; anything else is returned as is."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str):
    """'auto' -> bfloat16 on GPUs that support it (else float16), float32 on CPU."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return names[dtype]


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
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    if not found:
        raise FileNotFoundError(
            f"{folder}: not a LoRA adapter folder (no adapter_config.json / adapter_model.*)"
        )
    return digest.hexdigest()[:16]


class TransformersBackend:
    """Batched generation with a loaded HF causal LM and tokenizer.

    Build it with `TransformersBackend.load(...)` / `.from_config(cfg)`, or pass a model and
    tokenizer you already hold (e.g. a benchmark's random-weight model).
    """

    name = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str,
        revision: str | None = None,
        chat: str = "auto",
        batch_size: int = 16,
    ):
        if chat not in ("auto", "always", "never"):
            raise ValueError(f"chat must be auto, always or never, not {chat!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.revision = revision
        self.chat = chat
        self.batch_size = max(1, int(batch_size))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.device = next(model.parameters()).device
        eos = getattr(model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids: list[int] = list(eos) if isinstance(eos, (list, tuple)) else [eos]
        self.pad_id: int = tokenizer.pad_token_id
        self._has_template = bool(getattr(tokenizer, "chat_template", None))
        self._stop_cache: dict[tuple[str, ...], Any] = {}
        if chat == "always" and not self._has_template:
            raise ValueError(
                f"chat='always' but the tokenizer of {model_id!r} has no chat template"
            )

    @property
    def cache_salt(self) -> str:
        """Part of every cache key: chat mode and dtype change the completions."""
        return f"chat={self.chat};dtype={self.model.dtype}"

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        model: str = "embedded",
        *,
        revision: str | None = None,
        adapter: str | None = None,
        chat: str = "auto",
        batch_size: int = 16,
        device: str = "auto",
        dtype: str = "auto",
    ) -> TransformersBackend:
        """Load `model` (folder, Hub id or 'embedded') and an optional LoRA adapter (merged)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if model == "embedded":
            from axolotl_mistake.models import EMBEDDED_MODEL_ID, ensure_embedded_model

            path, model_id, revision = str(ensure_embedded_model()), EMBEDDED_MODEL_ID, None
        else:
            path, model_id = model, model
        device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, device)
        tok_source, tok_revision = path, revision
        if adapter and (Path(adapter) / "tokenizer_config.json").is_file():
            tok_source, tok_revision = adapter, None  # axolotl saves the trained tokenizer there
        tokenizer = AutoTokenizer.from_pretrained(tok_source, revision=tok_revision)
        lm = AutoModelForCausalLM.from_pretrained(path, revision=revision, dtype=torch_dtype)
        if adapter:
            from peft import PeftModel

            if len(tokenizer) > lm.get_input_embeddings().weight.shape[0]:
                lm.resize_token_embeddings(len(tokenizer))
            model_id = f"{model_id}+adapter@{adapter_fingerprint(adapter)}"
            lm = PeftModel.from_pretrained(lm, adapter).merge_and_unload()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        if lm.generation_config.pad_token_id is None:
            lm.generation_config.pad_token_id = tokenizer.pad_token_id
        lm.to(device).eval()
        return cls(
            lm, tokenizer, model_id=model_id, revision=revision, chat=chat, batch_size=batch_size
        )

    @classmethod
    def from_config(cls, cfg) -> TransformersBackend:
        return cls.load(
            cfg.model,
            revision=cfg.revision,
            adapter=cfg.adapter,
            chat=cfg.chat,
            batch_size=cfg.batch_size,
            device=cfg.device,
            dtype=cfg.dtype,
        )

    def __repr__(self) -> str:
        return (
            f"TransformersBackend(model_id={self.model_id!r}, device={str(self.device)!r}, "
            f"batch_size={self.batch_size}, chat={self.chat!r})"
        )

    # -- rendering ----------------------------------------------------------------------------
    def render(self, request: GenerationRequest) -> tuple[str, bool]:
        """The text the model sees, and whether it came from the chat template."""
        return render_request(request, self.tokenizer, self.chat)

    def encode(self, request: GenerationRequest) -> tuple[str, list[int]]:
        text, templated = self.render(request)
        ids = self.tokenizer(text, add_special_tokens=not templated)["input_ids"]
        return text, list(ids)

    # -- generation ---------------------------------------------------------------------------
    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[Completion]:
        return collect(self.generate_iter(requests, params), len(requests))

    def generate_iter(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> Iterator[tuple[int, Completion]]:
        """Yield (index, completion) batch by batch, longest prompts first."""
        encoded: list[tuple[int, str, list[int]]] = []
        for i, request in enumerate(requests):
            try:
                text, ids = self.encode(request)
            except Exception as exc:  # e.g. a chat template that rejects the turns
                yield i, _failed(f"could not render the prompt: {type(exc).__name__}: {exc}")
                continue
            if not ids:
                yield i, _failed("empty prompt (no tokens to condition on)")
                continue
            encoded.append((i, text, ids))
        encoded.sort(key=lambda item: -len(item[2]))  # stable: ties keep request order
        for start in range(0, len(encoded), self.batch_size):
            batch = encoded[start : start + self.batch_size]
            yield from self._generate_batch(batch, requests, params)

    def _generate_batch(self, batch, requests, params) -> Iterator[tuple[int, Completion]]:
        try:
            completions = self._run(batch, requests, params)
        except Exception as exc:
            if len(batch) == 1:
                log.warning("generation failed: %s", exc)
                self._free_memory()
                yield batch[0][0], _failed(f"generation failed: {type(exc).__name__}: {exc}")
                return
            log.warning("batch of %d failed (%s); retrying one at a time", len(batch), exc)
            self._free_memory()
            for item in batch:
                yield from self._generate_batch([item], requests, params)
            return
        for (i, _, _), completion in zip(batch, completions):
            yield i, completion

    def _free_memory(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _run(self, batch, requests, params: SamplingParams) -> list[Completion]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        width = max(len(ids) for _, _, ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (_, _, ids) in enumerate(batch):  # LEFT padding: the prompt ends at the edge
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        gen_config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
        )
        kwargs: dict[str, Any] = {}
        if not params.greedy:
            seeds = [
                request_seed(params.seed, requests[i].sample_index, text) for i, text, _ in batch
            ]
            kwargs["logits_processor"] = LogitsProcessorList(
                [SeededSampler(seeds, params.temperature, params.top_p)]
            )
        if params.stop:  # stop early; the text is cut at the stop string in _finish anyway
            kwargs["stopping_criteria"] = StoppingCriteriaList([self._stop_criteria(params.stop)])
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                generation_config=gen_config,
                **kwargs,
            )
        generated = output[:, width:].tolist()
        return [
            self._finish(row_ids, len(ids), params)
            for row_ids, (_, _, ids) in zip(generated, batch)
        ]

    def _stop_criteria(self, stop: tuple[str, ...]):
        """A StopStringCriteria per stop tuple, built once (it scans the whole vocabulary)."""
        from transformers import StopStringCriteria

        if stop not in self._stop_cache:
            self._stop_cache[stop] = StopStringCriteria(self.tokenizer, list(stop))
        return self._stop_cache[stop]

    def _finish(self, row_ids: list[int], prompt_tokens: int, params: SamplingParams) -> Completion:
        ended = set(self.eos_ids) | {self.pad_id}
        cut = next((k for k, t in enumerate(row_ids) if t in ended), None)
        if cut is None:
            tokens = row_ids
            finish = "length" if len(row_ids) >= params.max_new_tokens else "stop"
            count = len(tokens)
        else:
            tokens = row_ids[:cut]
            finish = "stop"
            count = cut + (1 if row_ids[cut] in self.eos_ids else 0)
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        text, hit = truncate_at_stop(text, params.stop)
        if hit:
            finish = "stop"
        return Completion(
            text=text, finish_reason=finish, prompt_tokens=prompt_tokens, completion_tokens=count
        )


class SeededSampler(LogitsProcessor):
    """A logits processor that samples each row with its own generator (temperature, top-p).

    Returns scores that are 0 at the drawn token and -inf elsewhere, so greedy decoding in
    `generate()` picks exactly that token; rows never share random state.
    """

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float):
        self.seeds = list(seeds)
        self.temperature = temperature
        self.top_p = top_p
        self._generators: list[Any] | None = None

    def __call__(self, input_ids, scores):
        import torch

        if self._generators is None:
            self._generators = [
                torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds
            ]
        probs = (scores.float() / self.temperature).softmax(dim=-1)
        order = None
        if self.top_p < 1.0:  # nucleus: keep the most likely tokens until their mass >= top_p
            vocab = probs.shape[-1]
            top, order = probs.topk(min(vocab, 1024), dim=-1)  # cheap when the nucleus is small
            if top.shape[-1] < vocab and not bool((top.sum(dim=-1) >= self.top_p).all()):
                top, order = probs.sort(dim=-1, descending=True)
            before = top.cumsum(dim=-1) - top
            probs = top * (before < self.top_p)
        cdf = probs.cumsum(dim=-1)
        draws = torch.stack(
            [torch.rand((), generator=g, device=scores.device) for g in self._generators]
        )
        targets = (draws * cdf[:, -1]).unsqueeze(1)  # inverse-CDF sampling, one draw per row
        chosen = torch.searchsorted(cdf, targets, right=True).clamp_(max=cdf.shape[1] - 1)
        if order is not None:
            chosen = order.gather(1, chosen)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen, 0.0)
        return out


def _failed(message: str) -> Completion:
    return Completion(text="", finish_reason="error", error=message)
