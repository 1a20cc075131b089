"""The registry of the build's stages after select, in the order they run: one line each.

A stage is one module with a `Stage` subclass (see `stages/base.py`) and its `STAGE` instance;
the pipeline, the dry run, the model preload and the context bound loop over `STAGES`. Adding a
stage = one new module + one line in `STAGE_ENTRIES`. Never runs anything itself.
"""

from __future__ import annotations

from axolotl_mistake.registry import resolve
from dataset_builders.stages.base import Stage

STAGE_ENTRIES: tuple[str, ...] = (
    "dataset_builders.stages.mistakes:STAGE",
    "dataset_builders.stages.verify:STAGE",
    "dataset_builders.stages.harmless:STAGE",
    "dataset_builders.stages.analyses:STAGE",
    "dataset_builders.stages.revise:STAGE",
)
""""module:STAGE" of every stage, in run order."""


def _stages() -> tuple[Stage, ...]:
    stages = tuple(resolve(entry) for entry in STAGE_ENTRIES)
    for entry, stage in zip(STAGE_ENTRIES, stages):
        if not isinstance(stage, Stage):
            raise TypeError(f"{entry} is not a Stage instance")
    return stages


STAGES: tuple[Stage, ...] = _stages()
"""The build's stages: select, then these, then emit."""
