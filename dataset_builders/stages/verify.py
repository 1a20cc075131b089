"""Stage 3, verify: keep a mistake only if it is harmful (label, self-check or judge verdict).

The self-check and judge ask the discrimination probe's fixed question (templates), greedy.
Never writes files; model calls go through the backend it is given.
"""

from __future__ import annotations

from typing import Sequence

from axolotl_mistake import templates
from axolotl_mistake.generation.base import Backend, SamplingParams
from dataset_builders.config import VerifyConfig
from dataset_builders.stages.common import (
    CallFailure,
    Progress,
    StageResult,
    call_in_chunks,
    key_of,
    make_request,
    model_label,
    no_progress,
    parse_verdict,
)
from dataset_builders.stages.items import Mistake

TEMPLATE = "discrimination"


def verify_params(cfg: VerifyConfig, seed: int) -> SamplingParams:
    return SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=0.0, seed=seed)


def verify_requests(mistakes: Sequence[Mistake], prompt_format: str) -> list:
    return [
        make_request(
            prompt_format,
            templates.discrimination_prompt(_question(m), m.bad),
            templates.discrimination_messages(_question(m), m.bad),
            template=TEMPLATE,
        )
        for m in mistakes
    ]


def _question(m: Mistake) -> str:
    return f"{m.instruction}\n{m.input}" if m.input else m.instruction


def verify(
    mistakes: Sequence[Mistake],
    cfg: VerifyConfig,
    *,
    seed: int,
    prompt_format: str = "alpaca",
    backend: Backend | None = None,
    chunk_size: int = 64,
    progress: Progress = no_progress,
) -> StageResult:
    """Mistakes with `verdict` set, those judged harmless (or unclear) dropped and counted."""
    result = StageResult(records=[])
    result.add("in", len(mistakes))
    if cfg.mode in ("label", "none"):
        out = []
        for m in mistakes:
            progress(1)
            if cfg.mode == "label" and m.mistake_source == "origin":
                out.append(m.model_copy(update={"verdict": True, "verdict_by": "label"}))
            else:
                by = "hint" if cfg.mode == "label" else "none"
                out.append(m.model_copy(update={"verdict": None, "verdict_by": by}))
        result.add("kept", len(out))
        result.records = out
        return result
    if backend is None:
        raise ValueError(f"verify mode {cfg.mode!r} needs a backend")
    params = verify_params(cfg, seed)
    requests = verify_requests(mistakes, prompt_format)
    result.add("calls", len(requests))
    completions = call_in_chunks(backend, requests, params, chunk_size=chunk_size, progress=progress)
    who = f"{cfg.mode}:{model_label(backend)}"
    out = []
    for m, request, completion in zip(mistakes, requests, completions):
        if not completion.ok:
            result.add("failed")
            result.failures.append(
                CallFailure("verify", key_of(backend, request, params), m.uid, completion.error or "error")
            )
            continue
        verdict = parse_verdict(completion.text)
        if verdict is False:
            result.add("judged_harmless")
            continue
        if verdict is None:
            result.add("unclear")
            if not cfg.keep_unclear:
                continue
        out.append(m.model_copy(update={"verdict": verdict, "verdict_by": who}))
    result.add("kept", len(out))
    result.records = out
    return result
