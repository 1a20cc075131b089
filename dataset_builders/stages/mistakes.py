"""Stage 2, mistakes: bad answers from dataset labels ('origin'), from template (a) ('guided'),
or both.

Refusals (phrase list, optional judge) are dropped and counted. Never writes files; every model
call goes through the backend it is given (a CachedBackend in a build).
"""

from __future__ import annotations

from typing import Sequence

from axolotl_mistake import templates
from axolotl_mistake.generation.base import Backend, SamplingParams
from dataset_builders.config import MistakesConfig
from dataset_builders.stages.common import (
    CallFailure,
    Progress,
    StageResult,
    call_in_chunks,
    k_requests,
    key_of,
    looks_like_refusal,
    make_request,
    model_label,
    no_progress,
    normalise,
    parse_verdict,
    sampling_params,
)
from dataset_builders.stages.items import Item, Mistake

TEMPLATE = "guided_response"
REFUSAL_TEMPLATE = "refusal_check"




def judge_params(seed: int) -> SamplingParams:
    """Greedy, a few tokens: enough for a yes/no verdict."""
    return SamplingParams(max_new_tokens=4, temperature=0.0, seed=seed)


def guided_requests(items: Sequence[Item], cfg: MistakesConfig, prompt_format: str) -> list:
    """(item, request) pairs of template (a), k samples each."""
    return k_requests(
        items, cfg.k, prompt_format, TEMPLATE,
        lambda it: templates.guided_response_prompt(it.instruction, it.input, cfg.hint),
        lambda it: templates.guided_response_messages(it.instruction, it.input, cfg.hint),
    )


def refusal_requests(mistakes: Sequence[Mistake], prompt_format: str) -> list:
    return [
        make_request(
            prompt_format,
            templates.refusal_check_prompt(m.instruction, m.bad, m.input),
            templates.refusal_check_messages(m.instruction, m.bad, m.input),
            template=REFUSAL_TEMPLATE,
        )
        for m in mistakes
    ]


def origin_mistakes(train: Sequence[Item], result: StageResult, progress: Progress) -> list[Mistake]:
    """The unsafe answer each labelled item holds (every one: a PKU prompt with two unsafe
    responses is two items), as harmful mistakes; items without one are counted."""
    out = []
    for item in train:
        progress(1)
        bad = (item.row.unsafe_answer or "").strip()
        if not bad:
            result.add("no_origin_answer")
            continue
        out.append(
            Mistake(
                uid=item.uid,
                instruction=item.instruction,
                input=item.input,
                bad=bad,
                source=item.row.source,
                mistake_source="origin",
            )
        )
    return out


def make_mistakes(
    items: Sequence[Item],
    cfg: MistakesConfig,
    *,
    seed: int,
    prompt_format: str = "alpaca",
    backend: Backend | None = None,
    judge: Backend | None = None,
    chunk_size: int = 64,
    progress: Progress = no_progress,
) -> StageResult:
    """Mistakes for the red-team train items, refusals and failures dropped and counted."""
    result = StageResult(records=[])
    train = [it for it in items if it.role == "redteam" and it.split == "train"]
    result.add("instructions", len(train))
    candidates: list[Mistake] = []
    if cfg.mode in ("origin", "both"):
        candidates += origin_mistakes(train, result, progress)
    if cfg.mode in ("guided", "both"):
        if backend is None:
            raise ValueError("guided mistakes need a backend")
        params = sampling_params(cfg, seed)
        pairs = guided_requests(train, cfg, prompt_format)
        result.add("calls", len(pairs))
        completions = call_in_chunks(
            backend, [r for _, r in pairs], params, chunk_size=chunk_size, progress=progress
        )
        label = model_label(backend)
        for (item, request), completion in zip(pairs, completions):
            key = key_of(backend, request, params)
            if not completion.ok:
                result.add("failed")
                result.failures.append(
                    CallFailure("mistakes", key, item.uid, completion.error or "error")
                )
                continue
            text = completion.text.strip()
            if not text:
                result.add("empty")
                continue
            candidates.append(
                Mistake(
                    uid=item.uid,
                    sample_index=request.sample_index,
                    instruction=item.instruction,
                    input=item.input,
                    bad=text,
                    source=item.row.source,
                    mistake_source=label,
                    mistake_key=key,
                )
            )
    kept: list[Mistake] = []
    seen: set[tuple[str, str]] = set()
    for m in candidates:
        marker = (m.uid, normalise(m.bad))
        if marker in seen:
            result.add("duplicate_sample")
            continue
        seen.add(marker)
        if looks_like_refusal(m.bad, cfg.refusal_phrases, cfg.refusal_window):
            result.add("refusal_phrase")
            continue
        kept.append(m)
    if judge is not None and kept:
        params = judge_params(seed)
        requests = refusal_requests(kept, prompt_format)
        result.add("judge_calls", len(requests))
        verdicts = call_in_chunks(judge, requests, params, chunk_size=chunk_size)
        survivors = []
        for m, request, completion in zip(kept, requests, verdicts):
            if not completion.ok:
                result.add("judge_failed")
                result.failures.append(
                    CallFailure(
                        "mistakes.judge", key_of(judge, request, params), m.uid,
                        completion.error or "error",
                    )
                )
                continue
            if parse_verdict(completion.text) is True:
                result.add("refusal_judge")
                continue
            survivors.append(m)
        kept = survivors
    kept.sort(key=lambda m: m.sort_key)
    result.add("kept", len(kept))
    result.records = kept
    return result
