"""Offline vLLM backend: `vllm.LLM` with tensor/data parallelism and Ray for multi-node.

vLLM is an optional extra (`pip install axolotl-mistake[vllm]`), imported only when this backend
is built; prompts are rendered exactly like the transformers backend (same chat-template rules)
and each request gets its own seed. It must never import vllm at module import time, and never
hand vLLM a prompt longer than the model's context (it comes back failed instead).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from axolotl_mistake.fields import count
from axolotl_mistake.generation.base import Completion, GenerationRequest, SamplingParams, failed
from axolotl_mistake.generation.common import (
    LocalBackend,
    adapter_fingerprint,
    folder_fingerprint,
    request_seed,
    resolve_model,
    truncate_at_stop,
)
from axolotl_mistake.generation.config import LocalBackendConfig
from axolotl_mistake.mistral_common import unwrap


class VLLMConfig(LocalBackendConfig):
    """kind: vllm -- an offline `vllm.LLM` engine (GPU; the `axolotl-mistake[vllm]` extra)."""

    kind: Literal["vllm"] = "vllm"
    tensor_parallel_size: int = count(1, "vLLM tensor parallel GPUs per replica.")
    data_parallel_size: int = count(
        1,
        "vLLM data parallel replicas (passed to vllm.LLM where the installed vLLM supports it; "
        "otherwise run one process per GPU with the builder's --shard i/n).",
    )
    distributed_executor_backend: str | None = Field(
        None,
        description=(
            "vLLM executor: 'ray' for multi-node, 'mp' for one node, None for vLLM's default."
        ),
    )

    tokenizer_mode: Literal["auto", "hf", "mistral"] = Field(
        "auto",
        description=(
            "vLLM's tokenizer_mode: 'auto' (mistral-common's tokenizer for a repo or folder "
            "holding Mistral's own consolidated*.safetensors and tekken.json or "
            "tokenizer.model.v*, else transformers'), 'hf' (transformers' always), 'mistral' "
            "(mistral-common's always). The builder's dry run and chat rendering read the "
            "tokenizer by the same choice."
        ),
    )

    @model_validator(mode="after")
    def _mistral_mode_has_its_tokenizer(self) -> VLLMConfig:
        """`tokenizer_mode: mistral` on a model without mistral-common's tokenizer file fails
        only when vLLM loads (minutes into a GPU job): refuse it while reading the config, for
        what can be seen here (the embedded model, a local folder); a Hub id is left to vLLM."""
        if self.tokenizer_mode != "mistral":
            return self
        if self.model == "embedded":
            raise ValueError(
                "tokenizer_mode 'mistral' needs mistral-common's tokenizer file (tekken.json or "
                "tokenizer.model.v*), which the embedded model has not: use 'auto' or 'hf'"
            )
        folder = Path(self.model).expanduser()
        if folder.is_dir() and not _has_mistral_tokenizer(p.name for p in folder.rglob("*")):
            raise ValueError(
                f"tokenizer_mode 'mistral' needs mistral-common's tokenizer file (tekken.json or "
                f"tokenizer.model.v*), and the model folder {self.model} holds none: use 'auto' "
                "(vLLM's rule) or 'hf' (transformers' tokenizer)"
            )
        return self

    def load(self) -> VLLMBackend:
        return VLLMBackend(**{**self.backend_kwargs(), "batch_size": max(self.batch_size, 256)})

    def load_tokenizer(self) -> Any:
        """The tokenizer vLLM's engine will pick for `tokenizer_mode` (for 'auto',
        `engine_picks_mistral_common`), without vLLM: transformers' mistral-common class in
        test mode, as vLLM loads it, or `AutoTokenizer`; the model's in both cases (an adapter
        runs with the engine's tokenizer)."""
        path, _, revision = resolve_model(self.model, self.revision)
        mistral = self.tokenizer_mode == "mistral" or (
            self.tokenizer_mode == "auto" and engine_picks_mistral_common(path, revision)
        )
        if not mistral:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(path, revision=revision)
        from mistral_common.protocol.instruct.validator import ValidationMode
        from transformers.tokenization_mistral_common import MistralCommonBackend

        return MistralCommonBackend.from_pretrained(
            path, mode=ValidationMode.test, revision=revision or "main"
        )


MISTRAL_WEIGHTS = "consolidated*.safetensors"
MISTRAL_TOKENIZERS = ("tekken.json", "tokenizer.model.v*")


def engine_picks_mistral_common(model: str, revision: str | None) -> bool:
    """Whether vLLM's `tokenizer_mode: auto` (the backend's default) loads
    mistral-common's tokenizer for `model`: when the repo or folder holds Mistral's own weights
    (`consolidated*.safetensors`) and its tokenizer (`tekken.json` or `tokenizer.model.v*`),
    by vLLM 0.34's `vllm/tokenizers/registry.py`. So it does for Mistral-7B-Instruct-v0.3,
    whose `AutoTokenizer` is transformers' own: a chat rendered with that one's template
    would reach the engine as text it refuses. Offline, a Hub id lists no files (as in vLLM)."""
    if model == "embedded":
        return False
    names = _repo_file_names(model, revision)
    return any(fnmatch.fnmatch(n, MISTRAL_WEIGHTS) for n in names) and _has_mistral_tokenizer(names)


def _has_mistral_tokenizer(names: Iterable[str]) -> bool:
    """Whether any of the file base `names` is mistral-common's tokenizer file."""
    return any(fnmatch.fnmatch(n, pattern) for n in names for pattern in MISTRAL_TOKENIZERS)


def _repo_file_names(model: str, revision: str | None) -> list[str]:
    """The base names of the files in a local folder (recursively) or a Hub repo, as vLLM
    lists them; none when the Hub cannot be asked (offline, no network, unknown repo)."""
    folder = Path(model).expanduser()
    if folder.exists():
        return [p.name for p in folder.rglob("*") if p.is_file()]
    import huggingface_hub

    try:
        files = huggingface_hub.list_repo_files(model, revision=revision)
    except Exception:  # vLLM, too, reads any failure as "no such file"
        return []
    return [Path(f).name for f in files]


def import_vllm():
    """Import vllm or explain how to get it."""
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(
            "backend kind 'vllm' needs vLLM: pip install 'axolotl-mistake[vllm]' "
            f"(on a CUDA machine). Import failed with: {exc}"
        ) from exc
    return vllm


VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
"""The `max_lora_rank` values vLLM accepts (its default, 16, refuses the rank 32 and 64
adapters the GPU recipes train)."""


def lora_engine_args(adapter: str | Path, given: dict[str, Any]) -> dict[str, Any]:
    """Engine arguments that let vLLM load `adapter`: `enable_lora`, and `max_lora_rank` raised
    to the adapter's rank (`r` in its adapter_config.json, rounded up to a value vLLM takes)
    unless the config sets it; an adapter without a readable rank leaves vLLM's default."""
    args: dict[str, Any] = {"enable_lora": True}
    if "max_lora_rank" in given:
        return args
    try:
        rank = int(json.loads((Path(adapter) / "adapter_config.json").read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError):
        return args
    args["max_lora_rank"] = next((r for r in VLLM_LORA_RANKS if r >= rank), rank)
    return args


class VLLMBackend(LocalBackend):
    """Generation through one `vllm.LLM` engine (continuous batching inside vLLM)."""

    name = "vllm"

    def __init__(
        self,
        model: str = "embedded",
        *,
        revision: str | None = None,
        adapter: str | None = None,
        chat: str = "auto",
        dtype: str = "auto",
        batch_size: int = 256,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        distributed_executor_backend: str | None = None,
        max_context: int | None = None,
        tokenizer_mode: str = "auto",
        **engine_kwargs: Any,
    ):
        vllm = import_vllm()
        path, self.model_id, revision = resolve_model(model, revision)
        self.revision = revision
        self.chat = chat
        self.cache_salt = f"chat={chat}"  # part of every cache key
        if tokenizer_mode != "auto":  # another tokenizer, other answers (auto keeps old keys)
            self.cache_salt += f";tokenizer_mode={tokenizer_mode}"
        self.cache_identity = folder_fingerprint(path)  # a local folder's weights
        self.chunk_size = max(1, batch_size)
        kwargs: dict[str, Any] = dict(
            model=path,
            revision=revision,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            tokenizer_mode=tokenizer_mode,
            **engine_kwargs,
        )
        if max_context:
            kwargs.setdefault("max_model_len", max_context)
        if distributed_executor_backend:
            kwargs["distributed_executor_backend"] = distributed_executor_backend
        if data_parallel_size > 1:
            if "data_parallel_size" not in _engine_arg_names(vllm):
                raise ValueError(
                    f"the installed vLLM {getattr(vllm, '__version__', '?')} has no "
                    "data_parallel_size engine argument; run one process per GPU with the "
                    "builder's --shard i/n instead"
                )
            kwargs["data_parallel_size"] = data_parallel_size
        self._lora = None
        if adapter:
            from vllm.lora.request import LoRARequest

            kwargs.update(lora_engine_args(adapter, kwargs))
            self.model_id = f"{self.model_id}+adapter@{adapter_fingerprint(adapter)}"
            self._lora = LoRARequest("adapter", 1, str(adapter))
        self._vllm = vllm
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = unwrap(self.llm.get_tokenizer())  # Mistral: transformers' class
        self.max_context = max_context or _engine_max_len(self.llm)
        self._check_chat(model)

    @classmethod
    def from_config(cls, cfg: VLLMConfig) -> VLLMBackend:
        return cfg.load()

    def __repr__(self) -> str:
        return f"VLLMBackend(model_id={self.model_id!r})"

    def generate_iter(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> Iterator[tuple[int, Completion]]:
        """Yield (index, completion) per engine call of `chunk_size` prompts."""
        ready, refused = self.encode_all(requests, params)
        yield from refused
        for start in range(0, len(ready), self.chunk_size):
            yield from self._run(ready[start : start + self.chunk_size], requests, params)

    def _run(self, chunk, requests, params: SamplingParams) -> Iterator[tuple[int, Completion]]:
        prompts = [{"prompt_token_ids": ids} for _, _, ids in chunk]
        sampling = [
            self._vllm.SamplingParams(
                n=1,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_new_tokens,
                stop=[s for s in params.stop if s] or None,  # "" matches no text
                seed=request_seed(params.seed, requests[i].sample_index, text),
            )
            for i, text, _ in chunk
        ]
        try:
            outputs = self.llm.generate(prompts, sampling, use_tqdm=False, lora_request=self._lora)
        except Exception as exc:
            if len(chunk) == 1:
                yield chunk[0][0], failed(f"vLLM failed: {type(exc).__name__}: {exc}")
                return
            for item in chunk:  # find the one request that breaks the engine call
                yield from self._run([item], requests, params)
            return
        for (i, _, _), result in zip(chunk, outputs):
            best = result.outputs[0]
            text, hit = truncate_at_stop(best.text, params.stop)
            finish = "stop" if hit else (best.finish_reason or "stop")
            yield (
                i,
                Completion(
                    text=text,
                    finish_reason=finish if finish in ("stop", "length") else "stop",
                    prompt_tokens=len(result.prompt_token_ids or []),
                    completion_tokens=len(best.token_ids),
                ),
            )


def _engine_max_len(llm: Any) -> int | None:
    """The engine's max_model_len (prompt + generated tokens), where this vLLM exposes it."""
    for path in ("llm_engine.model_config.max_model_len", "model_config.max_model_len"):
        obj: Any = llm
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, int) and obj > 0:
            return obj
    return None


def _engine_arg_names(vllm) -> set[str]:
    try:
        from vllm.engine.arg_utils import EngineArgs
    except ImportError:
        return set()
    return {f.name for f in dataclasses.fields(EngineArgs)}
