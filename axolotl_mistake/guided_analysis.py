"""Axolotl strategy `type: axolotl_mistake.guided_analysis` — template (b), Alpaca style.

For training an analyst model: the prompt says the answer is potentially harmful and asks
why. Only the critique and its EOS receive loss; never the bad answer.
"""

from __future__ import annotations

from axolotl_mistake.strategies_common import AlpacaAnalysisStrategy
from axolotl_mistake.templates import guided_analysis_prompt


class GuidedAnalysisStrategy(AlpacaAnalysisStrategy):
    """(instruction, bad answer) -> critique, with the guided prompt (b)."""

    strategy_name = "axolotl_mistake.guided_analysis"
    template = staticmethod(guided_analysis_prompt)


load = GuidedAnalysisStrategy.load
