"""The one pydantic schema that selects and configures a generation backend.

Builder, evaluation and `serve` all read a `BackendConfig`; `factory.load_backend` turns it into
a `Backend`. It holds the *name* of the env var with an API key, never a key itself.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BackendConfig(BaseModel):
    """Which model answers, through which engine, and how hard to push it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["transformers", "openai", "vllm"] = Field(
        "transformers",
        description=(
            "Engine: 'transformers' (local HF model, batched; the default), 'openai' (any "
            "OpenAI-compatible HTTP server: vLLM serve, llama.cpp server, Ollama, hosted APIs, "
            "`python -m axolotl_mistake.serve`), or 'vllm' (offline vllm.LLM; needs the "
            "`axolotl-mistake[vllm]` extra)."
        ),
    )
    model: str = Field(
        "embedded",
        description=(
            "Model: a local HF folder or a Hub id (transformers/vllm), or the served model name "
            "(openai). 'embedded' is the bundled SmolLM2-135M-Instruct "
            "(axolotl_mistake.models.ensure_embedded_model())."
        ),
    )
    revision: str | None = Field(
        None,
        description="Hub revision (branch, tag or commit) of `model`; part of every cache key.",
    )
    adapter: str | None = Field(
        None,
        description=(
            "Folder of a LoRA adapter (what `axolotl train` writes) applied on top of `model`; "
            "transformers and vllm only."
        ),
    )
    chat: Literal["auto", "always", "never"] = Field(
        "auto",
        description=(
            "How `messages` requests are rendered (local backends): 'auto' applies the "
            "tokenizer's chat template when it has one, else joins the turns as plain text; "
            "'always' requires a chat template and also wraps raw `prompt` requests as one user "
            "turn; 'never' joins the turns as plain text. The openai backend always sends "
            "`messages` to /v1/chat/completions and lets the server render them."
        ),
    )
    batch_size: int = Field(
        16,
        ge=1,
        description="Prompts per forward batch (transformers) or per engine call chunk (vllm).",
    )
    device: str = Field(
        "auto",
        description="'auto' (cuda if available, else cpu), or a torch device such as 'cuda:1'.",
    )
    dtype: str = Field(
        "auto",
        description=(
            "'auto' (bfloat16 on GPUs that support it, float32 on CPU), or 'float32', "
            "'bfloat16', 'float16'."
        ),
    )
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint including /v1, e.g. 'http://127.0.0.1:8000/v1'.",
    )
    api_key_env: str | None = Field(
        None,
        description=(
            "NAME of the environment variable that holds the API key (sent as a Bearer token). "
            "The key itself is never stored in configs, manifests, logs or reprs."
        ),
    )
    concurrency: int = Field(8, ge=1, description="Requests in flight at once (openai).")
    max_retries: int = Field(
        4,
        ge=0,
        description=(
            "Retries per request on 429, 5xx, timeouts, connection errors and malformed JSON "
            "(openai); after them the completion is returned with `error` set."
        ),
    )
    timeout_s: float = Field(
        60.0, gt=0, description="Per-request HTTP timeout in seconds (openai)."
    )
    retry_backoff_s: float = Field(
        0.5,
        ge=0,
        description=(
            "First retry delay in seconds (openai); doubles each retry, with jitter, capped at "
            "30 s; a server's Retry-After header is honoured when longer."
        ),
    )
    tensor_parallel_size: int = Field(1, ge=1, description="vLLM tensor parallel GPUs per replica.")
    data_parallel_size: int = Field(
        1,
        ge=1,
        description=(
            "vLLM data parallel replicas (passed to vllm.LLM where the installed vLLM supports "
            "it; otherwise run one process per GPU with the builder's --shard i/n)."
        ),
    )
    distributed_executor_backend: str | None = Field(
        None,
        description=(
            "vLLM executor: 'ray' for multi-node, 'mp' for one node, None for vLLM's default."
        ),
    )

    @model_validator(mode="after")
    def _check_kind_fields(self) -> BackendConfig:
        if self.kind == "openai" and not self.base_url:
            raise ValueError(
                "backend kind 'openai' needs `base_url` (e.g. http://127.0.0.1:8000/v1)"
            )
        if self.kind == "openai" and self.adapter:
            raise ValueError(
                "`adapter` is applied locally; with kind 'openai' serve the adapter instead "
                "(python -m axolotl_mistake.serve --adapter DIR) and point base_url at it"
            )
        return self
