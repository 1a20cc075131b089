"""Stage 4, analyses: critiques of the verified mistakes through template (b), then gates.

With `anchored`, each answer's label picks template (b) (harmful) or (b') (harmless) and the
prompt ends with the fixed verdict sentence, so the analyst only writes the reasons; the critique
is the sentence plus the reasons. Gates: non-empty, minimum length, not a refusal, not an echo of
the bad answer, optional agreement with the verify verdict (on the reasons when anchored), and,
on the critique as trained, no run of more than `max_copied_words` words copied from the answer.
Never writes files; calls go through the given backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from axolotl_mistake import templates
from axolotl_mistake.copying import copy_problem
from axolotl_mistake.generation.base import Backend, GenerationRequest
from axolotl_mistake.verdicts import REFUSAL_WINDOW, is_refusal
from dataset_builders.chat_prefill import ChatRenderer
from dataset_builders.config import AnalysesConfig
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
    k_requests,
    model_label,
    no_progress,
    overlap,
    sampling_params,
)
from dataset_builders.stages.items import Analysis, Mistake

if TYPE_CHECKING:
    from dataset_builders.config import BuildConfig

TEMPLATE = "guided_analysis"
ANCHORED_TEMPLATE = "guided_analysis_anchored"


def analysis_requests(
    mistakes: Sequence[Mistake],
    cfg: AnalysesConfig,
    prompt_format: str,
    render_chat: ChatRenderer | None = None,
) -> list:
    """(mistake, request) pairs of template (b) (or the anchored (b)/(b')), k per mistake."""
    if cfg.anchored:
        return [
            (m, anchored_request(m, prompt_format, render_chat, j))
            for m in mistakes
            for j in range(cfg.k)
        ]
    return k_requests(
        mistakes,
        cfg.k,
        prompt_format,
        TEMPLATE,
        lambda m: templates.guided_analysis_prompt(m.instruction, m.bad, m.input),
        lambda m: templates.guided_analysis_messages(m.instruction, m.bad, m.input),
    )


def anchored_request(
    m: Mistake, prompt_format: str, render_chat: ChatRenderer | None, sample_index: int
) -> GenerationRequest:
    """Template (b)/(b') by the answer's label, ending with the verdict sentence and a space
    (the analyst's reply is prefilled: it continues with the reasons). In chat format the
    sentence follows the rendered chat prompt's generation prompt, as raw text; without a
    renderer (a local mistral-common analyst: `analyst_chat_renderer`) the request carries the
    chat turns and the sentence as `prefill`, for the backend to encode."""
    harmful = m.label == "harmful"
    opening = templates.analysis_verdict(harmful) + " "
    template, index = ANCHORED_TEMPLATE, sample_index
    if prompt_format != "chat":
        head = templates.guided_analysis_prompt(m.instruction, m.bad, m.input, harmful)
        return GenerationRequest(prompt=head + opening, template=template, sample_index=index)
    messages = templates.guided_analysis_messages(m.instruction, m.bad, m.input, harmful)
    if render_chat is None:
        return GenerationRequest(
            messages=tuple(messages), prefill=opening, template=template, sample_index=index
        )
    prompt = render_chat(messages) + opening
    return GenerationRequest(prompt=prompt, template=template, sample_index=index)


def gate(critique: str, bad: str, verdict: bool | None, cfg: AnalysesConfig) -> str | None:
    """The name of the first gate a critique fails, or None when it passes."""
    if not critique:
        return "empty"
    if len(critique) < cfg.min_chars:
        return "too_short"
    if is_refusal(critique, cfg.refusal_phrases, window=REFUSAL_WINDOW, empty_is_refusal=False):
        return "refusal"
    if overlap(critique, bad, cfg.echo_ngram) >= cfg.max_echo_overlap:
        return "echo"
    if cfg.require_verify_agreement and verdict is True:
        low = critique.casefold()
        if not any(w.casefold() in low for w in cfg.harm_words):
            return "disagrees_with_verify"
    return None


def copies_answer(trained: str, m: Mistake, limit: int) -> bool:
    """Whether a trained text repeats more than `limit` words in a row of the answer (the
    training strategies refuse such a row: `axolotl_mistake.copying`, the same measure)."""
    return (
        copy_problem(trained, m.bad, templates.question(m.instruction, m.input), limit) is not None
    )


def analyse(
    mistakes: Sequence[Mistake],
    cfg: AnalysesConfig,
    *,
    seed: int,
    backend: Backend,
    prompt_format: str = "alpaca",
    render_chat: ChatRenderer | None = None,
    chunk_size: int = 64,
    progress: Progress = no_progress,
) -> StageResult:
    """Analyses that passed every gate; each dropped critique is counted under its gate."""
    result = StageResult(records=[])
    pairs = analysis_requests(mistakes, cfg, prompt_format, render_chat)
    result.add("in", len(mistakes))
    result.add("calls", len(pairs))
    analyst = model_label(backend)

    def collect(m: Mistake, request, completion, key: str) -> Analysis | None:
        critique = completion.text.strip()
        failed = gate(critique, m.bad, m.verdict, cfg)
        if not failed and cfg.anchored:
            critique = templates.anchored_critique(m.label == "harmful", critique)
        if not failed and copies_answer(critique, m, cfg.max_copied_words):
            failed = "copy"
        if failed:
            result.add(f"gate_{failed}")
            return None
        return Analysis(
            mistake=m,
            analysis_index=request.sample_index,
            critique=critique,
            analyst=analyst,
            analysis_key=key,
        )

    out = generate_and_collect(
        "analyses",
        backend,
        pairs,
        sampling_params(cfg, seed),
        collect,
        result,
        chunk_size=chunk_size,
        progress=progress,
    )
    if cfg.anchored:
        for label in ("harmful", "harmless"):
            result.add(f"kept_{label}", sum(1 for a in out if a.mistake.label == label))
    return result.keep(out)


def placeholder_critique(m: Mistake, cfg: AnalysesConfig) -> str:
    """What a critique is known to hold before it is generated: the verdict sentence when
    anchored, else nothing (dry runs)."""
    return templates.analysis_verdict(m.label == "harmful") if cfg.anchored else ""


class AnalysesStage(Stage):
    name = "analyses"
    writes = "analyses"

    def models(self, cfg: BuildConfig) -> list:
        return [("analyses.backend", cfg.backend_for(cfg.analyses.backend))]

    def inputs(self, work: Work) -> list:
        """The verified mistakes and, for balanced analyses, the labelled harmless answers."""
        return sorted([*work.mistakes, *work.harmless], key=lambda m: m.sort_key)

    def total(self, cfg: BuildConfig, records: Sequence) -> int:
        return len(records) * cfg.analyses.k

    def run(self, ctx: StageContext, records: Sequence, progress: Progress) -> StageResult:
        cfg = ctx.cfg
        return analyse(
            records,
            cfg.analyses,
            seed=cfg.seed,
            backend=ctx.backend(cfg.backend_for(cfg.analyses.backend)),
            prompt_format=cfg.prompt_format,
            render_chat=ctx.render_chat,
            chunk_size=ctx.chunk_size,
            progress=progress,
        )

    def plan(self, cfg: BuildConfig, records: Sequence, unknown: Unknown, render_chat=None) -> Plan:
        a = cfg.analyses
        pairs = analysis_requests(records, a, cfg.prompt_format, render_chat)
        outputs = [
            (
                Analysis(
                    mistake=m,
                    analysis_index=r.sample_index,
                    critique=placeholder_critique(m, a),
                    analyst="?",
                ),
                unknown(m) + a.max_new_tokens,
            )
            for m, r in pairs
        ]
        call = PlannedCall(
            "analyses", "analyses.backend", cfg.backend_for(a.backend), pairs, a.max_new_tokens
        )
        return Plan(calls=[call], outputs=outputs)


STAGE = AnalysesStage()
