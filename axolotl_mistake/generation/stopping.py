"""Stop strings for tokenizers whose vocabulary transformers' `StopStringCriteria` cannot read.

`StopStringCriteria` precomputes, from the tokenizer's vocabulary, which tokens can complete a
stop string; it needs `convert_ids_to_tokens` of a slow or fast HF tokenizer, which
mistral-common's tokenizer does not provide (an AttributeError at construction). This criterion
decodes each row's generated tokens instead and stops the row once its text holds a stop string:
the same rule as the text cut in the backend (`truncate_at_stop`), at the cost of one decode per
row and step.
"""

from __future__ import annotations

from typing import Any

from transformers import StoppingCriteria


class DecodedStopStrings(StoppingCriteria):
    """Ends a row once the text generated after column `start` contains any of `stop`."""

    def __init__(self, tokenizer: Any, stop: tuple[str, ...], start: int) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)  # "" matches no text (truncate_at_stop)
        self.start = start

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        tails = self.tokenizer.batch_decode(
            input_ids[:, self.start :].tolist(), skip_special_tokens=True
        )
        hits = [any(s in text for s in self.stop) for text in tails]
        return torch.tensor(hits, dtype=torch.bool, device=input_ids.device)
