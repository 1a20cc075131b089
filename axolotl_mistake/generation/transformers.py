"""Local Hugging Face backend (the default): batched, left-padded, length-sorted `generate()`.

Renders `messages` with the tokenizer's chat template (or plain text), decodes greedily or
samples with a per-request seed, cuts at stop strings and counts tokens. It must never cache
(wrap it in `cache.CachedBackend`), never run a prompt longer than the model's context, and
never let one failing request raise for the whole batch. torch/transformers load on `load()`.

Shared prompts: the k samples of one prompt (a builder's k analyses or guided mistakes) share
every prompt token, and on CPU the prompt pass is most of a batch's time. So a batch runs that
pass once per distinct prompt and copies its key/value cache to the prompt's rows. On CPU the
completions were those of the plain path in every comparison (tests/test_generation_transformers.py;
the efficacy run's three builds, 4,146 calls, byte-identical); a GPU may pick kernels by batch
size and round differently, as padding already can (below).

Sampling guarantee: a request's sample depends only on the model, its rendered prompt and
`SamplingParams` (incl. `seed`) and its `sample_index` -- not on batch size, neighbours or order.
Each row draws from its own `torch.Generator` seeded by `common.request_seed`. (Padding can
change float rounding in the last bits, so on rare near-ties a batched and an unbatched run may
still differ; results within one configuration are exactly repeatable.)
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import Field

from axolotl_mistake.generation.base import Completion, GenerationRequest, SamplingParams, failed
from axolotl_mistake.generation.common import (
    LocalBackend,
    adapter_fingerprint,
    folder_fingerprint,
    model_context_limit,
    request_seed,
    resolve_model,
    truncate_at_stop,
)
from axolotl_mistake.generation.config import LocalBackendConfig
from axolotl_mistake.left_padding import mask_positions
from axolotl_mistake.mistral_common import is_mistral_common

__all__ = [
    "TransformersBackend",
    "TransformersConfig",
    "adapter_fingerprint",
    "resolve_device",
    "resolve_dtype",
]

log = logging.getLogger(__name__)


class TransformersConfig(LocalBackendConfig):
    """kind: transformers -- a local Hugging Face model, batched in this process."""

    kind: Literal["transformers"] = "transformers"
    device: str = Field(
        "auto",
        description="'auto' (cuda if available, else cpu), or a torch device such as 'cuda:1'.",
    )

    def load(self) -> TransformersBackend:
        return TransformersBackend.from_config(self)


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


class TransformersBackend(LocalBackend):
    """Batched generation with a loaded HF causal LM and tokenizer.

    Build it with `TransformersBackend.load(...)` / `TransformersConfig(...).load()`, or pass a
    model and tokenizer you already hold (e.g. a benchmark's random-weight model).
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
        max_context: int | None = None,
        cache_identity: str | None = None,
        share_prefixes: bool = True,
    ):
        self.model = model
        self.share_prefixes = share_prefixes and _keeps_a_dynamic_cache(model)
        # the backend holds a plain (adapter-merged) model, so its signature says what it takes;
        # the scorers hold PEFT wrappers and ask by calling (left_padding.forward_last)
        self._prompt_pass_extra = {"logits_to_keep": 1} if _takes(model, "logits_to_keep") else {}
        self.cache_identity = cache_identity  # the local folder's fingerprint (cache keys)
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
        self._stop_cache: dict[tuple[str, ...], Any] = {}
        self.max_context = max_context or model_context_limit(
            getattr(model, "config", None), tokenizer
        )
        self._check_chat(model_id)

    @property
    def cache_salt(self) -> str:
        """Part of every cache key: chat mode and dtype change the completions."""
        return f"chat={self.chat};dtype={self.model.dtype}"

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def load(cls, model: str = "embedded", **keys: Any) -> TransformersBackend:
        """Load `model` (folder, Hub id or 'embedded') with any other `transformers` key
        (adapter, chat, batch_size, device, dtype, max_context), checked by its config class."""
        return cls.from_config(TransformersConfig(model=model, **keys))

    @classmethod
    def from_config(cls, cfg: TransformersConfig) -> TransformersBackend:
        """Load the model the config names and its optional LoRA adapter (merged)."""
        from transformers import AutoModelForCausalLM

        path, model_id, revision = resolve_model(cfg.model, cfg.revision)
        device = resolve_device(cfg.device)
        torch_dtype = resolve_dtype(cfg.dtype, device)
        adapter = cfg.adapter
        tokenizer = cfg.load_tokenizer()  # the adapter's, where Axolotl saved one
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
            lm,
            tokenizer,
            model_id=model_id,
            revision=revision,
            chat=cfg.chat,
            batch_size=cfg.batch_size,
            max_context=cfg.max_context,
            cache_identity=folder_fingerprint(path),
        )

    def __repr__(self) -> str:
        return (
            f"TransformersBackend(model_id={self.model_id!r}, device={str(self.device)!r}, "
            f"batch_size={self.batch_size}, chat={self.chat!r})"
        )

    # -- generation ---------------------------------------------------------------------------
    def generate_iter(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> Iterator[tuple[int, Completion]]:
        """Yield (index, completion) batch by batch, longest prompts first."""
        encoded, refused = self.encode_all(requests, params)
        yield from refused
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
                yield batch[0][0], failed(f"generation failed: {type(exc).__name__}: {exc}")
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
            from axolotl_mistake.generation.sampling import SeededSampler

            seeds = [
                request_seed(params.seed, requests[i].sample_index, text) for i, text, _ in batch
            ]
            kwargs["logits_processor"] = LogitsProcessorList(
                [SeededSampler(seeds, params.temperature, params.top_p)]
            )
        # stop early; the text is cut at the stop string in _finish anyway. An empty string
        # matches no text (truncate_at_stop skips it) but would end generation at once here.
        stop = tuple(s for s in params.stop if s)
        if stop:
            from axolotl_mistake.generation.stopping import DecodedStopStrings

            criteria = (
                DecodedStopStrings(self.tokenizer, stop, width)
                if is_mistral_common(self.tokenizer)  # HF's criteria cannot read its vocabulary
                else self._stop_criteria(stop)
            )
            kwargs["stopping_criteria"] = StoppingCriteriaList([criteria])
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        with torch.inference_mode():
            cache = self._shared_prompt_cache(input_ids, attention)
            if cache is not None:
                kwargs["past_key_values"] = cache
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=gen_config,
                **kwargs,
            )
        generated = output[:, width:].tolist()
        return [
            self._finish(row_ids, len(ids), params)
            for row_ids, (_, _, ids) in zip(generated, batch)
        ]

    def _shared_prompt_cache(self, input_ids, attention):
        """The batch's key/value cache for all but the last prompt token, computed once per
        distinct prompt and copied to each of its rows; None when no two rows share a prompt.

        `generate()` goes on from it with the last prompt token, as it needs one uncached
        token; positions are counted from the attention mask exactly as `generate()` counts
        them, so a left-padded row sees the positions of the plain path.
        """
        if not self.share_prefixes or input_ids.shape[1] < 2:
            return None
        import torch
        from transformers import DynamicCache

        prompts = [tuple(ids) for ids in input_ids.tolist()]
        distinct = {p: k for k, p in enumerate(dict.fromkeys(prompts))}
        if len(distinct) == len(prompts):
            return None
        first = [prompts.index(p) for p in distinct]
        ids, mask = input_ids[first, :-1], attention[first, :-1]
        cache = DynamicCache(config=self.model.config)
        self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=mask_positions(mask),
            past_key_values=cache,
            use_cache=True,
            **self._prompt_pass_extra,
        )
        rows = torch.tensor([distinct[p] for p in prompts], device=input_ids.device)
        cache.batch_select_indices(rows)  # each row gets its prompt's cache
        return cache

    def _stop_criteria(self, stop: tuple[str, ...]):
        """A StopStringCriteria per stop tuple, built once (it scans the whole vocabulary)."""
        from transformers import StopStringCriteria

        if stop not in self._stop_cache:
            self._stop_cache[stop] = StopStringCriteria(self.tokenizer, list(stop))
        return self._stop_cache[stop]

    def _finish(self, row_ids: list[int], prompt_tokens: int, params: SamplingParams) -> Completion:
        """The row's text and token count. Generation stops a row at EOS or at a stop string
        and pads it while its batch goes on; the count includes a generated EOS, never the
        padding (which is an EOS id too when pad = EOS, as with the embedded model)."""
        ended = set(self.eos_ids) | {self.pad_id}
        cut = next((k for k, t in enumerate(row_ids) if t in ended), None)
        tokens = row_ids if cut is None else row_ids[:cut]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        text, hit = truncate_at_stop(text, params.stop)
        if cut is None:
            finish = "length" if len(row_ids) >= params.max_new_tokens and not hit else "stop"
            count = len(tokens)
        else:
            finish = "stop"
            # a stop string in the text ended the row before this token: it is padding
            count = cut + (1 if row_ids[cut] in self.eos_ids and not hit else 0)
        return Completion(
            text=text, finish_reason=finish, prompt_tokens=prompt_tokens, completion_tokens=count
        )


def _takes(model: Any, name: str) -> bool:
    """Whether the model's forward() has a parameter `name`."""
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _keeps_a_dynamic_cache(model: Any) -> bool:
    """Whether a prompt cache can be handed to this model's `generate()`: a decoder-only model
    with a key/value cache and explicit positions (not a recurrent-state model such as Mamba),
    and full attention in every layer. A sliding-window model is left to the plain path: a
    random-weight Mistral with an 8-token window sampled other tokens from the shared cache,
    so the two paths are not the same computation there (Gemma-2 with a window agreed, and is
    left out by the same rule)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(model, "_is_stateful", False) or _slides(config):
        return False
    return _takes(model, "position_ids") and _takes(model, "past_key_values")


def _slides(config: Any) -> bool:
    """Whether any attention layer of the model has a sliding window."""
    layer_types = getattr(config, "layer_types", None)
    if layer_types:
        return any(kind != "full_attention" for kind in layer_types)
    return getattr(config, "sliding_window", None) is not None
