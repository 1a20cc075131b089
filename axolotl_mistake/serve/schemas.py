"""What the server accepts: its settings and the OpenAI request bodies, as pydantic models.

Every input is bounded here (body bytes, max_tokens, n, prompts per request, stop strings,
message roles) and every refusal names the field and the limit. Token-length checks against the
model's context happen in `app` (they need the backend). It must never touch the model.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from axolotl_mistake.fields import MAX_SEED, count
from axolotl_mistake.generation.base import GenerationRequest, SamplingParams


class ServerConfig(BaseModel):
    """How the server listens and how much one request may ask for (the CLI's server flags)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    host: str = Field("127.0.0.1", description="Interface to bind (127.0.0.1: this machine only).")
    port: int = Field(8000, ge=0, le=65535, description="Port (0 picks a free one).")
    served_model_name: str | None = Field(
        None, description="Model id reported by /v1/models and in responses (default: the model)."
    )
    api_key_env: str | None = Field(
        None,
        description=(
            "NAME of an env var holding a key clients must send as a Bearer token (default: "
            "no key; the server binds 127.0.0.1)."
        ),
    )
    default_max_tokens: int = count(256, "max_tokens of a request that gives none.")
    max_tokens_limit: int = count(
        4096,
        "Largest max_tokens (or max_completion_tokens) a request may ask for; more is HTTP 400. "
        "Prompt tokens + max_tokens must also fit the model's context.",
    )
    max_n: int = count(16, "Largest `n` (samples per prompt) a request may ask for.")
    max_choices: int = count(
        64, "Most completions one request may ask for (prompts in the list x n)."
    )
    max_stop: int = count(16, "Most stop strings one request may give.", minimum=0)
    max_body_bytes: int = count(
        2 * 1024 * 1024,
        "Largest request body in bytes; a larger one is HTTP 413, unread.",
        minimum=1024,
    )
    max_batch_requests: int = count(64, "Most prompts merged into one backend call.")
    batch_wait_ms: float = Field(
        5.0, ge=0, description="How long to wait for concurrent requests to batch together."
    )
    max_pending: int = count(
        512,
        "Most prompts waiting for the model (at least --max-choices); beyond it requests get "
        "HTTP 503.",
    )

    @field_validator("max_pending")
    @classmethod
    def _room_for_one_request(cls, value: int, info: ValidationInfo) -> int:
        """A request of --max-choices completions is allowed, so the queue must hold one: else
        it would get a 503 "retry later" that can never succeed."""
        choices = info.data.get("max_choices")
        if choices is not None and value < choices:
            raise ValueError(
                f"{value} is below --max-choices {choices}: a request the server allows could "
                "never be queued; raise --max-pending or lower --max-choices"
            )
        return value

    @model_validator(mode="after")
    def _default_within_limit(self) -> ServerConfig:
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError(
                f"default_max_tokens {self.default_max_tokens} is above max_tokens_limit "
                f"{self.max_tokens_limit} (--default-max-tokens, --max-tokens-limit)"
            )
        return self


EMPTY_PROMPT = "empty prompt: there are no tokens to condition on"


class RequestError(ValueError):
    """A request the API refuses: HTTP `status` with an OpenAI-style error naming `param`."""

    def __init__(
        self, message: str, *, param: str | None = None, status: int = 400, code: str | None = None
    ):
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code


NO_OP_VALUES: dict[str, tuple[Any, ...]] = {
    "logprobs": (False,),
    "top_logprobs": (0,),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "stream_options": (),
    "response_format": ({"type": "text"},),
    "logit_bias": ({},),
}
"""Fields this server does not implement that clients often send anyway at their default, no-op
value: accepted as null or these values (which change nothing), refused with any other."""

COMPLETION_NO_OP_VALUES: dict[str, tuple[Any, ...]] = {
    "echo": (False,),
    "best_of": (1,),
    "suffix": (),
}
"""The same for fields only /v1/completions takes."""


def no_op_only(value: Any, name: str, table: dict[str, tuple[Any, ...]]) -> Any:
    """`value` when it is null or one of `table[name]`'s no-op values, else a ValueError saying
    what may be sent; `logprobs: 0` (the chosen tokens' logprobs) is not `logprobs: false`."""
    allowed = table[name]
    if value is None or any(
        value == a and isinstance(value, bool) == isinstance(a, bool) for a in allowed
    ):
        return value
    accepted = " or ".join(json.dumps(a) for a in (None, *allowed))
    raise ValueError(
        f"{json.dumps(value)} is not supported by this server; omit {name!r} or send {accepted}"
    )


class _Body(BaseModel):
    """Fields both generation endpoints take; anything else is refused by name."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    model: str | None = None  # the served name (any other is refused with 404), or none
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    stop: str | list[str] | None = None
    stream: bool | None = None
    user: str | None = None
    # not implemented: accepted only at their no-op values (NO_OP_VALUES)
    logprobs: bool | int | None = None
    top_logprobs: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stream_options: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    logit_bias: dict[str, float] | None = None

    @field_validator(*NO_OP_VALUES)
    @classmethod
    def _no_op_only(cls, value: Any, info: ValidationInfo) -> Any:
        return no_op_only(value, info.field_name, NO_OP_VALUES)

    @field_validator("stream")
    @classmethod
    def _no_streaming(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("'stream' is not supported by this server; send stream: false")
        return value

    def sampling(self, cfg: ServerConfig) -> tuple[SamplingParams, int]:
        """(SamplingParams, n) within the server's limits. Temperature defaults to 1 (the API)."""
        max_tokens = self.max_completion_tokens or self.max_tokens or cfg.default_max_tokens
        if max_tokens > cfg.max_tokens_limit:
            param = "max_completion_tokens" if self.max_completion_tokens else "max_tokens"
            raise RequestError(
                f"{param} {max_tokens} is above this server's limit of {cfg.max_tokens_limit} "
                "(--max-tokens-limit)",
                param=param,
            )
        n = self.n or 1
        if n > cfg.max_n:
            raise RequestError(
                f"n {n} is above this server's limit of {cfg.max_n} (--max-n)", param="n"
            )
        stops = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        if len(stops) > cfg.max_stop:
            raise RequestError(
                f"{len(stops)} stop strings; this server takes at most {cfg.max_stop} (--max-stop)",
                param="stop",
            )
        temperature = 1.0 if self.temperature is None else self.temperature
        top_p = 1.0 if self.top_p is None else self.top_p
        if temperature <= 0:  # greedy: seed and top_p are irrelevant; let such requests batch
            seed, top_p = 0, 1.0
        elif self.seed is None:  # as OpenAI and vLLM: an unseeded request draws its own samples
            seed = secrets.randbelow(MAX_SEED + 1)
        else:
            seed = self.seed
        params = SamplingParams(
            max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stops, seed=seed
        )
        return params, n


class CompletionBody(_Body):
    """POST /v1/completions."""

    prompt: str | list[str]
    # not implemented: accepted only at their no-op values (COMPLETION_NO_OP_VALUES)
    echo: bool | None = None
    best_of: int | None = None
    suffix: str | None = None

    @field_validator(*COMPLETION_NO_OP_VALUES)
    @classmethod
    def _completion_no_op_only(cls, value: Any, info: ValidationInfo) -> Any:
        return no_op_only(value, info.field_name, COMPLETION_NO_OP_VALUES)

    @field_validator("prompt")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("an empty list: give at least one prompt")
        if not value:
            raise ValueError(EMPTY_PROMPT)
        return value

    def prompt_params(self) -> list[str]:
        """The field naming each prompt in an error: `prompt`, or `prompt[i]` for a list."""
        if isinstance(self.prompt, str):
            return ["prompt"]
        return [f"prompt[{i}]" for i in range(len(self.prompt))]

    def requests(self, n: int) -> list[GenerationRequest]:
        """One request per prompt and sample; an empty prompt in the list is a 400 naming it
        here, before anything is queued (the model has nothing to condition on)."""
        prompts = [self.prompt] if isinstance(self.prompt, str) else self.prompt
        for param, prompt in zip(self.prompt_params(), prompts):
            if not prompt:
                raise RequestError(f"{param}: {EMPTY_PROMPT}", param=param)
        return [GenerationRequest(prompt=p, sample_index=j) for p in prompts for j in range(n)]


class Message(BaseModel):
    """One chat turn; `content` is a string or a list of text parts."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    role: Literal["system", "user", "assistant"]
    content: str
    name: str | None = None

    @field_validator("role", mode="before")
    @classmethod
    def _developer_is_system(cls, value: Any) -> Any:
        """OpenAI's newer name for the system role."""
        return "system" if value == "developer" else value

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts(cls, value: Any) -> Any:
        if isinstance(value, list):  # [{"type": "text", "text": ...}, ...]
            parts = []
            for part in value:
                if not (
                    isinstance(part, dict)
                    and part.get("type") == "text"
                    and isinstance(part.get("text"), str)
                ):
                    raise ValueError(
                        "only text parts ({'type': 'text', 'text': ...}) are supported"
                    )
                parts.append(part["text"])
            return "".join(parts)
        return value


class ChatBody(_Body):
    """POST /v1/chat/completions."""

    messages: list[Message] = Field(min_length=1)

    def prompt_params(self) -> list[str]:
        """The field naming the (one) prompt in an error."""
        return ["messages"]

    def requests(self, n: int) -> list[GenerationRequest]:
        turns = tuple({"role": m.role, "content": m.content} for m in self.messages)
        return [GenerationRequest(messages=turns, sample_index=j) for j in range(n)]  # type: ignore[arg-type]


def parse_body(model: type[_Body], raw: bytes) -> _Body:
    """Validate a JSON body, or raise RequestError naming the first bad field."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise request_error(exc) from None


_TYPE_TAGS = {"str", "int", "float", "bool", "none", "list", "dict"}


def request_error(exc: ValidationError) -> RequestError:
    """The most specific validation problem as a RequestError with a `messages[0].role`-style
    param (for a union such as `prompt: str | list[str]`, the member the input resembles)."""
    errors = exc.errors(include_url=False)
    err = max(errors, key=lambda e: len(e["loc"]))
    param = ""
    for part in err["loc"]:
        if isinstance(part, int):
            param += f"[{part}]"
        elif "[" in part or part in _TYPE_TAGS:  # a union member's tag, not a field
            continue
        else:
            param += f".{part}" if param else part
    kind, message = err["type"], err["msg"].removeprefix("Value error, ")
    if kind == "json_invalid":
        return RequestError(f"request body is not JSON: {message}")
    if kind in ("model_type", "model_attributes_type") and not param:
        return RequestError("request body must be a JSON object")
    if kind == "extra_forbidden":
        message = "unknown field (not supported by this server)"
    elif kind == "literal_error" and param.endswith(".role"):
        message = (
            f"unknown role {err['input']!r}; use system, user or assistant (or developer, read "
            "as system)"
        )
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    return RequestError(f"{param}: {message}" if param else message, param=param or None)
