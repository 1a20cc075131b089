"""Axolotl strategy `type: axolotl_mistake.unguided_analysis` — template (c), Alpaca style.

Rows {instruction, bad, critique, input?}: the model learns to critique an answer with no hint
that it is harmful. Only the critique and its EOS receive loss; never the bad answer.
"""

from __future__ import annotations

from axolotl_mistake.strategies_common import AlpacaAnalysisStrategy
from axolotl_mistake.templates import unguided_analysis_prompt


class UnguidedAnalysisStrategy(AlpacaAnalysisStrategy):
    """(instruction, bad answer) -> critique, with the unguided prompt (c)."""

    strategy_name = "axolotl_mistake.unguided_analysis"
    template = staticmethod(unguided_analysis_prompt)


load = UnguidedAnalysisStrategy.load
