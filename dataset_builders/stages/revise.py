"""Critique-revise baseline: a harmless revision of each analysed mistake, written by a model.

Only runs when `emit.critique_revise` is on. The revision (never the bad answer) is what the
baseline trains on. Never writes files; calls go through the given backend.
"""

from __future__ import annotations

from typing import Sequence

from axolotl_mistake import templates
from axolotl_mistake.generation.base import Backend
from dataset_builders.config import ReviseConfig
from dataset_builders.stages.common import (
    CallFailure,
    Progress,
    StageResult,
    call_in_chunks,
    key_of,
    make_request,
    model_label,
    no_progress,
    overlap,
    sampling_params,
)
from dataset_builders.stages.items import Analysis, Revision

TEMPLATE = "revision"




def revise_requests(analyses: Sequence[Analysis], prompt_format: str) -> list:
    out = []
    for a in analyses:
        m = a.mistake
        out.append(
            make_request(
                prompt_format,
                templates.revision_prompt(m.instruction, m.bad, a.critique, m.input),
                templates.revision_messages(m.instruction, m.bad, a.critique, m.input),
                template=TEMPLATE,
                sample_index=a.analysis_index,
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
    """Revisions that are non-empty, long enough and not an echo of the bad answer."""
    result = StageResult(records=[])
    params = sampling_params(cfg, seed)
    requests = revise_requests(analyses, prompt_format)
    result.add("calls", len(requests))
    completions = call_in_chunks(backend, requests, params, chunk_size=chunk_size, progress=progress)
    who = model_label(backend)
    out: list[Revision] = []
    for a, request, completion in zip(analyses, requests, completions):
        key = key_of(backend, request, params)
        if not completion.ok:
            result.add("failed")
            result.failures.append(CallFailure("revise", key, a.mistake.uid, completion.error or "error"))
            continue
        text = completion.text.strip()
        if len(text) < max(1, cfg.min_chars):
            result.add("gate_too_short")
            continue
        if overlap(text, a.mistake.bad) >= cfg.max_echo_overlap:
            result.add("gate_echo")
            continue
        out.append(Revision(analysis=a, revision=text, reviser=who, revision_key=key))
    out.sort(key=lambda r: r.sort_key)
    result.add("kept", len(out))
    result.records = out
    return result
