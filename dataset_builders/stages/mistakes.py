"""Stage 2, mistakes: bad answers from dataset labels ('origin'), from template (a) ('guided'),
or both.

Every labelled unsafe answer is used (a PKU prompt with two unsafe responses is two items);
template (a) is asked k times per distinct prompt, however many items share it.
Repeats and refusals (phrase list, optional judge) are dropped and counted. Never writes files;
every model call goes through the backend it is given (a CachedBackend in a build).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from axolotl_mistake import templates
from axolotl_mistake.generation.base import Backend, SamplingParams
from axolotl_mistake.verdicts import is_refusal, parse_verdict
from dataset_builders.config import MistakesConfig
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
    clip_answer,
    k_requests,
    make_request,
    model_label,
    no_progress,
    normalise,
    sampling_params,
)
from dataset_builders.stages.items import Item, Mistake

if TYPE_CHECKING:
    from dataset_builders.config import BuildConfig

TEMPLATE = "guided_response"
REFUSAL_TEMPLATE = "refusal_check"


def judge_params(seed: int) -> SamplingParams:
    """Greedy, a few tokens: enough for a yes/no verdict."""
    return SamplingParams(max_new_tokens=4, temperature=0.0, seed=seed)


def guided(cfg: MistakesConfig) -> bool:
    return cfg.mode in ("guided", "both")


def distinct_prompts(items: Sequence[Item]) -> list[Item]:
    """The first item of each normalised prompt. Template (a) sees only the prompt, so rows
    sharing one (PKU-SafeRLHF's two answers to a prompt, as `:0` and `:1`) would make the same
    requests and get the same answers: duplicate mistakes, then duplicate analyses."""
    seen: set[str] = set()
    out: list[Item] = []
    for it in items:
        key = it.prompt_key
        if key not in seen:
            seen.add(key)
            out.append(it)
    return out


def guided_requests(items: Sequence[Item], cfg: MistakesConfig, prompt_format: str) -> list:
    """(item, request) pairs of template (a), k samples for each distinct prompt."""
    return k_requests(
        distinct_prompts(items),
        cfg.k,
        prompt_format,
        TEMPLATE,
        lambda it: templates.guided_response_prompt(it.instruction, it.input, cfg.hint),
        lambda it: templates.guided_response_messages(it.instruction, it.input, cfg.hint),
    )


def refusal_requests(mistakes: Sequence[Mistake], prompt_format: str) -> list:
    """(mistake, request) pairs asking the refusal judge about each answer."""
    return [
        (
            m,
            make_request(
                prompt_format,
                templates.refusal_check_prompt(m.instruction, m.bad, m.input),
                templates.refusal_check_messages(m.instruction, m.bad, m.input),
                template=REFUSAL_TEMPLATE,
            ),
        )
        for m in mistakes
    ]


def origin_mistake(item: Item, max_chars: int | None = None) -> Mistake | None:
    """The unsafe answer an item's labels provide, as a harmful mistake (None without one),
    cut to `max_chars` (`mistakes.max_answer_chars`)."""
    bad = clip_answer(item.row.unsafe_answer or "", max_chars)
    if not bad:
        return None
    return Mistake(
        uid=item.uid,
        instruction=item.instruction,
        input=item.input,
        bad=bad,
        source=item.row.source,
        mistake_source="origin",
    )


def placeholder_mistake(item: Item, sample_index: int) -> Mistake:
    """A guided mistake whose text is not generated yet (dry runs)."""
    return Mistake(
        uid=item.uid,
        sample_index=sample_index,
        instruction=item.instruction,
        input=item.input,
        bad="",
        source=item.row.source,
        mistake_source="guided",
    )


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
        for item in train:
            progress(1)
            mistake = origin_mistake(item, cfg.max_answer_chars)
            if mistake is None:
                result.add("no_origin_answer")
            else:
                candidates.append(mistake)
    if guided(cfg):
        if backend is None:
            raise ValueError("guided mistakes need a backend")
        pairs = guided_requests(train, cfg, prompt_format)
        result.add("same_prompt", len(train) - len(pairs) // cfg.k)  # k per distinct prompt
        result.add("calls", len(pairs))
        label = model_label(backend)

        def collect(item: Item, request, completion, key: str) -> Mistake | None:
            text = completion.text.strip()
            if not text:
                result.add("empty")
                return None
            return Mistake(
                uid=item.uid,
                sample_index=request.sample_index,
                instruction=item.instruction,
                input=item.input,
                bad=text,
                source=item.row.source,
                mistake_source=label,
                mistake_key=key,
            )

        candidates += generate_and_collect(
            "mistakes",
            backend,
            pairs,
            sampling_params(cfg, seed),
            collect,
            result,
            chunk_size=chunk_size,
            progress=progress,
        )
    kept = drop_repeats_and_refusals(candidates, cfg, result)
    if judge is not None and kept:
        kept = judge_refusals(
            kept,
            judge,
            seed=seed,
            prompt_format=prompt_format,
            chunk_size=chunk_size,
            result=result,
        )
    return result.keep(kept)


def drop_repeats_and_refusals(
    candidates: Sequence[Mistake], cfg: MistakesConfig, result: StageResult
) -> list[Mistake]:
    """Drop a second identical answer of one item and answers that open like a refusal."""
    kept: list[Mistake] = []
    seen: set[tuple[str, str]] = set()
    for m in candidates:
        marker = (m.uid, normalise(m.bad))
        if marker in seen:
            result.add("duplicate_sample")
            continue
        seen.add(marker)
        if is_refusal(
            m.bad, cfg.refusal_phrases, window=cfg.refusal_window, empty_is_refusal=False
        ):
            result.add("refusal_phrase")
            continue
        kept.append(m)
    return kept


def judge_refusals(
    mistakes: Sequence[Mistake],
    judge: Backend,
    *,
    seed: int,
    prompt_format: str,
    chunk_size: int,
    result: StageResult,
) -> list[Mistake]:
    """Ask the judge whether each answer is a refusal; keep the ones it says are not."""
    pairs = refusal_requests(mistakes, prompt_format)
    result.add("judge_calls", len(pairs))

    def collect(m: Mistake, request, completion, key: str) -> Mistake | None:
        if parse_verdict(completion.text) is True:
            result.add("refusal_judge")
            return None
        return m

    return generate_and_collect(
        "mistakes.judge",
        judge,
        pairs,
        judge_params(seed),
        collect,
        result,
        chunk_size=chunk_size,
        failed_count="judge_failed",
    )


class MistakesStage(Stage):
    name = "mistakes"
    writes = "mistakes"

    def models(self, cfg: BuildConfig) -> list:
        out = []
        if guided(cfg.mistakes):
            out.append(("mistakes.backend", cfg.backend_for(cfg.mistakes.backend)))
        if cfg.mistakes.refusal_judge is not None:
            out.append(("mistakes.refusal_judge", cfg.backend_for(cfg.mistakes.refusal_judge)))
        return out

    def inputs(self, work: Work) -> list:
        return work.train_redteam()

    def total(self, cfg: BuildConfig, records: Sequence) -> int:
        m = cfg.mistakes
        return len(records) * ((m.k if guided(m) else 0) + (m.mode != "guided"))

    def run(self, ctx: StageContext, records: Sequence, progress: Progress) -> StageResult:
        cfg = ctx.cfg
        m = cfg.mistakes
        return make_mistakes(
            records,
            m,
            seed=cfg.seed,
            prompt_format=cfg.prompt_format,
            backend=ctx.backend(cfg.backend_for(m.backend)) if guided(m) else None,
            judge=ctx.backend(cfg.backend_for(m.refusal_judge)) if m.refusal_judge else None,
            chunk_size=ctx.chunk_size,
            progress=progress,
        )

    def plan(self, cfg: BuildConfig, records: Sequence, unknown: Unknown, render_chat=None) -> Plan:
        m, fmt = cfg.mistakes, cfg.prompt_format
        plan = Plan()
        pairs = guided_requests(records, m, fmt) if guided(m) else []
        plan.calls.append(
            PlannedCall(
                "mistakes", "mistakes.backend", cfg.backend_for(m.backend), pairs, m.max_new_tokens
            )
        )
        if m.mode in ("origin", "both"):
            # labelled answers are known now: drop what the build drops (refusals, repeats)
            origin = (origin_mistake(it, m.max_answer_chars) for it in records)
            known = [x for x in origin if x is not None]
            kept = drop_repeats_and_refusals(known, m, StageResult(records=[]))
            plan.outputs += [(x, 0) for x in kept]
        plan.outputs += [
            (placeholder_mistake(it, r.sample_index), m.max_new_tokens) for it, r in pairs
        ]
        if m.refusal_judge is not None:
            plan.calls.append(
                PlannedCall(
                    "refusal judge",
                    "mistakes.refusal_judge",
                    cfg.backend_for(m.refusal_judge),
                    refusal_requests([x for x, _ in plan.outputs], fmt),
                    judge_params(cfg.seed).max_new_tokens,
                )
            )
        return plan


STAGE = MistakesStage()
