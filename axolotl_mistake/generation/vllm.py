"""Offline vLLM backend: `vllm.LLM` with tensor/data parallelism and Ray for multi-node.

vLLM is an optional extra (`pip install axolotl-mistake[vllm]`), imported only when this backend
is built; prompts are rendered exactly like the transformers backend (same chat-template rules)
and each request gets its own seed. It must never import vllm at module import time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from axolotl_mistake.generation.base import Completion, GenerationRequest, SamplingParams
from axolotl_mistake.generation.common import (
    collect,
    render_request,
    request_seed,
    truncate_at_stop,
)


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


class VLLMBackend:
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
        **engine_kwargs: Any,
    ):
        vllm = import_vllm()
        if model == "embedded":
            from axolotl_mistake.models import EMBEDDED_MODEL_ID, ensure_embedded_model

            path, self.model_id, revision = str(ensure_embedded_model()), EMBEDDED_MODEL_ID, None
        else:
            path, self.model_id = model, model
        self.revision = revision
        self.chat = chat
        self.cache_salt = f"chat={chat}"  # part of every cache key
        self.chunk_size = max(1, batch_size)
        kwargs: dict[str, Any] = dict(
            model=path,
            revision=revision,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            **engine_kwargs,
        )
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

            from axolotl_mistake.generation.transformers import adapter_fingerprint

            kwargs["enable_lora"] = True
            self.model_id = f"{self.model_id}+adapter@{adapter_fingerprint(adapter)}"
            self._lora = LoRARequest("adapter", 1, str(adapter))
        self._vllm = vllm
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self._has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if chat == "always" and not self._has_template:
            raise ValueError(f"chat='always' but the tokenizer of {model!r} has no chat template")

    @classmethod
    def from_config(cls, cfg) -> VLLMBackend:
        return cls(
            cfg.model,
            revision=cfg.revision,
            adapter=cfg.adapter,
            chat=cfg.chat,
            dtype=cfg.dtype,
            batch_size=max(cfg.batch_size, 256),
            tensor_parallel_size=cfg.tensor_parallel_size,
            data_parallel_size=cfg.data_parallel_size,
            distributed_executor_backend=cfg.distributed_executor_backend,
        )

    def __repr__(self) -> str:
        return f"VLLMBackend(model_id={self.model_id!r})"

    def render(self, request: GenerationRequest) -> tuple[str, bool]:
        """Same rules as the transformers backend (see BackendConfig.chat)."""
        return render_request(request, self.tokenizer, self.chat)

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[Completion]:
        return collect(self.generate_iter(requests, params), len(requests))

    def generate_iter(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> Iterator[tuple[int, Completion]]:
        """Yield (index, completion) per engine call of `chunk_size` prompts."""
        for start in range(0, len(requests), self.chunk_size):
            chunk = list(enumerate(requests[start : start + self.chunk_size], start))
            yield from self._run(chunk, params)

    def _run(self, chunk, params: SamplingParams) -> Iterator[tuple[int, Completion]]:
        prompts, sampling = [], []
        for _, request in chunk:
            text, templated = self.render(request)
            # token ids, so a chat template's own BOS is not doubled by vLLM's tokenisation
            ids = self.tokenizer(text, add_special_tokens=not templated)["input_ids"]
            prompts.append({"prompt_token_ids": list(ids)})
            sampling.append(
                self._vllm.SamplingParams(
                    n=1,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_tokens=params.max_new_tokens,
                    stop=list(params.stop) or None,
                    seed=request_seed(params.seed, request.sample_index, text),
                )
            )
        try:
            outputs = self.llm.generate(prompts, sampling, use_tqdm=False, lora_request=self._lora)
        except Exception as exc:
            if len(chunk) == 1:
                yield (
                    chunk[0][0],
                    Completion(
                        text="",
                        finish_reason="error",
                        error=f"vLLM failed: {type(exc).__name__}: {exc}",
                    ),
                )
                return
            for item in chunk:
                yield from self._run([item], params)
            return
        for (i, _), result in zip(chunk, outputs):
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


def _engine_arg_names(vllm) -> set[str]:
    try:
        from vllm.engine.arg_utils import EngineArgs
    except ImportError:
        return set()
    return {f.name for f in dataclasses.fields(EngineArgs)}
