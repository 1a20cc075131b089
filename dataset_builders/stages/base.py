"""The stage contract, the work a build passes from stage to stage, and the one
generate-and-collect loop (calls in chunks -> failure bookkeeping -> each answer collected).

A stage is defined once: its name, the backends it calls (config key + config), its requests,
how it collects answers, and its dry-run plan. The pipeline, the dry run, the model preload and
the context bound all loop over the registry in `stages/__init__.py`. Nothing here reads or
writes files; model calls go through the backend a caller passes (a CachedBackend in a build).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any

from axolotl_mistake.generation.base import Backend, Completion, GenerationRequest, SamplingParams
from dataset_builders.stages.common import (
    CallFailure,
    Progress,
    StageResult,
    call_in_chunks,
    key_of,
    no_progress,
)
from dataset_builders.stages.items import Analysis, Item, Mistake, Revision

if TYPE_CHECKING:
    from axolotl_mistake.generation.config import BackendConfig
    from dataset_builders.chat_prefill import ChatRenderer
    from dataset_builders.config import BuildConfig
    from dataset_builders.stages.emit import Pool


def uid_of(record: Any) -> str:
    """The selected item a record descends from (items, mistakes, analyses, revisions)."""
    if isinstance(record, Analysis):
        return record.mistake.uid
    if isinstance(record, Revision):
        return record.analysis.mistake.uid
    return record.uid


def record_key(record: Any) -> tuple:
    """A key unique to one record within a build (used by dry-run bookkeeping)."""
    if isinstance(record, Item):
        return ("item", record.uid)
    return (type(record).__name__, *record.sort_key)


@dataclass
class Work:
    """What the stages read and fill: selected items, then mistakes, harmless answers (balanced
    analyses), analyses and revisions."""

    items: list[Item]
    mistakes: list[Mistake] = field(default_factory=list)
    harmless: list[Mistake] = field(default_factory=list)
    analyses: list[Analysis] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)

    def train_redteam(self) -> list[Item]:
        return [it for it in self.items if it.role == "redteam" and it.split == "train"]

    def pool(self) -> Pool:
        """What emit (and a later merge) needs."""
        from dataset_builders.stages.emit import Pool

        return Pool(
            items=list(self.items),
            mistakes=self.mistakes,
            analyses=self.analyses,
            revisions=self.revisions,
        )


@dataclass
class StageContext:
    """What a running stage may use besides its records: the config, the backend of a config
    (cached in a build), the analyst's chat renderer (anchored chat analyses)."""

    cfg: BuildConfig
    backend: Callable[[BackendConfig], Backend]
    render_chat: ChatRenderer | None = None
    chunk_size: int = 64


@dataclass
class PlannedCall:
    """The requests one model call site of a stage would send, without sending them."""

    label: str
    """Name in the dry-run table ('mistakes', 'refusal judge', 'verify', ...)."""
    backend_key: str
    """Config key of the backend it goes to ('analyses.backend', ...)."""
    backend: BackendConfig
    pairs: list[tuple[Any, GenerationRequest]]
    """(input record, request): the record tells which item and which unknown text it holds."""
    max_new_tokens: int


@dataclass
class Plan:
    """A stage's dry-run plan: its calls, and stand-ins for its outputs, each with the number
    of tokens of generated (not yet known) text it carries into later prompts."""

    calls: list[PlannedCall] = field(default_factory=list)
    outputs: list[tuple[Any, int]] = field(default_factory=list)


Unknown = Callable[[Any], int]
"""Tokens of not-yet-generated text a (stand-in) record carries (0 for known text)."""


class Stage(ABC):
    """One step of the build. Subclasses set `name` and implement the abstract methods."""

    name: str = ""
    reads: str = "items"
    """The `Work` field this stage reads (override `inputs` for a selection of it)."""
    writes: str = ""
    """The `Work` field this stage fills."""
    enabled_by: str | None = None
    """Dotted config key of the switch that turns this stage on ('emit.critique_revise');
    None: every build runs it."""

    def enabled(self, cfg: BuildConfig) -> bool:
        """Whether the configured build runs this stage."""
        return self.enabled_by is None or bool(reduce(getattr, self.enabled_by.split("."), cfg))

    def models(self, cfg: BuildConfig) -> list[tuple[str, BackendConfig]]:
        """(config key, backend config) of every model this stage calls."""
        return []

    def inputs(self, work: Work) -> list:
        """The records this stage reads from the work so far."""
        return list(getattr(work, self.reads))

    def store(self, work: Work, records: list) -> None:
        """Put this stage's output records into the work."""
        setattr(work, self.writes, records)

    def total(self, cfg: BuildConfig, records: Sequence) -> int:
        """Progress units (finished calls or records) of a run on `records`."""
        return len(records)

    @abstractmethod
    def run(self, ctx: StageContext, records: Sequence, progress: Progress) -> StageResult:
        """Run on `records`: output records, counts and call failures."""

    @abstractmethod
    def plan(
        self,
        cfg: BuildConfig,
        records: Sequence,
        unknown: Unknown,
        render_chat: ChatRenderer | None = None,
    ) -> Plan:
        """The calls a run on `records` would make, and stand-ins for its outputs."""


Collect = Callable[[Any, GenerationRequest, Completion, str], Any]
"""(input record, request, successful completion, cache key) -> output record, or None when
the answer is dropped (the collector counts why)."""


def generate_and_collect(
    stage: str,
    backend: Backend,
    pairs: Sequence[tuple[Any, GenerationRequest]],
    params: SamplingParams,
    collect: Collect,
    result: StageResult,
    *,
    chunk_size: int = 64,
    progress: Progress = no_progress,
    failed_count: str = "failed",
) -> list:
    """Send every request through `backend` and collect the answers, in request order.

    A failed call is counted under `failed_count` and recorded as a CallFailure of `stage`
    (not cached: a rerun retries it); every other answer goes to `collect`.
    """
    completions = call_in_chunks(
        backend, [r for _, r in pairs], params, chunk_size=chunk_size, progress=progress
    )
    out = []
    for (record, request), completion in zip(pairs, completions):
        key = key_of(backend, request, params)
        if not completion.ok:
            result.add(failed_count)
            result.failures.append(
                CallFailure(stage, key, uid_of(record), completion.error or "error")
            )
            continue
        got = collect(record, request, completion, key)
        if got is not None:
            out.append(got)
    return out
