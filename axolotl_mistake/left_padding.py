"""Left-padded batches for one forward pass of a causal LM: the probe, the likelihood scorer and
the transformers backend's shared prompt pass all build them.

Left padding puts every row's last token in the last column, so the logits of the last `keep`
positions are each row's own. Positions are counted from the attention mask, so a padded row
sees the positions it would see alone. Pad columns are masked: the value they get never reaches
a real token's output. They get 1, as `generate()` gives them, so one convention holds
everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """`(input_ids, attention_mask)`, long tensors of shape (rows, longest), on the CPU."""
    import torch

    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    return ids, mask


def mask_positions(mask: Any, offset: int = 0) -> Any:
    """Each real token's position among its row's real tokens, plus `offset` (the length of a
    cached prefix the row continues); pad columns get `1 + offset`."""
    positions = mask.long().cumsum(-1) - 1
    positions.masked_fill_(mask == 0, 1)
    return positions + offset


def forward_last(model: Any, keep: int, **kwargs: Any) -> Any:
    """`model(**kwargs)` asking for the logits of the last `keep` positions only; the logits
    tensor (rows, keep, vocab), sliced here when the model returned more.

    A model without `logits_to_keep` (older or custom) raises TypeError and is called again
    without it. The scorers call this, not a signature check: they may hold a PEFT wrapper,
    whose forward() takes `**kwargs` and hands them on, so its signature does not say.
    """
    try:
        out = model(**kwargs, logits_to_keep=keep)
    except TypeError:
        out = model(**kwargs)
    logits = out.logits if hasattr(out, "logits") else out[0]
    return logits[:, -keep:]
