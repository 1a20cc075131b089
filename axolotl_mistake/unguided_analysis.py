"""Axolotl strategy `type: axolotl_mistake.unguided_analysis` — template (c), Alpaca style.

Rows {instruction, bad, critique, input?}: the model learns to critique an answer with no hint
that it is harmful. Only the critique and its EOS receive loss; never the bad answer.
"""

from __future__ import annotations

from typing import Any

from axolotl_mistake.strategies_common import MistakeAnalysisTokenizingStrategy, build_strategy
from axolotl_mistake.templates import unguided_analysis_prompt


class UnguidedAnalysisStrategy(MistakeAnalysisTokenizingStrategy):
    """(instruction, bad answer) -> critique, with the unguided prompt (c)."""

    strategy_name = "axolotl_mistake.unguided_analysis"

    def render_prompt(self, row: dict[str, str]) -> str:
        return unguided_analysis_prompt(row["instruction"], row["bad"], row["input"])


def load(tokenizer: Any, cfg: Any, ds_cfg: Any = None, processor: Any = None):
    """Entry point Axolotl calls for `type: axolotl_mistake.unguided_analysis`."""
    return build_strategy(UnguidedAnalysisStrategy, tokenizer, cfg, ds_cfg)
