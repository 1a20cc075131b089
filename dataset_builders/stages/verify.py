"""Stage 3, verify: keep a mistake only if it is harmful (label, self-check or judge verdict).

The self-check and judge ask the discrimination probe's fixed question (templates), greedy.
Never writes files; model calls go through the backend it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from axolotl_mistake import templates
from axolotl_mistake.generation.base import Backend, GenerationRequest, SamplingParams
from axolotl_mistake.verdicts import parse_verdict
from dataset_builders.config import VerifyConfig
from dataset_builders.stages.base import (
    Plan,
    PlannedCall,
    Stage,
    StageContext,
    Unknown,
    generate_and_collect,
)
from dataset_builders.stages.common import (
    Progress,
    StageResult,
    make_request,
    model_label,
    no_progress,
)
from dataset_builders.stages.items import Mistake

if TYPE_CHECKING:
    from dataset_builders.config import BuildConfig

TEMPLATE = "discrimination"


def verify_params(cfg: VerifyConfig, seed: int) -> SamplingParams:
    return SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=0.0, seed=seed)


def verify_requests(mistakes: Sequence[Mistake], prompt_format: str) -> list:
    """(mistake, request) pairs of the discrimination question."""
    return [(m, _request(m, prompt_format)) for m in mistakes]


def _request(m: Mistake, prompt_format: str) -> GenerationRequest:
    """The discrimination question of one mistake, in the completion and the chat form."""
    question = templates.question(m.instruction, m.input)
    return make_request(
        prompt_format,
        templates.discrimination_prompt(question, m.bad),
        templates.discrimination_messages(question, m.bad),
        template=TEMPLATE,
    )


def verify_by_label(
    mistakes: Sequence[Mistake], mode: str, progress: Progress = no_progress
) -> StageResult:
    """Modes 'label' and 'none', no model call: every mistake is kept; under 'label' an origin
    answer carries its dataset's unsafe label and a guided one counts as harmful because the
    hint induced it (as in the paper)."""
    result = StageResult(records=[])
    result.add("in", len(mistakes))
    for m in mistakes:
        progress(1)
        if mode == "label" and m.mistake_source == "origin":
            result.records.append(m.model_copy(update={"verdict": True, "verdict_by": "label"}))
        else:
            by = "hint" if mode == "label" else "none"
            result.records.append(m.model_copy(update={"verdict": None, "verdict_by": by}))
    result.add("kept", len(result.records))
    return result


def verify(
    mistakes: Sequence[Mistake],
    cfg: VerifyConfig,
    backend: Backend,
    *,
    seed: int,
    prompt_format: str = "alpaca",
    chunk_size: int = 64,
    progress: Progress = no_progress,
) -> StageResult:
    """Modes 'self_check' and 'judge': mistakes with the verdict `backend` gave, those judged
    harmless (or unclear) dropped and counted."""
    result = StageResult(records=[])
    result.add("in", len(mistakes))
    pairs = verify_requests(mistakes, prompt_format)
    result.add("calls", len(pairs))
    who = f"{cfg.mode}:{model_label(backend)}"

    def collect(m: Mistake, request, completion, key: str) -> Mistake | None:
        verdict = parse_verdict(completion.text)
        if verdict is False:
            result.add("judged_harmless")
            return None
        if verdict is None:
            result.add("unclear")
            if not cfg.keep_unclear:
                return None
        return m.model_copy(update={"verdict": verdict, "verdict_by": who})

    out = generate_and_collect(
        "verify",
        backend,
        pairs,
        verify_params(cfg, seed),
        collect,
        result,
        chunk_size=chunk_size,
        progress=progress,
    )
    result.add("kept", len(out))
    result.records = out
    return result


class VerifyStage(Stage):
    name = "verify"
    reads = writes = "mistakes"

    def models(self, cfg: BuildConfig) -> list:
        """The analyst answers the self-check; a judge has a backend of its own."""
        if cfg.verify.mode == "self_check":
            return [("analyses.backend", cfg.backend_for(cfg.analyses.backend))]
        if cfg.verify.mode == "judge":
            return [("verify.backend", cfg.backend_for(cfg.verify.backend))]
        return []

    def run(self, ctx: StageContext, records: Sequence, progress: Progress) -> StageResult:
        cfg = ctx.cfg
        models = self.models(cfg)
        if not models:
            return verify_by_label(records, cfg.verify.mode, progress)
        return verify(
            records,
            cfg.verify,
            ctx.backend(models[0][1]),
            seed=cfg.seed,
            prompt_format=cfg.prompt_format,
            chunk_size=ctx.chunk_size,
            progress=progress,
        )

    def plan(self, cfg: BuildConfig, records: Sequence, unknown: Unknown, render_chat=None) -> Plan:
        plan = Plan(outputs=[(m, unknown(m)) for m in records])
        for key, bcfg in self.models(cfg):
            plan.calls.append(
                PlannedCall(
                    "verify",
                    key,
                    bcfg,
                    verify_requests(records, cfg.prompt_format),
                    cfg.verify.max_new_tokens,
                )
            )
        return plan


STAGE = VerifyStage()
