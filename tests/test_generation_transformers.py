"""The transformers backend: batching, left padding, order, stop strings, seeded sampling."""

from __future__ import annotations

import pytest

from axolotl_mistake.generation import (
    CONTEXT_LENGTH_EXCEEDED,
    GenerationRequest,
    SamplingParams,
    context_error,
)
from axolotl_mistake.generation.config import BackendConfig
from axolotl_mistake.generation.factory import load_backend
from axolotl_mistake.generation.transformers import TransformersBackend

PROMPTS = [
    "Hi",
    "Write a short poem about the sea and the wind over the harbour at night.",
    "List three colours.",
    "Explain, in a few sentences, why the sky looks blue during the day but red at sunset.",
    "2+2=",
    "Name a fruit that is yellow and long.",
]


@pytest.fixture(scope="module")
def backend(tiny_model_dir) -> TransformersBackend:
    return TransformersBackend.load(str(tiny_model_dir), batch_size=4, device="cpu")


def _single(backend: TransformersBackend) -> TransformersBackend:
    """The same loaded model, one prompt per generate() call."""
    return TransformersBackend(
        backend.model, backend.tokenizer, model_id=backend.model_id, batch_size=1
    )


def _requests(prompts, **kw):
    return [GenerationRequest(prompt=p, **kw) for p in prompts]


def test_batched_greedy_equals_one_at_a_time(backend):
    params = SamplingParams(max_new_tokens=12)
    batched = backend.generate(_requests(PROMPTS), params)
    single = _single(backend).generate(_requests(PROMPTS), params)
    assert all(c.ok for c in batched)
    assert [c.text for c in batched] == [c.text for c in single]
    assert [c.completion_tokens for c in batched] == [c.completion_tokens for c in single]
    assert any(c.text for c in batched)


def test_left_padding_matches_unpadded_generate(backend):
    """The shortest prompt, padded in a batch with the longest, equals raw generate()."""
    import torch

    params = SamplingParams(max_new_tokens=10)
    out = backend.generate(_requests([PROMPTS[3], PROMPTS[0]]), params)
    ids = backend.tokenizer(PROMPTS[0], return_tensors="pt")
    with torch.inference_mode():
        raw = backend.model.generate(
            **ids,
            max_new_tokens=10,
            do_sample=False,
            pad_token_id=backend.pad_id,
            eos_token_id=backend.eos_ids,
        )
    new = raw[0, ids["input_ids"].shape[1] :].tolist()
    if backend.eos_ids[0] in new:
        new = new[: new.index(backend.eos_ids[0])]
    assert out[1].text == backend.tokenizer.decode(new, skip_special_tokens=True)
    assert out[1].prompt_tokens == ids["input_ids"].shape[1]


def test_order_preserved_under_length_sorting(backend):
    params = SamplingParams(max_new_tokens=6)
    forward = backend.generate(_requests(PROMPTS), params)
    order = [4, 1, 5, 0, 3, 2]
    shuffled = backend.generate(_requests([PROMPTS[i] for i in order]), params)
    assert [c.text for c in shuffled] == [forward[i].text for i in order]
    assert [c.prompt_tokens for c in shuffled] == [forward[i].prompt_tokens for i in order]
    lengths = [len(backend.tokenizer(p)["input_ids"]) for p in PROMPTS]
    assert [c.prompt_tokens for c in forward] == lengths


def test_length_finish_reason_and_token_counts(backend):
    params = SamplingParams(max_new_tokens=5)
    for c in backend.generate(_requests(PROMPTS), params):
        assert c.finish_reason in ("stop", "length")
        assert c.completion_tokens <= 5
        if c.finish_reason == "length":
            assert c.completion_tokens == 5


def test_stop_strings_truncate(backend):
    params = SamplingParams(max_new_tokens=24)
    full = backend.generate(_requests(PROMPTS), params)
    index = max(range(len(full)), key=lambda i: len(full[i].text))
    text = full[index].text
    assert len(text) >= 8, text
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    expected = text[: text.find(stop)]
    cut = backend.generate(
        _requests([PROMPTS[index]]), SamplingParams(max_new_tokens=24, stop=(stop,))
    )[0]
    assert cut.text == expected
    assert cut.finish_reason == "stop"
    assert stop not in cut.text


def test_an_empty_stop_string_stops_nothing(backend):
    """An empty stop string matches no text (`truncate_at_stop` skips it): the answer must be
    the one without it, not cut after the first token with finish_reason 'stop' (what a
    client sending `"stop": ""` through the server got)."""
    params = SamplingParams(max_new_tokens=8)
    full = backend.generate(_requests(PROMPTS[:2]), params)
    for stop in [("",), ("", "zz-never-zz")]:
        got = backend.generate(_requests(PROMPTS[:2]), SamplingParams(max_new_tokens=8, stop=stop))
        assert [(c.text, c.finish_reason, c.completion_tokens) for c in got] == [
            (c.text, c.finish_reason, c.completion_tokens) for c in full
        ]


def test_sampling_is_seeded_per_request(backend):
    params = SamplingParams(max_new_tokens=16, temperature=1.0, seed=7)
    reqs = _requests(PROMPTS[:4])
    first = [c.text for c in backend.generate(reqs, params)]
    again = [c.text for c in backend.generate(reqs, params)]
    assert first == again
    # same sample alone (other batch, other neighbours) gives the same text
    alone = backend.generate([reqs[2]], params)[0].text
    assert alone == first[2]
    other_index = [c.text for c in backend.generate(_requests(PROMPTS[:4], sample_index=1), params)]
    assert all(a != b for a, b in zip(first, other_index))
    other_seed = [
        c.text
        for c in backend.generate(reqs, SamplingParams(max_new_tokens=16, temperature=1.0, seed=8))
    ]
    assert other_seed != first
    greedy = [c.text for c in backend.generate(reqs, SamplingParams(max_new_tokens=16))]
    assert greedy != first


def test_chat_rendering_modes(tiny_model_dir, backend):
    msgs = ({"role": "user", "content": "Say hello."},)
    text, templated = backend.render(GenerationRequest(messages=msgs))
    assert templated and "<|im_start|>assistant" in text and "Say hello." in text
    raw, templated = backend.render(GenerationRequest(prompt="Say hello."))
    assert raw == "Say hello." and not templated
    never = TransformersBackend(backend.model, backend.tokenizer, model_id="x", chat="never")
    assert never.render(GenerationRequest(messages=msgs)) == ("Say hello.", False)
    always = TransformersBackend(backend.model, backend.tokenizer, model_id="x", chat="always")
    wrapped, templated = always.render(GenerationRequest(prompt="Say hello."))
    assert templated and wrapped == text
    out = backend.generate([GenerationRequest(messages=msgs)], SamplingParams(max_new_tokens=4))
    assert out[0].ok and out[0].prompt_tokens == len(
        backend.tokenizer(text, add_special_tokens=False)["input_ids"]
    )


def test_one_bad_request_does_not_sink_the_batch(backend):
    out = backend.generate(_requests(["", "Hello there"]), SamplingParams(max_new_tokens=4))
    assert not out[0].ok and "empty prompt" in out[0].error
    assert out[1].ok


def test_prompt_longer_than_the_context_fails_without_running(backend):
    """The tiny model takes 2048 positions: a longer prompt comes back failed, not generated."""
    assert backend.max_context == 2048  # min(max_position_embeddings, tokenizer limit 8192)
    long_prompt = "word " * 3000
    short = GenerationRequest(prompt="Hello there")
    params = SamplingParams(max_new_tokens=8)
    out = backend.generate([GenerationRequest(prompt=long_prompt), short], params)
    assert not out[0].ok and out[0].extra["error_code"] == CONTEXT_LENGTH_EXCEEDED
    assert "2048" in out[0].error and "max_new_tokens 8" in out[0].error
    assert out[0].prompt_tokens > 2048 and out[0].completion_tokens == 0
    assert out[1].ok
    # the helper tells callers before they ask, for the raw and the cached backend alike
    assert context_error(backend, GenerationRequest(prompt=long_prompt), 8) == out[0].error
    assert context_error(backend, short, 8) is None
    fits = backend.count_prompt_tokens(short)
    assert context_error(backend, short, 2048 - fits) is None
    assert context_error(backend, short, 2049 - fits) is not None
    capped = TransformersBackend(backend.model, backend.tokenizer, model_id="x", max_context=16)
    assert capped.max_context == 16
    assert not capped.generate([GenerationRequest(prompt="word " * 12)], params)[0].ok


def test_load_backend_and_adapter(tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = load_backend(BackendConfig(model=str(tiny_model_dir), batch_size=2, device="cpu"))
    assert isinstance(base, TransformersBackend) and base.model_id == str(tiny_model_dir)
    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(
        lm,
        LoraConfig(
            r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False, lora_alpha=64
        ),
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    tuned = load_backend(
        BackendConfig(model=str(tiny_model_dir), adapter=str(tmp_path / "adapter"), device="cpu")
    )
    assert tuned.model_id.startswith(str(tiny_model_dir) + "+adapter@")
    params = SamplingParams(max_new_tokens=12)
    a = base.generate(_requests(PROMPTS[:3]), params)
    b = tuned.generate(_requests(PROMPTS[:3]), params)
    assert all(c.ok for c in a + b)
    assert [c.text for c in a] != [c.text for c in b]


@pytest.mark.slow
def test_embedded_model_batched_chat(embedded_model_dir):
    backend = TransformersBackend.load("embedded", batch_size=3, device="cpu")
    assert backend.model_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    reqs = [
        GenerationRequest(messages=({"role": "user", "content": q},))
        for q in (
            "What is the capital of France?",
            "Give me one tip for sleeping well.",
            "Translate 'thank you' into Spanish.",
        )
    ]
    params = SamplingParams(max_new_tokens=24)
    batched = backend.generate(reqs, params)
    single = _single(backend).generate(reqs, params)
    assert [c.text for c in batched] == [c.text for c in single]
    assert "paris" in batched[0].text.lower()
    assert all(c.completion_tokens > 0 for c in batched)


def test_seeded_sampler_top_p_and_row_independence():
    import torch

    from axolotl_mistake.generation.sampling import SeededSampler

    scores = torch.full((1, 2000), -20.0)
    scores[0, 7], scores[0, 11], scores[0, 3] = 5.0, 4.6, 1.0  # p ~ 0.58, 0.39, 0.02
    drawn = set()
    for seed in range(60):
        out = SeededSampler([seed], temperature=1.0, top_p=0.9)(None, scores.clone())
        assert int((out == 0).sum()) == 1
        drawn.add(int(out.argmax()))
    assert drawn == {7, 11}  # token 3 and the tail are outside the 0.9 nucleus
    other = torch.randn(1, 2000)
    alone = SeededSampler([42], 1.0, 1.0)(None, scores.clone()).argmax(-1)
    together = SeededSampler([7, 42], 1.0, 1.0)(None, torch.cat([other, scores])).argmax(-1)
    assert int(together[1]) == int(alone[0])


def test_a_row_cut_by_a_stop_string_counts_the_same_batched(backend):
    """A row a stop string ends early is padded while its batch goes on; with pad = EOS (the
    embedded model's tokenizer) that padding must not count as a generated EOS token."""
    assert backend.pad_id in backend.eos_ids  # the case under test
    params = SamplingParams(max_new_tokens=24)
    full = backend.generate(_requests(PROMPTS), params)
    index = max(range(len(full)), key=lambda i: len(full[i].text))
    text = full[index].text
    stop = (text[len(text) // 3 : len(text) // 3 + 3],)
    params = SamplingParams(max_new_tokens=24, stop=stop)
    batched = backend.generate(_requests(PROMPTS), params)
    single = _single(backend).generate(_requests(PROMPTS), params)
    assert batched[index].finish_reason == "stop" and len(batched[index].text) < len(text)
    assert [(c.text, c.completion_tokens) for c in batched] == [
        (c.text, c.completion_tokens) for c in single
    ]


def test_samples_of_one_prompt_share_its_prompt_pass(backend):
    """k samples per prompt (a builder's k analyses): the prompt pass runs once per distinct
    prompt, in a batch that splits one prompt's samples too, and every completion equals the
    plain path's, sampled and greedy."""
    reqs = [GenerationRequest(prompt=p, sample_index=j) for p in PROMPTS[1:4] for j in range(3)]

    def with_sharing(share: bool) -> TransformersBackend:
        return TransformersBackend(
            backend.model,
            backend.tokenizer,
            model_id=backend.model_id,
            batch_size=4,
            share_prefixes=share,
        )

    shapes: list[tuple[int, int]] = []

    def record(_module, _args, kwargs):
        shapes.append(tuple(kwargs["input_ids"].shape))

    for params in (
        SamplingParams(max_new_tokens=12, temperature=1.0, seed=3),
        SamplingParams(max_new_tokens=12),
    ):
        plain = with_sharing(False).generate(reqs, params)
        shapes.clear()
        hook = backend.model.register_forward_pre_hook(record, with_kwargs=True)
        try:
            shared = with_sharing(True).generate(reqs, params)
        finally:
            hook.remove()
        assert [(c.text, c.completion_tokens) for c in shared] == [
            (c.text, c.completion_tokens) for c in plain
        ]
        # batches of 4 rows, longest prompt first: 2 distinct prompts, then 2, then 1 row alone
        prompt_passes = [s for s in shapes if s[1] > 1]
        assert [rows for rows, _ in prompt_passes] == [2, 2, 1]
    greedy = [c.text for c in shared]  # the last loop's: a prompt's three samples agree
    assert len(set(greedy[:3])) == 1


def test_a_sliding_window_model_takes_the_plain_path(backend):
    """A sliding-window model is not handed a shared prompt cache (the two paths sampled
    differently for a random-weight Mistral with an 8-token window)."""
    from transformers import MistralConfig, MistralForCausalLM

    tok = backend.tokenizer
    config = MistralConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        sliding_window=8,
    )
    sliding = TransformersBackend(MistralForCausalLM(config), tok, model_id="tiny-mistral")
    assert not sliding.share_prefixes
    config.sliding_window = None
    full = TransformersBackend(MistralForCausalLM(config), tok, model_id="tiny-mistral")
    assert full.share_prefixes
