"""The registry of the build's stages after select, in the order they run: one line each.

A stage is one module with a `Stage` subclass (see `stages/base.py`) and its `STAGE` instance;
the pipeline, the dry run, the model preload and the context bound loop over `STAGES`. Adding a
stage = one new module + one line here. Never runs anything itself.
"""

from __future__ import annotations

from dataset_builders.stages import analyses, harmless, mistakes, revise, verify
from dataset_builders.stages.base import Stage

STAGES: tuple[Stage, ...] = (
    mistakes.STAGE,
    verify.STAGE,
    harmless.STAGE,
    analyses.STAGE,
    revise.STAGE,
)
