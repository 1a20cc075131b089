"""Walk the registered stages without calling a model: the requests each would send, on
stand-ins for text not generated yet (each stand-in knows how many tokens it may still grow).

Serves the dry run (calls and tokens per stage) and the context bound (no request may outgrow
its model). Never calls a model, never writes files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dataset_builders.chat_prefill import ChatRenderer
from dataset_builders.config import BuildConfig
from dataset_builders.stages.base import Plan, Stage, Work, record_key
from dataset_builders.stages.items import Item
from dataset_builders.stages.registry import STAGES


@dataclass
class PlannedStage:
    """One enabled stage, the (stand-in) records it would read, and its plan."""

    stage: Stage
    inputs: list
    plan: Plan


def walk(
    cfg: BuildConfig, items: Sequence[Item], render_chat: ChatRenderer | None = None
) -> tuple[list[PlannedStage], Callable[[Any], int]]:
    """Plan every enabled stage in order on `items`; returns the plans and `unknown(record)`,
    the tokens of not-yet-generated text a record carries (0 for known text)."""
    work = Work(items=list(items))
    grows: dict[tuple, int] = {}

    def unknown(record: Any) -> int:
        return grows.get(record_key(record), 0)

    out: list[PlannedStage] = []
    for stage in STAGES:
        if not stage.enabled(cfg):
            continue
        records = stage.inputs(work)
        plan = stage.plan(cfg, records, unknown, render_chat)
        for record, n in plan.outputs:
            grows[record_key(record)] = n
        stage.store(work, [record for record, _ in plan.outputs])
        out.append(PlannedStage(stage, records, plan))
    return out, unknown
