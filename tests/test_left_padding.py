"""The left-padded batch every scorer and the shared prompt pass build: a padded row's logits are
the row's own, and a model without `logits_to_keep` is still scored."""

from __future__ import annotations

import pytest
import torch

from axolotl_mistake.left_padding import forward_last, left_pad, mask_positions


def test_rows_are_right_aligned_and_positions_count_real_tokens():
    ids, mask = left_pad([[5, 6, 7], [8], []], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert mask_positions(mask).tolist() == [[0, 1, 2], [1, 1, 0], [1, 1, 1]]
    assert mask_positions(mask, offset=4).tolist() == [[4, 5, 6], [5, 5, 4], [5, 5, 5]]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()


@pytest.fixture(scope="module")
def tiny_absolute():
    """A random GPT-2: learned absolute positions, so a row scored at wrong positions differs
    (rotary models see only relative positions, and a shifted row scores the same there)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=2,
        vocab_size=64,
        n_positions=64,
        bos_token_id=1,
        eos_token_id=2,
    )
    return GPT2LMHeadModel(config).eval()


def _alone(model, seq: list[int], keep: int) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=torch.tensor([seq])).logits[0, -keep:]


@pytest.mark.parametrize("name", ["tiny", "tiny_absolute"])
def test_a_padded_row_gets_the_logits_it_gets_alone(name, request):
    model = request.getfixturevalue(name)
    seqs = [[11, 12, 13, 14, 15, 16], [21, 22, 23], [31, 32, 33, 34]]  # ids < 64 (GPT-2's)
    ids, mask = left_pad(seqs, pad_id=0)
    with torch.inference_mode():
        logits = forward_last(
            model,
            2,
            input_ids=ids,
            attention_mask=mask,
            position_ids=mask_positions(mask),
            use_cache=False,
        )
    assert logits.shape[:2] == (3, 2)  # only the kept positions were computed
    for row, seq in enumerate(seqs):
        torch.testing.assert_close(logits[row], _alone(model, seq, 2), atol=1e-4, rtol=1e-4)


class _NoKeep(torch.nn.Module):
    """A custom model whose forward() has no `logits_to_keep` (it raises TypeError on it)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=False):
        return self.inner(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
        )


def test_a_model_without_logits_to_keep_is_called_without_it(tiny):
    ids, mask = left_pad([[11, 12, 13], [21]], pad_id=0)
    with torch.inference_mode():
        logits = forward_last(_NoKeep(tiny), 2, input_ids=ids, attention_mask=mask)
    assert logits.shape[1] == 2  # the model returned every position; the last two are kept
    torch.testing.assert_close(logits[0], _alone(tiny, [11, 12, 13], 2), atol=1e-4, rtol=1e-4)
