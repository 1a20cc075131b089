"""Stage 4, analyses: critiques of the verified mistakes through template (b), then gates.

Gates: non-empty, minimum length, not a refusal, not an echo of the bad answer, optional
agreement with the verify verdict. Never writes files; calls go through the given backend.
"""

from __future__ import annotations

from typing import Sequence

from axolotl_mistake import templates
from axolotl_mistake.generation.base import Backend
from dataset_builders.config import AnalysesConfig
from dataset_builders.stages.common import (
    CallFailure,
    Progress,
    StageResult,
    call_in_chunks,
    k_requests,
    key_of,
    looks_like_refusal,
    model_label,
    no_progress,
    overlap,
    sampling_params,
)
from dataset_builders.stages.items import Analysis, Mistake

TEMPLATE = "guided_analysis"




def analysis_requests(mistakes: Sequence[Mistake], cfg: AnalysesConfig, prompt_format: str) -> list:
    """(mistake, request) pairs of template (b), k per mistake."""
    return k_requests(
        mistakes, cfg.k, prompt_format, TEMPLATE,
        lambda m: templates.guided_analysis_prompt(m.instruction, m.bad, m.input),
        lambda m: templates.guided_analysis_messages(m.instruction, m.bad, m.input),
    )


def gate(critique: str, bad: str, verdict: bool | None, cfg: AnalysesConfig) -> str | None:
    """The name of the first gate a critique fails, or None when it passes."""
    if not critique:
        return "empty"
    if len(critique) < cfg.min_chars:
        return "too_short"
    if looks_like_refusal(critique, cfg.refusal_phrases):
        return "refusal"
    if overlap(critique, bad, cfg.echo_ngram) >= cfg.max_echo_overlap:
        return "echo"
    if cfg.require_verify_agreement and verdict is True:
        low = critique.casefold()
        if not any(w.casefold() in low for w in cfg.harm_words):
            return "disagrees_with_verify"
    return None


def analyse(
    mistakes: Sequence[Mistake],
    cfg: AnalysesConfig,
    *,
    seed: int,
    backend: Backend,
    prompt_format: str = "alpaca",
    chunk_size: int = 64,
    progress: Progress = no_progress,
) -> StageResult:
    """Analyses that passed every gate; each dropped critique is counted under its gate."""
    result = StageResult(records=[])
    params = sampling_params(cfg, seed)
    pairs = analysis_requests(mistakes, cfg, prompt_format)
    result.add("in", len(mistakes))
    result.add("calls", len(pairs))
    completions = call_in_chunks(
        backend, [r for _, r in pairs], params, chunk_size=chunk_size, progress=progress
    )
    analyst = model_label(backend)
    out: list[Analysis] = []
    for (m, request), completion in zip(pairs, completions):
        key = key_of(backend, request, params)
        if not completion.ok:
            result.add("failed")
            result.failures.append(CallFailure("analyses", key, m.uid, completion.error or "error"))
            continue
        critique = completion.text.strip()
        failed = gate(critique, m.bad, m.verdict, cfg)
        if failed:
            result.add(f"gate_{failed}")
            continue
        out.append(
            Analysis(
                mistake=m,
                analysis_index=request.sample_index,
                critique=critique,
                analyst=analyst,
                analysis_key=key,
            )
        )
    out.sort(key=lambda a: a.sort_key)
    result.add("kept", len(out))
    result.records = out
    return result
