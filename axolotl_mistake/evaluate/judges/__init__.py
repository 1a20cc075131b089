"""Judges by registry: `JUDGES` maps a kind to its config class; `JudgeConfig` is their union,
discriminated by `kind`, and each config's `build()` makes the judge.

Adding a judge kind is one new module here (a `JudgeConfigBase` subclass with
`kind: Literal["name"]` and `build()`, and a class following the `Judge` protocol) plus one line
in `JUDGES`. Nothing else in the evaluation names a kind.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Annotated, Union

from pydantic import Field

from axolotl_mistake.evaluate.judges.base import (
    Judge,
    JudgeConfigBase,
    JudgeContext,
    JudgeItem,
    Verdict,
)

JUDGES: dict[str, str] = {
    "llm": "axolotl_mistake.evaluate.judges.llm:LLMJudgeConfig",
    "self": "axolotl_mistake.evaluate.judges.llm:SelfJudgeConfig",
    "refusal": "axolotl_mistake.evaluate.judges.refusal:RefusalJudgeConfig",
    "guard": "axolotl_mistake.evaluate.judges.guard:GuardJudgeConfig",
}
"""kind -> "module:ConfigClass"."""


@cache
def judge_classes() -> dict[str, type[JudgeConfigBase]]:
    """kind -> config class, checked to declare the kind it is registered under."""
    out: dict[str, type[JudgeConfigBase]] = {}
    for kind, target in JUDGES.items():
        module, _, name = target.partition(":")
        cls = getattr(importlib.import_module(module), name)
        if not (isinstance(cls, type) and issubclass(cls, JudgeConfigBase)):
            raise TypeError(f"{target} is not a JudgeConfigBase subclass")
        if cls.model_fields["kind"].default != kind:
            raise TypeError(f"{target} declares kind {cls.model_fields['kind'].default!r}")
        out[kind] = cls
    return out


JudgeConfig = Annotated[
    Union[tuple(judge_classes().values())],  # type: ignore[valid-type]  # noqa: UP007
    Field(discriminator="kind"),
]
"""One judge block of eval.yml; `kind` picks the class."""

__all__ = [
    "JUDGES",
    "Judge",
    "JudgeConfig",
    "JudgeConfigBase",
    "JudgeContext",
    "JudgeItem",
    "Verdict",
    "judge_classes",
]
