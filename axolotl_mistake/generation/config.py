"""Backend configs: one pydantic class per kind, chosen by `kind`, and the kind registry.

`BackendConfig` is the base of every kind's config; used as a field type, called, or through
`parse_backend_config`, it validates the union of the registered kinds (no `kind`: transformers).
Configs hold the *name* of an env var with an API key, never a key; this module imports no engine.

Adding a backend is one new module (a config class with `kind: Literal["name"]` and a `load()`
that builds the backend) plus one line in `BACKENDS`.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    WrapValidator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError, core_schema

from axolotl_mistake.fields import count
from axolotl_mistake.registry import registered_classes

if TYPE_CHECKING:
    from axolotl_mistake.generation.base import Backend

BACKENDS: dict[str, str] = {
    "transformers": "axolotl_mistake.generation.transformers:TransformersConfig",
    "openai": "axolotl_mistake.generation.openai:OpenAIConfig",
    "vllm": "axolotl_mistake.generation.vllm:VLLMConfig",
}
"""kind -> "module:ConfigClass"; modules are imported the first time a config is validated."""

DEFAULT_KIND = "transformers"
KINDS = tuple(BACKENDS)
"""The registered kinds, in registration order."""


class BackendConfig(BaseModel):
    """Which model answers, through which engine (`kind`), and how hard to push it.

    The keys every kind takes; each kind's class adds its own. `BackendConfig(**keys)` returns
    the instance of the class `kind` names; an unknown key for that kind is an error naming it.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: str = Field(
        DEFAULT_KIND,
        description=(
            "Engine: 'transformers' (local HF model, batched; the default), 'openai' (any "
            "OpenAI-compatible HTTP server: vLLM serve, llama.cpp server, Ollama, hosted APIs, "
            "`python -m axolotl_mistake.serve`), or 'vllm' (offline vllm.LLM; needs the "
            "`axolotl-mistake[vllm]` extra). Each kind takes its own keys: those only some "
            "kinds take are marked [kind: ...]."
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
    batch_size: int = count(
        16,
        "Prompts per forward batch (transformers), per engine call chunk (vllm), or per "
        "backend call of the evaluation (openai, where `concurrency` sets what is in flight).",
    )

    def __new__(cls, *args: Any, **data: Any) -> BackendConfig:
        target = cls
        if cls is BackendConfig:  # dispatch on `kind` to the registered class
            kind = data.get("kind", DEFAULT_KIND)
            if not isinstance(kind, str) or kind not in BACKENDS:
                _adapter().validate_python(data)  # raises the 'unknown backend kind' error
            target = backend_classes()[kind]
        return super().__new__(target)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
        if cls is BackendConfig:
            return _adapter().validate_python(obj, **kwargs)
        return super().model_validate(obj, **kwargs)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        # The base itself is built before any kind exists; as a field type it is the union.
        if "BackendConfig" not in globals() or cls is not BackendConfig:
            return handler(source)
        return handler.generate_schema(_root_type())

    @classmethod
    def config_fields(cls) -> dict[str, FieldInfo]:
        """The keys `--help` and command-line flags know for a backend block: every kind's,
        each marked with the kinds that take it (`backend_fields`); a narrower class, its own
        fields and those of the kinds below it."""
        if cls is BackendConfig:
            return backend_fields()
        out = dict(cls.model_fields)
        for kind_cls in backend_classes().values():
            if issubclass(kind_cls, cls):
                for name, info in kind_cls.model_fields.items():
                    out.setdefault(name, info)
        return out

    def load(self) -> Backend:
        """Build the backend this config describes (loading weights for local kinds)."""
        raise NotImplementedError(f"backend kind {self.kind!r} has no load()")

    def backend_kwargs(self, exclude: Collection[str] = ()) -> dict[str, Any]:
        """Every key but `kind` (and `exclude`) as keyword arguments of the backend: a kind's
        constructor takes its keys by their names, so a new key reaches it with no more code."""
        return {
            name: getattr(self, name)
            for name in type(self).model_fields
            if name != "kind" and name not in exclude
        }


class LocalBackendConfig(BackendConfig):
    """Keys of the kinds that run the model in this process (transformers, vllm)."""

    adapter: str | None = Field(
        None,
        description=(
            "Folder of a LoRA adapter (what `axolotl train` writes) applied on top of `model`."
        ),
    )
    chat: Literal["auto", "always", "never"] = Field(
        "auto",
        description=(
            "How `messages` requests are rendered: 'auto' applies the tokenizer's chat template "
            "when it has one, else joins the turns as plain text; 'always' requires a chat "
            "template and also wraps raw `prompt` requests as one user turn; 'never' joins the "
            "turns as plain text. (The openai kind sends `messages` to /v1/chat/completions and "
            "lets the server render them.)"
        ),
    )
    dtype: str = Field(
        "auto",
        description=(
            "'auto' (bfloat16 on GPUs that support it, float32 on CPU), or 'float32', "
            "'bfloat16', 'float16'."
        ),
    )
    max_context: int | None = Field(
        None,
        ge=1,
        description=(
            "Most tokens (prompt + max new tokens) one request may take; a longer request comes "
            "back failed ('context_length_exceeded') instead of being run. Default: the "
            "model's own limit (max_position_embeddings / tokenizer model_max_length); set it "
            "lower to bound the cost of one request."
        ),
    )

    local: ClassVar[bool] = True

    def load_tokenizer(self) -> Any:
        """The tokenizer this backend encodes with, loaded without the weights (the backend
        itself, the dry run's counts and the builder's choice of how to send a prefilled reply
        all take it from here): transformers' `AutoTokenizer` of the adapter folder when Axolotl
        saved the trained tokenizer there, else of `model`; a kind whose engine picks its own
        overrides this. An unloadable one raises OSError or ValueError, as `from_pretrained`."""
        from transformers import AutoTokenizer

        from axolotl_mistake.generation.common import resolve_model

        path, _, revision = resolve_model(self.model, self.revision)
        if self.adapter and (Path(self.adapter) / "tokenizer_config.json").is_file():
            path, revision = self.adapter, None
        return AutoTokenizer.from_pretrained(path, revision=revision)


@cache
def backend_classes() -> dict[str, type[BackendConfig]]:
    """kind -> its config class (imports the registered modules, which stay engine-free)."""
    return registered_classes(BACKENDS, BackendConfig)


def _kind_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        kind = value.get("kind", DEFAULT_KIND)
        return kind if isinstance(kind, str) else None
    return getattr(value, "kind", None)


@cache
def _union() -> Any:
    members = tuple(Annotated[cls, Tag(kind)] for kind, cls in backend_classes().items())
    return Annotated[Union[members], Discriminator(_kind_of)]  # type: ignore[valid-type]  # noqa: UP007


@cache
def _root_type() -> Any:
    """The union with `kind` checked first and tag-free error locations (see _validate_kind)."""
    return Annotated[_union(), WrapValidator(_validate_kind)]


@cache
def _adapter() -> TypeAdapter:
    return TypeAdapter(_root_type())


def _validate_kind(value: Any, handler: Any) -> Any:
    """Check `kind` first (one clear error), then validate with the kind's class.

    Errors keep the caller's field path: the union's tag ('openai', ...) is taken out of every
    location, so a bad key reads `model.device`, as for any other section.
    """
    if isinstance(value, BackendConfig) and type(value) is not BackendConfig:
        return value
    if isinstance(value, Mapping):
        kind = value.get("kind", DEFAULT_KIND)
        if not isinstance(kind, str) or kind not in BACKENDS:
            raise PydanticCustomError(
                "backend_kind",
                "unknown backend kind {given}; expected one of {kinds}",
                {"given": repr(kind), "kinds": ", ".join(BACKENDS)},
            )
    elif not isinstance(value, BackendConfig):
        raise PydanticCustomError(
            "backend_type", "a backend must be a mapping of keys (kind, model, ...)"
        )
    try:
        return handler(value)
    except ValidationError as exc:
        raise ValidationError.from_exception_data(exc.title, _untagged(exc)) from None


def _untagged(exc: ValidationError) -> list[Any]:
    errors = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        if loc and loc[0] in BACKENDS:
            loc = loc[1:]
        errors.append(
            {
                "type": PydanticCustomError(err["type"], err["msg"]),
                "loc": loc,
                "input": err.get("input"),
            }
        )
    return errors


def parse_backend_config(data: Mapping[str, Any] | BackendConfig) -> BackendConfig:
    """Validate a raw mapping (YAML, command line) into the config of its kind."""
    if isinstance(data, BackendConfig) and type(data) is not BackendConfig:
        return data
    return _adapter().validate_python(data)


@cache
def backend_fields() -> dict[str, FieldInfo]:
    """Every key a backend block may hold, over all kinds (for `--help` and command-line flags).

    A key only some kinds take says which at the end of its description; a key a kind requires
    shows the default None here (its description says it is required).
    """
    kinds_of: dict[str, list[str]] = {}
    fields: dict[str, FieldInfo] = dict(BackendConfig.model_fields)
    for kind, cls in backend_classes().items():
        for name, info in cls.model_fields.items():
            kinds_of.setdefault(name, []).append(kind)
            fields.setdefault(name, info)
    out: dict[str, FieldInfo] = {}
    for name, info in fields.items():
        kinds = kinds_of.get(name, [])
        if len(kinds) < len(BACKENDS) or info.is_required():
            info = copy.copy(info)
            if len(kinds) < len(BACKENDS):
                info.description = f"{info.description or ''} [kind: {', '.join(kinds)}]".strip()
            if info.is_required():
                info.default = None
        out[name] = info
    return out
