"""`type: tests.control.no_critique_loss`: template (c) rows with the critique loss switched off.

The same prompts and tokens as `axolotl_mistake.unguided_analysis`, but every critique token is
masked; only the final EOS keeps its label (so Axolotl keeps the rows and training runs as
usual). The positive control (tests/test_positive_control.py) must fail with it.
"""

from __future__ import annotations

from typing import Any

from axolotl_mistake.strategies_common import build_strategy
from axolotl_mistake.unguided_analysis import UnguidedAnalysisStrategy


class NoCritiqueLoss(UnguidedAnalysisStrategy):
    """Unguided analysis rows whose critique gets no loss (all but the closing EOS masked)."""

    def token_spans(self, rows):
        return [(p + r[:-1], r[-1:], after) for p, r, after in super().token_spans(rows)]


def load(tokenizer: Any, cfg: Any, ds_cfg: Any = None, processor: Any = None):
    return build_strategy(NoCritiqueLoss, tokenizer, cfg, ds_cfg)
