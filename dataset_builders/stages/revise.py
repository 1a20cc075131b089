"""Critique-revise baseline: a harmless revision of each analysed mistake, written by a model.

Only runs when `emit.critique_revise` is on, and only on analyses of harmful answers. The
revision (never the bad answer) is what the baseline trains on. Never writes files; calls go
through the given backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from axolotl_mistake import templates
from axolotl_mistake.generation.base import Backend
from dataset_builders.config import ReviseConfig
from dataset_builders.stages.analyses import copies_answer
from dataset_builders.stages.base import (
    Plan,
    PlannedCall,
    Stage,
    StageContext,
    Unknown,
    Work,
    generate_and_collect,
)
from dataset_builders.stages.common import (
    Progress,
    StageResult,
    make_request,
    model_label,
    no_progress,
    overlap,
    sampling_params,
)
from dataset_builders.stages.items import Analysis, Revision

if TYPE_CHECKING:
    from dataset_builders.config import BuildConfig

TEMPLATE = "revision"


def revise_requests(analyses: Sequence[Analysis], prompt_format: str) -> list:
    """(analysis, request) pairs asking for a harmless rewrite following the critique."""
    out = []
    for a in analyses:
        m = a.mistake
        out.append(
            (
                a,
                make_request(
                    prompt_format,
                    templates.revision_prompt(m.instruction, m.bad, a.critique, m.input),
                    templates.revision_messages(m.instruction, m.bad, a.critique, m.input),
                    template=TEMPLATE,
                    sample_index=a.analysis_index,
                ),
            )
        )
    return out


def revise(
    analyses: Sequence[Analysis],
    cfg: ReviseConfig,
    *,
    seed: int,
    backend: Backend,
    prompt_format: str = "alpaca",
    chunk_size: int = 64,
    progress: Progress = no_progress,
) -> StageResult:
    """Revisions that are non-empty, long enough, not an echo of the bad answer and copy no
    more than `max_copied_words` of its words in a row (a revision is trained)."""
    result = StageResult(records=[])
    pairs = revise_requests(analyses, prompt_format)
    result.add("calls", len(pairs))
    who = model_label(backend)

    def collect(a: Analysis, request, completion, key: str) -> Revision | None:
        text = completion.text.strip()
        if len(text) < max(1, cfg.min_chars):
            result.add("gate_too_short")
            return None
        if overlap(text, a.mistake.bad) >= cfg.max_echo_overlap:
            result.add("gate_echo")
            return None
        if copies_answer(text, a.mistake, cfg.max_copied_words):
            result.add("gate_copy")
            return None
        return Revision(analysis=a, revision=text, reviser=who, revision_key=key)

    out = generate_and_collect(
        "revise",
        backend,
        pairs,
        sampling_params(cfg, seed),
        collect,
        result,
        chunk_size=chunk_size,
        progress=progress,
    )
    return result.keep(out)


class ReviseStage(Stage):
    name = "revise"
    writes = "revisions"
    enabled_by = "emit.critique_revise"

    def models(self, cfg: BuildConfig) -> list:
        return [("revise.backend", cfg.backend_for(cfg.revise.backend))]

    def inputs(self, work: Work) -> list:
        return [a for a in work.analyses if a.mistake.label == "harmful"]

    def run(self, ctx: StageContext, records: Sequence, progress: Progress) -> StageResult:
        cfg = ctx.cfg
        return revise(
            records,
            cfg.revise,
            seed=cfg.seed,
            backend=ctx.backend(cfg.backend_for(cfg.revise.backend)),
            prompt_format=cfg.prompt_format,
            chunk_size=ctx.chunk_size,
            progress=progress,
        )

    def plan(self, cfg: BuildConfig, records: Sequence, unknown: Unknown, render_chat=None) -> Plan:
        pairs = revise_requests(records, cfg.prompt_format)
        call = PlannedCall(
            "revise",
            "revise.backend",
            cfg.backend_for(cfg.revise.backend),
            pairs,
            cfg.revise.max_new_tokens,
        )
        return Plan(calls=[call], outputs=[])


STAGE = ReviseStage()
