"""What every judge kind shares: the verdict record, the judge protocol, the config base class,
the build context, and the chunked backend loop model-based judges use.

A judge turns (question, answer) items into one `Verdict` per item for one aspect it supports
(`Judge.aspects`). It never guesses: a reply it cannot read is `unparseable`, a failed call
`error`. Nothing here knows any particular kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from axolotl_mistake.evaluate.inference import generate_chunks
from axolotl_mistake.generation.base import (
    CONTEXT_LENGTH_EXCEEDED,
    Backend,
    GenerationRequest,
    SamplingParams,
)


@dataclass
class Verdict:
    """One judge's reading of one answer on one aspect.

    status: "ok" (value set), "unparseable" (the reply held no single well-formed verdict),
    "error" (the judge call failed), "too_long" (the judge prompt did not fit the judge's
    context: not run). `detail` carries kind-specific extras (guard categories).
    """

    value: bool | int | None
    status: str
    raw: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class JudgeItem:
    """What a judge sees: the question as the user asked it and the model's answer."""

    question: str
    answer: str


@runtime_checkable
class Judge(Protocol):
    """A built judge: a label, the aspects it can rate, and the rating itself."""

    name: str
    aspects: frozenset[str]

    def judge(self, aspect: str, items: Sequence[JudgeItem]) -> list[Verdict]:
        """One verdict per item, in order; only called for an aspect in `aspects`."""
        ...


@dataclass
class JudgeContext:
    """What a judge config may need to build its judge in one run.

    `cached(backend_config, file_name)` returns a backend wrapped in a call cache stored in the
    run folder under `file_name`; `model_backend` is the evaluated model's (cached) backend.
    """

    index: int
    prompt_format: str
    batch_size: int
    model_backend: Backend
    cached: Callable[[Any, str], Backend]
    out: Path


class JudgeConfigBase(BaseModel):
    """Keys every judge kind takes. A kind subclasses it with `kind: Literal["name"]`, its own
    keys and `build()`, and is registered by one line in `judges/__init__.py`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: str
    name: str | None = Field(None, description="label in reports (default: the kind)")

    @property
    def label(self) -> str:
        return self.name or self.kind

    def backend_configs(self) -> list[Any]:
        """Backend configs this judge loads (their local paths are checked before a run)."""
        backend = getattr(self, "backend", None)
        return [backend] if backend is not None else []

    def build(self, ctx: JudgeContext) -> Judge:
        raise NotImplementedError(f"judge kind {self.kind!r} has no build()")


class BackendJudge:
    """A judge that asks a model through a generation Backend. A kind says how to ask
    (`request`: the request and a pre-fill put in front of the reply) and how to read the reply
    (`parse`); the chunked calls, failed calls ('error') and prompts too long for the judge
    ('too_long', not run) are handled here."""

    aspects: frozenset[str] = frozenset()
    prompts: tuple[str, ...] = ()
    """The prompt shapes the kind offers (`prompt`); the first is the default."""
    default_tokens: int = 128

    def __init__(
        self,
        name: str,
        backend: Backend,
        *,
        prompt: str | None = None,
        params: SamplingParams | None = None,
        batch_size: int = 16,
    ) -> None:
        self.name = name
        self.backend = backend
        self.prompt = prompt or self.prompts[0]
        if self.prompt not in self.prompts:
            raise ValueError(f"prompt must be one of {', '.join(self.prompts)}, not {prompt!r}")
        self.params = params or SamplingParams(max_new_tokens=self.default_tokens, temperature=0.0)
        self.batch_size = batch_size

    def request(self, aspect: str, item: JudgeItem) -> tuple[GenerationRequest, str]:
        raise NotImplementedError

    def parse(self, aspect: str, reply: str) -> Verdict:
        raise NotImplementedError

    def judge(self, aspect: str, items: Sequence[JudgeItem]) -> list[Verdict]:
        """One verdict per item, in order."""
        if aspect not in self.aspects:
            raise ValueError(f"judge {self.name!r} cannot rate {aspect!r}")
        built = [self.request(aspect, item) for item in items]
        requests = [request for request, _ in built]
        verdicts: list[Verdict] = []
        for start, completions in generate_chunks(
            self.backend, requests, self.params, self.batch_size
        ):
            for (_, prefill), completion in zip(built[start:], completions):
                if completion.extra.get("error_code") == CONTEXT_LENGTH_EXCEEDED:
                    verdicts.append(Verdict(None, "too_long", completion.error or ""))
                elif not completion.ok:
                    verdicts.append(Verdict(None, "error", completion.error or ""))
                else:
                    verdicts.append(self.parse(aspect, prefill + completion.text))
        return verdicts
