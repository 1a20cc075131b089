"""Judges by registry: `JUDGES` maps a kind to its config class; `JudgeConfig` is their union,
discriminated by `kind`, and each config's `build()` makes the judge.

Adding a judge kind is one new module here (a `JudgeConfigBase` subclass with
`kind: Literal["name"]` and `build()`, and a class following the `Judge` protocol) plus one line
in `JUDGES`. Nothing else in the evaluation names a kind.
"""

from __future__ import annotations

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
from axolotl_mistake.registry import registered_classes

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
    return registered_classes(JUDGES, JudgeConfigBase)


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
