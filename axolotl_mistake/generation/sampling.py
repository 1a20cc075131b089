"""Per-row seeded sampling for `transformers.generate()` (temperature, top-p), as a logits processor.

Each row draws from its own `torch.Generator`, so a request's sample never depends on its batch
neighbours. Imported only when a transformers backend samples: it must stay free of other state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import LogitsProcessor


class SeededSampler(LogitsProcessor):
    """A logits processor that samples each row with its own generator (temperature, top-p).

    Returns scores that are 0 at the drawn token and -inf elsewhere, so greedy decoding in
    `generate()` picks exactly that token; rows never share random state.
    """

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float):
        self.seeds = list(seeds)
        self.temperature = temperature
        self.top_p = top_p
        self._generators: list[Any] | None = None

    def __call__(self, input_ids, scores):
        import torch

        if self._generators is None:
            self._generators = [
                torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds
            ]
        probs = (scores.float() / self.temperature).softmax(dim=-1)
        order = None
        if self.top_p < 1.0:  # nucleus: keep the most likely tokens until their mass >= top_p
            vocab = probs.shape[-1]
            top, order = probs.topk(min(vocab, 1024), dim=-1)  # cheap when the nucleus is small
            if top.shape[-1] < vocab and not bool((top.sum(dim=-1) >= self.top_p).all()):
                top, order = probs.sort(dim=-1, descending=True)
            before = top.cumsum(dim=-1) - top
            probs = top * (before < self.top_p)
        cdf = probs.cumsum(dim=-1)
        draws = torch.stack(
            [torch.rand((), generator=g, device=scores.device) for g in self._generators]
        )
        targets = (draws * cdf[:, -1]).unsqueeze(1)  # inverse-CDF sampling, one draw per row
        chosen = torch.searchsorted(cdf, targets, right=True).clamp_(max=cdf.shape[1] - 1)
        if order is not None:
            chosen = order.gather(1, chosen)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen, 0.0)
        return out
