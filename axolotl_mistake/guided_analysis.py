"""Axolotl strategy `type: axolotl_mistake.guided_analysis` — template (b), Alpaca style.

For training an analyst model: the prompt says the answer is potentially harmful and asks
why. Only the critique and its EOS receive loss; never the bad answer.
"""

from __future__ import annotations

from typing import Any

from axolotl_mistake.strategies_common import MistakeAnalysisTokenizingStrategy, build_strategy
from axolotl_mistake.templates import guided_analysis_prompt


class GuidedAnalysisStrategy(MistakeAnalysisTokenizingStrategy):
    """(instruction, bad answer) -> critique, with the guided prompt (b)."""

    strategy_name = "axolotl_mistake.guided_analysis"

    def render_prompt(self, row: dict[str, str]) -> str:
        return guided_analysis_prompt(row["instruction"], row["bad"], row["input"])


def load(tokenizer: Any, cfg: Any, ds_cfg: Any = None, processor: Any = None):
    """Entry point Axolotl calls for `type: axolotl_mistake.guided_analysis`."""
    return build_strategy(GuidedAnalysisStrategy, tokenizer, cfg, ds_cfg)
