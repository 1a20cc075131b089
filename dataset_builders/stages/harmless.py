"""Balanced analyses only: the labelled harmless answers of the selected red-team items, as
answers to analyse with label harmless (PKU safe responses, HH-RLHF chosen turns, ...).

No model calls and no verification: the dataset's label is the verdict. An answer identical to
the item's unsafe answer carries two labels and is dropped and counted. Never writes files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dataset_builders.stages.base import Plan, Stage, StageContext, Unknown, Work
from dataset_builders.stages.common import (
    Progress,
    StageResult,
    clip_answer,
    no_progress,
    normalise,
)
from dataset_builders.stages.items import Item, Mistake

if TYPE_CHECKING:
    from dataset_builders.config import BuildConfig


def harmless_answers(
    items: Sequence[Item], progress: Progress = no_progress, max_chars: int | None = None
) -> StageResult:
    """One `Mistake` with label harmless per train red-team item that holds a safe answer
    (cut to `max_chars`, as the harmful ones are).

    HH-RLHF's label is relative: `chosen` is the *less* harmful of two turns, not a certified
    safe answer; PKU-SafeRLHF labels each response on its own.
    """
    result = StageResult(records=[])
    out: list[Mistake] = []
    for item in items:
        if item.role != "redteam" or item.split != "train":
            continue
        progress(1)
        good = clip_answer(item.row.safe_answer or "", max_chars)
        if not good:
            result.add("no_harmless_answer")
            continue
        raw = item.row.safe_answer or ""
        if item.row.unsafe_answer and normalise(item.row.unsafe_answer) == normalise(raw):
            result.add("conflicting_labels")
            continue
        out.append(
            Mistake(
                uid=item.uid,
                instruction=item.instruction,
                input=item.input,
                bad=good,
                source=item.row.source,
                mistake_source="origin",
                verdict=False,
                verdict_by="label",
                label="harmless",
            )
        )
    return result.keep(out)


class HarmlessStage(Stage):
    name = "harmless"
    writes = "harmless"
    enabled_by = "analyses.balanced"

    def inputs(self, work: Work) -> list:
        return work.train_redteam()

    def run(self, ctx: StageContext, records: Sequence, progress: Progress) -> StageResult:
        return harmless_answers(records, progress, ctx.cfg.mistakes.max_answer_chars)

    def plan(self, cfg: BuildConfig, records: Sequence, unknown: Unknown, render_chat=None) -> Plan:
        found = harmless_answers(records, max_chars=cfg.mistakes.max_answer_chars)
        return Plan(outputs=[(m, 0) for m in found.records])


STAGE = HarmlessStage()
