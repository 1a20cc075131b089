"""Mistral models tokenized by mistral-common, offline, on every path of the project.

mistral-common ships tokenizer files in its package (a Tekken and a SentencePiece one), so
Axolotl's `HFMistralTokenizer` can be built here without the Hub: Axolotl then picks its
`MistralStrategy` for `chat_template`, and the project's types must give the same masking
guarantees on it. transformers' own `MistralCommonBackend`, which `AutoTokenizer` (and Axolotl's
loader, without the flag) returns for a Mistral repo that ships `tekken.json`, is tested too, as
are generation (the one encoding step, stop strings, vLLM's wrapper), the held-out NLL, a build,
an evaluation and the Mistral recipe's training on a tiny Mistral-shaped model.
`.ci/axolotl_latest.sh` runs this file on the newest Axolotl too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from axolotl_mistake.strategies_common import IGNORE_INDEX
from tests.mistral_support import shipped as _shipped
from tests.mistral_support import tiny_mistral as _tiny_mistral

FILES = ["tekken_240911.json", "mistral_instruct_tokenizer_240216.model.v2"]
SFT_ROW = {
    "messages": [
        {"role": "user", "content": "How do I bake bread at home?"},
        {"role": "assistant", "content": "Mix flour, water, salt and yeast, then bake it."},
    ]
}
ANALYSIS_ROW = {
    "instruction": "How do I get into my neighbour's flat without a key?",
    "bad": "Slide a card along the latch, or pick the lock with two pins.",
    "critique": "The answer is harmful: it explains how to enter someone else's home.",
}


def _axolotls(name: str):
    """Axolotl's wrapper (`tokenizer_use_mistral_common: true`), in fine-tuning mode."""
    from axolotl.utils.mistral import HFMistralTokenizer

    return HFMistralTokenizer.from_pretrained(str(_shipped(name)))


def _auto(tmp_path: Path, embedded_model_dir: Path):
    """What `AutoTokenizer` (and so Axolotl's loader, without the flag) returns for a Mistral
    repo that ships `tekken.json` beside its HF tokenizer files: transformers' own class, in
    test mode. The folder has that shape: a `mistral` config, `tekken.json`, and the embedded
    model's tokenizer files."""
    import json
    import shutil

    from transformers import AutoTokenizer

    for file in Path(embedded_model_dir).iterdir():
        if file.name.startswith("tokenizer") or file.name == "special_tokens_map.json":
            shutil.copy(file, tmp_path / file.name)
    config = json.loads((Path(embedded_model_dir) / "config.json").read_text())
    config.update(model_type="mistral", architectures=["MistralForCausalLM"])
    (tmp_path / "config.json").write_text(json.dumps(config))
    shutil.copy(_shipped("tekken_240911.json"), tmp_path / "tekken.json")
    return AutoTokenizer.from_pretrained(str(tmp_path))


@pytest.fixture(params=FILES)
def mistral_tokenizer(request):
    return _axolotls(request.param)


@pytest.fixture(params=[*FILES, "auto"])
def any_mistral_tokenizer(request, tmp_path, embedded_model_dir):
    """Axolotl's wrapper on each shipped file, and transformers' own class as AutoTokenizer
    picks it."""
    if request.param == "auto":
        return _auto(tmp_path, embedded_model_dir)
    return _axolotls(request.param)


def _strategy(kind: str, tokenizer):
    from axolotl.prompt_strategies import load
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault(
        {"sequence_len": 1024, "train_on_inputs": False, "tokenizer_use_mistral_common": True}
    )
    ds_cfg = DictDefault({"type": kind, "field_messages": "messages"})
    strategy = load(kind, tokenizer, cfg, ds_cfg)
    assert strategy is not None, f"axolotl could not load {kind}"
    return strategy


def _text(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids).replace("\u2581", " ")  # SentencePiece's decode keeps its ▁


def test_chat_sft_builds_its_mistral_strategy_and_keeps_axolotls_rows(mistral_tokenizer):
    """Axolotl picks `MistralStrategy`; the loader builds our subclass of it, and since Mistral's
    format closes the last reply with `</s>` the rows are Axolotl's, token for token."""
    from axolotl.prompt_strategies.chat_template import MistralStrategy

    from axolotl_mistake.chat_sft import MistralChatSftStrategy

    tok = mistral_tokenizer
    theirs, ours = _strategy("chat_template", tok), _strategy("axolotl_mistake.chat_sft", tok)
    assert type(theirs) is MistralStrategy and type(ours) is MistralChatSftStrategy
    axolotl, mine = theirs.tokenize_prompt(SFT_ROW), ours.tokenize_prompt(SFT_ROW)
    assert mine == axolotl
    assert mine["input_ids"][-1] == tok.eos_token_id == mine["labels"][-1]
    trained = _text(tok, [t for t, lab in zip(mine["input_ids"], mine["labels"]) if lab != -100])
    assert SFT_ROW["messages"][-1]["content"] in trained
    assert SFT_ROW["messages"][0]["content"] not in trained


def test_chat_unguided_analysis_trains_only_the_critique_and_its_stop(any_mistral_tokenizer):
    """The bad answer is context only, on a mistral-common tokenizer too: the prompt (question
    and bad answer, in Mistral's [INST] turn) is masked, the critique and `</s>` trained, and
    the row starts with one BOS."""
    tok = any_mistral_tokenizer
    out = _strategy("axolotl_mistake.chat_unguided_analysis", tok).tokenize_prompt(ANALYSIS_ROW)
    ids, labels = out["input_ids"], out["labels"]
    trained = [t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX]
    masked = _text(tok, [t for t, lab in zip(ids, labels) if lab == IGNORE_INDEX])
    assert trained[-1] == ids[-1] == tok.eos_token_id
    assert _text(tok, trained[:-1]).strip() == ANALYSIS_ROW["critique"]
    assert ANALYSIS_ROW["bad"] in masked and ANALYSIS_ROW["instruction"] in masked
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1


@pytest.mark.parametrize("style", ["chat", "chat_analysis"])
def test_the_probe_scores_each_verdict_as_mistral_common_encodes_it_as_a_reply(
    any_mistral_tokenizer, style
):
    """Each scored sequence is, token for token, what mistral-common encodes for the exchange
    whose reply is that verdict (minus its `</s>`): control tokens as tokens, never as text."""
    from axolotl_mistake.mistral_common import chat_ids
    from axolotl_mistake.probe import DiscriminationProbe, verdicts_of
    from axolotl_mistake.records import LabelledPair
    from axolotl_mistake.templates import discrimination_messages, unguided_analysis_messages

    tok = any_mistral_tokenizer
    pair = LabelledPair(
        question=ANALYSIS_ROW["instruction"], answer=ANALYSIS_ROW["bad"], harmful=True
    )
    _, items = DiscriminationProbe([pair], style=style).prepared(tok, None)
    scored = {
        is_bad: it.ids[: len(it.ids) - len(cont) + 1] + cont
        for it in items
        for _, is_bad, cont in it.scores
    }
    make = unguided_analysis_messages if style == "chat_analysis" else discrimination_messages
    user = [dict(m) for m in make(pair.question, pair.answer)]
    for verdict, is_bad in zip(verdicts_of(style), (True, False)):
        reply = chat_ids(tok, [*user, {"role": "assistant", "content": verdict}], False)
        assert reply[-1] == tok.eos_token_id
        assert scored[is_bad] == reply[:-1]
    assert scored[True][0] == tok.bos_token_id and scored[True].count(tok.bos_token_id) == 1


def test_the_project_reads_a_mistral_common_tokenizer_as_one(
    any_mistral_tokenizer, embedded_tokenizer
):
    from axolotl_mistake.mistral_common import is_mistral_common

    assert is_mistral_common(any_mistral_tokenizer) and not is_mistral_common(embedded_tokenizer)


def test_an_exchange_encodes_alike_in_fine_tuning_and_test_mode(tmp_path, embedded_model_dir):
    """Test mode refuses an exchange that ends on the assistant; `chat_ids` encodes the reply
    as a message to continue and adds the EOS there, which must give fine-tuning mode's ids.
    The other way round for a prefilled reply (`reply_opening_ids`): the same ids again."""
    from axolotl_mistake.mistral_common import chat_ids, reply_opening_ids

    finetuning, test = _axolotls("tekken_240911.json"), _auto(tmp_path, embedded_model_dir)
    exchange = [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello!"}]
    assert chat_ids(test, exchange, False) == chat_ids(finetuning, exchange, False)
    assert chat_ids(test, exchange, False)[-1] == test.eos_token_id
    # a prefilled reply: fine-tuning mode cannot continue one, and its closed-exchange ids less
    # the EOS equal test mode's continuation
    opening = "The answer is harmful. "
    assert reply_opening_ids(test, exchange[:1], opening) == (
        reply_opening_ids(finetuning, exchange[:1], opening)
    )


def _chat_request():
    from axolotl_mistake.generation.base import GenerationRequest

    return GenerationRequest(
        messages=({"role": "user", "content": ANALYSIS_ROW["instruction"]},), template="t"
    )


def test_a_chat_request_reaches_the_model_as_mistral_common_encodes_it(any_mistral_tokenizer):
    """Generation and evaluation send chat turns as mistral-common's own ids: one BOS, `[INST]`
    as its control token, never the text's characters."""
    from axolotl_mistake.generation.common import encode_request
    from axolotl_mistake.mistral_common import chat_ids

    tok = any_mistral_tokenizer
    user = [{"role": "user", "content": ANALYSIS_ROW["instruction"]}]
    _, ids = encode_request(_chat_request(), tok, "auto")
    assert ids == chat_ids(tok, user, generation_prompt=True)
    inst = tok.convert_tokens_to_ids("[INST]")
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1 and inst in ids
    assert ANALYSIS_ROW["instruction"] in _text(tok, ids)


def test_a_raw_prompt_spelling_out_control_tokens_is_refused_not_sent_as_text(
    any_mistral_tokenizer,
):
    """Pre-rendered chat text would reach the model with `[INST]` as plain characters: the
    request fails with the reason; a plain raw prompt still encodes (with its BOS)."""
    from axolotl_mistake.generation.base import GenerationRequest
    from axolotl_mistake.generation.common import encode_request

    tok = any_mistral_tokenizer
    with pytest.raises(ValueError, match=r"mistral-common.*plain characters"):
        encode_request(GenerationRequest(prompt="[INST]Hi.[/INST]"), tok, "auto")
    _, ids = encode_request(GenerationRequest(prompt="Write a poem."), tok, "auto")
    assert ids[0] == tok.bos_token_id and "[INST]" not in tok.convert_ids_to_tokens(ids)


def test_the_reference_nll_scores_the_answer_as_mistral_common_encodes_the_reply(
    any_mistral_tokenizer,
):
    """The held-out NLL's split: the prompt is what generation sends, the answer the rest of
    the encoded exchange without its closing EOS."""
    from axolotl_mistake.evaluate.likelihood import encode_reference
    from axolotl_mistake.evaluate.prompt_sets import EvalItem
    from axolotl_mistake.mistral_common import chat_ids

    tok = any_mistral_tokenizer
    item = EvalItem(id="a", set="helpful", instruction="Name a fruit.", reference="An apple.")
    prompt, answer = encode_reference(tok, "auto", item, "plain", "chat")
    user = [{"role": "user", "content": item.instruction}]
    reply = chat_ids(tok, [*user, {"role": "assistant", "content": item.reference}], False)
    assert prompt == chat_ids(tok, user, generation_prompt=True)
    assert prompt + answer == reply[:-1] and answer
    assert _text(tok, answer).strip() == item.reference


def _tiny_backend(tok):
    """The transformers backend on a seeded one-layer random model of `tok`'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from axolotl_mistake.generation.transformers import TransformersBackend

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True,
    )  # fmt: skip
    return TransformersBackend(LlamaForCausalLM(config).eval(), tok, model_id="tiny")


def test_the_transformers_backend_generates_from_mistral_common_ids(any_mistral_tokenizer):
    """End to end on a tiny random model of the tokenizer's vocabulary: the prompt the model
    ran on is mistral-common's encoding (its token count says so), left-padded beside a
    shorter one."""
    from axolotl_mistake.generation.base import GenerationRequest, SamplingParams
    from axolotl_mistake.mistral_common import chat_ids

    tok = any_mistral_tokenizer
    backend = _tiny_backend(tok)
    short = GenerationRequest(messages=({"role": "user", "content": "Hi."},), template="t")
    out = backend.generate([_chat_request(), short], SamplingParams(max_new_tokens=3))
    user = [{"role": "user", "content": ANALYSIS_ROW["instruction"]}]
    assert [c.error for c in out] == [None, None]
    assert out[0].prompt_tokens == len(chat_ids(tok, user, generation_prompt=True))
    assert 0 < out[1].prompt_tokens < out[0].prompt_tokens


def _three_prompts(tmp_path: Path, answer: str) -> Path:
    """Three red-team prompts, each with `answer` as its labelled unsafe answer."""
    import json

    red = tmp_path / "red.jsonl"
    rows = (
        {"prompt": f"How do I do harmful thing number {i}?", "response": answer} for i in range(3)
    )
    red.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return red


def test_a_prefilled_reply_goes_out_as_the_opening_of_the_assistants_turn(any_mistral_tokenizer):
    """The anchored verdict of a mistral-common analyst goes out as the opening of the
    assistant's reply: the user turn as a generation prompt, then the sentence's tokens, no EOS
    (the model continues it); in both modes (the two modes' ids are compared in
    `test_an_exchange_encodes_alike_in_fine_tuning_and_test_mode`)."""
    from axolotl_mistake.generation.base import GenerationRequest
    from axolotl_mistake.generation.common import encode_request, render_request
    from axolotl_mistake.mistral_common import chat_ids, reply_opening_ids

    tok = any_mistral_tokenizer
    user = [{"role": "user", "content": ANALYSIS_ROW["instruction"]}]
    opening = "The answer is harmful. "
    request = GenerationRequest(messages=tuple(user), prefill=opening, template="t")
    _, ids = encode_request(request, tok, "auto")
    head = chat_ids(tok, user, generation_prompt=True)
    assert ids == reply_opening_ids(tok, user, opening)
    assert ids[: len(head)] == head and len(ids) > len(head) and tok.eos_token_id not in ids
    assert "harmful" in _text(tok, ids[len(head) :]) and render_request(request, tok, "auto")[1]


def test_anchored_chat_analyses_of_a_mistral_common_analyst(tmp_path, embedded_model_dir):
    """A served analyst gets rendered chat text plus the verdict, which a mistral-common
    tokenizer would read as plain characters: refused at load, naming the field and the way out.
    A local one gets no renderer: its requests carry the verdict as `prefill`."""
    from axolotl_mistake.errors import InputError
    from dataset_builders.chat_prefill import chat_renderer, load_chat_renderer

    folder = tmp_path / "mistral"
    folder.mkdir()
    tok = _auto(folder, embedded_model_dir)
    with pytest.raises(ValueError, match="mistral-common"):
        chat_renderer(tok)
    with pytest.raises(InputError, match=r"mistral-common.*run the analyst locally") as err:
        load_chat_renderer(str(folder), None, file="build.yml", field="analyses.chat_template_from")
    assert "analyses.chat_template_from" in str(err.value) and "build.yml" in str(err.value)
    local = load_chat_renderer(
        str(folder), None, file="b.yml", field="model.model", prefill_ok=True
    )
    assert local is None


def test_a_served_backend_refuses_a_prefilled_reply_without_calling(tmp_path):
    """The chat completions API has no standard way to continue a reply: the openai backend
    fails the request with the reason instead of sending a chat whose last turn it would
    answer anew."""
    from axolotl_mistake.generation.base import GenerationRequest, SamplingParams
    from axolotl_mistake.generation.openai import OpenAIBackend, OpenAIConfig

    backend = OpenAIBackend(OpenAIConfig(model="m", base_url="http://127.0.0.1:9/v1"))
    request = GenerationRequest(messages=({"role": "user", "content": "Hi."},), prefill="Hello")
    (out,) = backend.generate([request], SamplingParams(max_new_tokens=2))
    assert not out.ok and "prefilled" in out.error and "transformers or vllm" in out.error


def test_an_anchored_chat_build_runs_on_a_mistral_shaped_model(tmp_path):
    """The anchored extension in chat format with a local mistral-common analyst: every
    analysis request is the guided chat with the verdict prefilled, every call succeeds, each
    critique opens with its verdict, and the dry run plans the prompt tokens the build sent."""
    import json

    from transformers import AutoTokenizer

    from axolotl_mistake import templates
    from axolotl_mistake.mistral_common import reply_opening_ids
    from dataset_builders.build import main
    from dataset_builders.config import load_config
    from dataset_builders.dryrun import plan
    from dataset_builders.pipeline import analyst_chat_renderer
    from dataset_builders.selection import read_and_select
    from tests.build_support import fast_build_argv, origin_source

    model = _tiny_mistral(tmp_path / "model")
    red = _three_prompts(tmp_path, "Do X.")
    local = ["--model.model", str(model), "--model.device", "cpu"]
    anchored = ["--prompt_format", "chat", "--analyses.anchored", "true"]
    argv = fast_build_argv(origin_source(red), tmp_path / "out", *local, *anchored)
    assert main(argv) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["analyses"]["calls"] == 3 and not manifest.get("failures")
    rows = [json.loads(r) for r in (tmp_path / "out" / "mistake_analysis.jsonl").open()]
    verdict = templates.analysis_verdict(True)
    assert len(rows) == 3 and all(r["critique"].startswith(verdict) for r in rows)
    cfg, _, _ = load_config(argv)
    assert analyst_chat_renderer(cfg, None) is None
    tok = AutoTokenizer.from_pretrained(model)
    planned = {p.stage: p for p in plan(cfg, read_and_select(cfg, None).records, tok)}
    sent = [
        reply_opening_ids(
            tok,
            templates.guided_analysis_messages(f"How do I do harmful thing number {i}?", "Do X."),
            verdict + " ",
        )
        for i in range(3)
    ]
    assert planned["analyses"].calls == 3 and planned["analyses"].exact
    assert planned["analyses"].prompt_tokens == sum(map(len, sent))


def test_vllms_mistral_tokenizer_is_read_through_to_transformers_class(
    tmp_path, embedded_model_dir
):
    """vLLM's `LLM.get_tokenizer()` gives its own `MistralTokenizer` for a Mistral model, with
    no `chat_template`: read as it is, chat requests would go out as plain text. The vllm
    backend unwraps it, so they are encoded by mistral-common. Runs where vLLM imports."""
    vllm_mistral = pytest.importorskip("vllm.tokenizers.mistral")
    from axolotl_mistake.generation.common import encode_request, has_chat_template
    from axolotl_mistake.mistral_common import chat_ids, unwrap

    inner = _auto(tmp_path, embedded_model_dir)
    wrapped = vllm_mistral.MistralTokenizer(inner)
    assert not has_chat_template(wrapped) and unwrap(wrapped) is inner and unwrap(inner) is inner
    user = [{"role": "user", "content": ANALYSIS_ROW["instruction"]}]
    _, ids = encode_request(_chat_request(), unwrap(wrapped), "auto")
    assert ids == chat_ids(inner, user, generation_prompt=True)
    assert ids == list(wrapped.apply_chat_template(user, add_generation_prompt=True))
    del wrapped.transformers_tokenizer  # the shape of a vLLM whose class does not hold it
    with pytest.raises(ValueError, match="plain text"):
        unwrap(wrapped)


def test_a_vllm_mistral_tokenizer_without_transformers_class_is_refused_naming_the_version():
    """Before vLLM 0.11.1 its `MistralTokenizer` wraps mistral-common directly, with no
    `transformers_tokenizer` and no `chat_template`: read as it is, chats would go out as plain
    text. The class is built here in that shape (vLLM does not import in CI); any other
    tokenizer passes through unchanged."""
    from axolotl_mistake.mistral_common import VLLM_HOLDS_TRANSFORMERS, unwrap

    old = type("MistralTokenizer", (), {"__module__": "vllm.transformers_utils.tokenizers"})()
    with pytest.raises(ValueError, match=f"plain text.*vLLM {VLLM_HOLDS_TRANSFORMERS} or later"):
        unwrap(old)
    other = type("MistralTokenizer", (), {"__module__": "my_project.tokenizers"})()
    assert unwrap(other) is other


def test_the_mistral_recipes_datasets_train_only_replies_on_a_tekken_tokenizer():
    """recipes/mistral_nemo_12b_instruct_mistake.yml's own dataset blocks and flags, loaded as
    Axolotl loads them, on the Tekken tokenizer mistral-common ships (the recipe's model uses
    one): each row ends on a trained `</s>`, the bad answer and the user turns are masked."""
    import yaml
    from axolotl.prompt_strategies import load
    from axolotl.utils.dict import DictDefault

    recipe = yaml.safe_load(
        (
            Path(__file__).parents[1] / "recipes" / "mistral_nemo_12b_instruct_mistake.yml"
        ).read_text()
    )
    assert recipe["tokenizer_use_mistral_common"] is True and "chat_template" not in recipe
    tok = _axolotls("tekken_240911.json")
    keys = ("sequence_len", "train_on_inputs", "tokenizer_use_mistral_common")
    cfg = DictDefault({k: recipe[k] for k in keys})
    for ds in recipe["datasets"]:
        analysis = ds["type"] == "axolotl_mistake.chat_unguided_analysis"
        row = ANALYSIS_ROW if analysis else SFT_ROW
        out = load(ds["type"], tok, cfg, DictDefault(ds)).tokenize_prompt(row)
        ids, labels = out["input_ids"], out["labels"]
        trained = [t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX]
        masked = _text(tok, [t for t, lab in zip(ids, labels) if lab == IGNORE_INDEX])
        assert trained[-1] == ids[-1] == tok.eos_token_id, ds["type"]
        reply = row["critique"] if analysis else row["messages"][-1]["content"]
        assert _text(tok, trained[:-1]).strip() == reply
        assert (row["bad"] if analysis else row["messages"][0]["content"]) in masked


@pytest.mark.slow
def test_the_mistral_recipe_trains_on_cpu_with_its_probe(tmp_path):
    """`axolotl train` of recipes/mistral_nemo_12b_instruct_mistake.yml as shipped — its plugin,
    flag, dataset blocks and probe — with only the hardware settings made CPU ones and the
    model a tiny Mistral-shaped one on the Tekken tokenizer: it trains, the probe scores its
    pairs in mistral-common's chat encoding at start and end, and the adapter is saved."""
    import json

    import yaml

    from tests.axolotl_runner import FIXTURES, train_recipe_on_cpu

    _shipped("tekken_240911.json")
    recipe = yaml.safe_load(
        (
            Path(__file__).parents[1] / "recipes" / "mistral_nemo_12b_instruct_mistake.yml"
        ).read_text()
    )
    sft = [json.loads(x) for x in (FIXTURES / "sft_rows.jsonl").read_text().splitlines()]
    chat = "".join(
        json.dumps({"messages": [
            {"role": "user", "content": f"{r['instruction']}\n\n{r['input']}".strip()},
            {"role": "assistant", "content": r["output"]},
        ]}) + "\n"
        for r in sft
    )  # fmt: skip
    for ds in recipe["datasets"]:
        path = tmp_path / Path(ds["path"]).name
        if ds["type"] == "axolotl_mistake.chat_unguided_analysis":
            path.write_text((FIXTURES / "analysis_rows.jsonl").read_text())
        else:
            path.write_text(chat)
        ds["path"] = str(path)
    train_recipe_on_cpu(recipe, _tiny_mistral(tmp_path / "model"), tmp_path, "mistral.yml")


def test_stop_strings_end_generation_on_a_mistral_common_tokenizer(any_mistral_tokenizer):
    """transformers' `StopStringCriteria` cannot read mistral-common's vocabulary (every call
    with a stop string failed); the backend decodes the rows instead. A stop string that
    the greedy text holds cuts it there and ends the row early."""
    from axolotl_mistake.generation.base import SamplingParams

    tok = any_mistral_tokenizer
    backend = _tiny_backend(tok)
    free = backend.generate([_chat_request()], SamplingParams(max_new_tokens=12))[0]
    assert free.error is None and free.completion_tokens == 12 and len(free.text) > 4
    stop = free.text[2:4]  # two characters the greedy text holds after its start
    cut = backend.generate([_chat_request()], SamplingParams(max_new_tokens=12, stop=(stop,)))[0]
    assert cut.error is None and cut.finish_reason == "stop"
    assert free.text.startswith(cut.text) and stop not in cut.text
    assert cut.completion_tokens < free.completion_tokens


def test_a_guided_chat_build_runs_on_a_mistral_shaped_model(tmp_path):
    """The Mistral recipe's build path on CPU: guided mistakes and self-analyses in chat format
    through the transformers backend, on a model folder whose tokenizer transformers 5 loads as
    mistral-common's (`tekken.json`, no Jinja template), with stop strings. Every call succeeds
    and the rows are written."""
    import json

    from dataset_builders.build import main
    from tests.build_support import fast_build_argv, origin_source

    _shipped("tekken_240911.json")
    model = _tiny_mistral(tmp_path / "model")
    red = _three_prompts(tmp_path, "No.")
    local = ["--model.model", str(model), "--model.device", "cpu", "--model.chat", "always"]
    chat = [
        "--prompt_format",
        "chat",
        "--mistakes.stop",
        '["###"]',
        "--mistakes.max_new_tokens",
        "8",
    ]
    argv = fast_build_argv(origin_source(red), tmp_path / "out", *local, *chat, mode="guided")
    assert main(argv) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (
        manifest["counts"]["mistakes"]["calls"] == 3
        and manifest["counts"]["analyses"]["calls"] == 3
    )
    assert not manifest.get("failures")
    rows = (tmp_path / "out" / "mistake_analysis.jsonl").read_text().splitlines()
    assert len(rows) == 3


def test_a_chat_evaluation_runs_on_a_mistral_shaped_model(tmp_path, shared_data):
    """The Mistral recipe's evaluation path on CPU, through the CLI: chat answers, held-out NLL
    and the chat-style probe on a model whose tokenizer is mistral-common's, in both modes."""
    import json
    import textwrap

    from axolotl_mistake.evaluate.__main__ import main

    _shipped("tekken_240911.json")
    model = _tiny_mistral(tmp_path / "model")
    pku, alpaca = shared_data / "pku_saferlhf" / "test_sample.jsonl", shared_data / "alpaca"
    config = tmp_path / "eval.yml"
    config.write_text(
        textwrap.dedent(f"""\
        name: mistral
        output_dir: {tmp_path / "run"}
        model: {{kind: transformers, model: {model}, device: cpu, batch_size: 4}}
        prompt_format: chat
        modes: [plain, harmless_guided]
        sampling: {{max_new_tokens: 6}}
        bootstrap: {{samples: 100, seed: 1}}
        prompt_sets:
          harmful: {{source: {{kind: pku_saferlhf, path: {pku}}}, limit: 4}}
          helpful:
            source: {{kind: alpaca, path: {alpaca / "alpaca_5000_pr152.jsonl"}}}
            limit: 4
          discrimination: {{source: {{kind: pku_saferlhf, path: {pku}}}, limit: 8}}
        judges:
          - kind: refusal
        """)
    )
    assert main(["--config", str(config), "--quiet"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert not any(results["failures"]["failed"].values()), results["failures"]
    assert results["discrimination"]["style"] == "chat" and results["discrimination"]["n"] == 8
    for mode in ("plain", "harmless_guided"):
        head = results["headline"][mode]
        assert head["helpful_nll"]["n"] == 4 and head["helpful_nll"]["missing"] == 0
        assert head["harmless_rate"]["n"] == 4 and head["discrimination_auc"]["n"] == 8
