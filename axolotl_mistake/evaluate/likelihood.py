"""Helpfulness without a judge: the evaluated model's mean per-token negative log-likelihood of
held-out reference answers (e.g. Alpaca `output`), given the prompt it would answer.

The prompt is rendered exactly as for answering (Alpaca text or the chat template, plain or
harmless-guided); only the reference answer's tokens are scored, with the adapter applied. Lower
is better: the model finds good answers likelier. Needs a local model (an endpoint gives no
token log-probabilities here). Reads a model; never trains and never samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from axolotl_mistake.evaluate.inference import Mode, PromptFormat, build_request
from axolotl_mistake.evaluate.prompt_sets import EvalItem
from axolotl_mistake.generation.common import encode_request, request_messages
from axolotl_mistake.left_padding import forward_last, left_pad, mask_positions
from axolotl_mistake.mistral_common import chat_ids, is_mistral_common

SCORED_POSITIONS_PER_BATCH = 2048
"""Bounds one forward's logits (rows x scored positions x vocabulary)."""


@dataclass
class Scored:
    """One item's reference answer as token ids after its prompt's ids."""

    index: int
    prompt: list[int]
    answer: list[int]


def encode_reference(tokenizer: Any, chat: str, item: EvalItem, mode: Mode, fmt: PromptFormat):
    """(prompt ids, answer ids) of an item's reference answer, split as the joint encoding does:
    the prompt's ids as `encode_request` gives them (what the model sees when it answers), the
    answer's as the prompt followed by the answer encodes. A mistral-common chat encodes the
    answer as the assistant's turn (its closing EOS not scored, as no other answer's is)."""
    request = build_request(item, mode, fmt)
    reference = item.reference or ""
    text, prompt = encode_request(request, tokenizer, chat)
    messages = request_messages(request, tokenizer, chat)
    if messages is not None and is_mistral_common(tokenizer):
        turn = {"role": "assistant", "content": reference}
        joint = chat_ids(tokenizer, [*messages, turn], generation_prompt=False)
        if joint and joint[-1] == tokenizer.eos_token_id:
            joint = joint[:-1]
    else:
        special = messages is None
        joint = list(tokenizer(text + reference, add_special_tokens=special)["input_ids"])
    if joint[: len(prompt)] == prompt:
        return prompt, joint[len(prompt) :]
    answer = tokenizer(reference, add_special_tokens=False)["input_ids"]
    return prompt, list(answer)  # the answer merged with the prompt's last token: score alone


def reference_nll(
    model: Any,
    tokenizer: Any,
    items: Sequence[EvalItem],
    mode: Mode,
    fmt: PromptFormat,
    *,
    chat: str = "auto",
    max_context: int | None = None,
    batch_size: int = 8,
) -> tuple[list[float | None], list[str]]:
    """Per item: mean NLL (nats/token) of its reference answer, None when it has none or it
    does not fit `max_context`; and the ids of the items dropped for length."""
    tokens, dropped = reference_token_nll(
        model,
        tokenizer,
        items,
        mode,
        fmt,
        chat=chat,
        max_context=max_context,
        batch_size=batch_size,
    )
    return [None if t is None else sum(t) / len(t) for t in tokens], dropped


def reference_token_nll(
    model: Any,
    tokenizer: Any,
    items: Sequence[EvalItem],
    mode: Mode,
    fmt: PromptFormat,
    *,
    chat: str = "auto",
    max_context: int | None = None,
    batch_size: int = 8,
) -> tuple[list[list[float] | None], list[str]]:
    """Per item: the NLL of each token of its reference answer, in order (where in an answer a
    cost falls: its opening tokens or throughout); None and the dropped ids as above."""
    import torch

    values: list[list[float] | None] = [None] * len(items)
    todo: list[Scored] = []
    dropped: list[str] = []
    for index, item in enumerate(items):
        if not item.reference or not item.reference.strip():
            continue
        prompt, answer = encode_reference(tokenizer, chat, item, mode, fmt)
        if not answer:
            continue
        if max_context is not None and len(prompt) + len(answer) > max_context:
            dropped.append(item.id)
            continue
        todo.append(Scored(index, prompt, answer))
    todo.sort(key=lambda s: len(s.prompt) + len(s.answer), reverse=True)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in _batches(todo, batch_size):
                for scored, nll in zip(batch, _batch_token_nll(model, batch, pad, device)):
                    values[scored.index] = nll
    finally:
        model.train(was_training)
    return values, dropped


def _batches(todo: list[Scored], batch_size: int):
    """Runs of at most `batch_size` rows whose scored positions stay within the budget."""
    batch: list[Scored] = []
    for scored in todo:
        longest = max([len(s.answer) for s in batch] + [len(scored.answer)])
        if batch and (
            len(batch) >= batch_size or (len(batch) + 1) * longest > SCORED_POSITIONS_PER_BATCH
        ):
            yield batch
            batch = []
        batch.append(scored)
    if batch:
        yield batch


def _batch_token_nll(model: Any, batch: list[Scored], pad: int, device: Any) -> list[list[float]]:
    """Left-padded forward; the logits of the last `keep` positions predict each answer."""
    import torch

    keep = max(len(s.answer) for s in batch) + 1
    ids, mask = left_pad([s.prompt + s.answer for s in batch], pad)
    logits = forward_last(
        model,
        keep,
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=mask_positions(mask).to(device),
        use_cache=False,
    )
    result = []
    for row, scored in enumerate(batch):
        n = len(scored.answer)
        logp = torch.log_softmax(logits[row, keep - 1 - n : keep - 1].float(), dim=-1)
        target = torch.tensor(scored.answer, device=logp.device)[:, None]
        result.append((-logp.gather(1, target))[:, 0].tolist())
    return result
