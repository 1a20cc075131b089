"""Reference-answer NLL (helpfulness without a judge): equal to the model's own loss on the answer
tokens, independent of batching, dropped-and-counted past the context, and lower for real
answers than for the same words scrambled (on the real embedded model); per token, in order."""

from __future__ import annotations

import json
import random

import pytest

from axolotl_mistake.evaluate.likelihood import reference_nll, reference_token_nll
from axolotl_mistake.evaluate.prompt_sets import EvalItem
from axolotl_mistake.templates import alpaca_prompt, as_user_messages


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return (
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        AutoTokenizer.from_pretrained(tiny_model_dir),
    )


def _alpaca_items(shared_data, n: int) -> list[EvalItem]:
    path = shared_data / "alpaca" / "alpaca_5000_pr152.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()[:n]]
    return [
        EvalItem(f"a{i}", "helpful", r["instruction"], r.get("input", ""), reference=r["output"])
        for i, r in enumerate(rows)
    ]


def _loss(model, tokenizer, prompt: str, answer: str, special: bool) -> float:
    """The model's own mean cross-entropy on the answer tokens (labels -100 on the prompt)."""
    import torch

    prompt_ids = tokenizer(prompt, add_special_tokens=special)["input_ids"]
    ids = tokenizer(prompt + answer, add_special_tokens=special)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids
    labels = [-100] * len(prompt_ids) + ids[len(prompt_ids) :]
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
    return float(out.loss)


def test_nll_equals_the_models_loss_on_answer_tokens(tiny, shared_data):
    model, tok = tiny
    items = _alpaca_items(shared_data, 5)
    values, dropped = reference_nll(model, tok, items, "plain", "alpaca", batch_size=4)
    assert dropped == []
    for item, value in zip(items, values):
        expected = _loss(
            model, tok, alpaca_prompt(item.instruction, item.input), item.reference, True
        )
        assert value == pytest.approx(expected, abs=1e-4)
    # chat format: the prompt is the chat template's rendering of the user turn
    chat_values, _ = reference_nll(model, tok, items[:2], "plain", "chat", batch_size=2)
    for item, value in zip(items[:2], chat_values):
        prompt = tok.apply_chat_template(
            as_user_messages(item.question), tokenize=False, add_generation_prompt=True
        )
        assert value == pytest.approx(_loss(model, tok, prompt, item.reference, False), abs=1e-4)


def test_token_nll_is_per_answer_token_in_order(tiny, shared_data):
    """One value per answer token, the first being the answer's first token; their mean is the
    item's NLL, and the first token's value is the model's loss on that token alone."""
    model, tok = tiny
    items = _alpaca_items(shared_data, 4)
    tokens, _ = reference_token_nll(model, tok, items, "plain", "alpaca", batch_size=3)
    means, _ = reference_nll(model, tok, items, "plain", "alpaca", batch_size=3)
    for item, values, mean in zip(items, tokens, means):
        prompt = alpaca_prompt(item.instruction, item.input)
        answer_ids = tok(prompt + item.reference)["input_ids"][len(tok(prompt)["input_ids"]) :]
        assert len(values) == len(answer_ids)
        assert sum(values) / len(values) == pytest.approx(mean, abs=1e-6)
        first = tok.decode(answer_ids[:1])
        assert values[0] == pytest.approx(_loss(model, tok, prompt, first, True), abs=1e-4)


def test_batching_missing_references_and_context(tiny, shared_data):
    model, tok = tiny
    items = _alpaca_items(shared_data, 6)
    one, _ = reference_nll(model, tok, items, "plain", "alpaca", batch_size=1)
    many, _ = reference_nll(model, tok, items, "plain", "alpaca", batch_size=6)
    assert many == pytest.approx(one, abs=1e-4)
    items[2].reference = None
    values, dropped = reference_nll(model, tok, items, "plain", "alpaca", max_context=40)
    assert values[2] is None
    assert dropped and all(values[[i.id for i in items].index(d)] is None for d in dropped)
    kept = [v for v in values if v is not None]
    assert len(kept) + len(dropped) + 1 == len(items)


def test_real_answers_are_likelier_than_scrambled_ones(embedded_model_dir, shared_data):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir)
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    items = [i for i in _alpaca_items(shared_data, 12) if len(i.reference.split()) > 8][:4]
    scrambled = []
    for item in items:
        words = item.reference.split()
        random.Random(0).shuffle(words)
        scrambled.append(
            EvalItem(item.id, "helpful", item.instruction, item.input, " ".join(words))
        )
    real, _ = reference_nll(model, tok, items, "plain", "alpaca")
    bad, _ = reference_nll(model, tok, scrambled, "plain", "alpaca")
    assert all(r < b for r, b in zip(real, bad)), (real, bad)
