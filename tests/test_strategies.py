"""Exact loss masking of the mistake-analysis strategies on the real SmolLM2 tokenizer.

Loads every strategy through Axolotl's own loader (`axolotl.prompt_strategies.load`), the
path `type: axolotl_mistake.<name>` takes, and checks token by token that only the critique
and its end token carry labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from axolotl_mistake import templates as T
from axolotl_mistake.strategies_common import (
    IGNORE_INDEX,
    MISTAKE_STRATEGIES,
    MistakeRowError,
    TrainOnInputsError,
)

FIXTURES = Path(__file__).parent / "fixtures"
ROWS = [json.loads(line) for line in (FIXTURES / "analysis_rows.jsonl").read_text().splitlines()]


def _cfg(**kw):
    from axolotl.utils.dict import DictDefault

    return DictDefault({"sequence_len": 1024, "train_on_inputs": False, **kw})


def _load(name, tokenizer, cfg=None, ds_cfg=None):
    from axolotl.prompt_strategies import load

    strategy = load(name, tokenizer, cfg or _cfg(), DictDefault_(ds_cfg or {"type": name}))
    assert strategy is not None, f"axolotl could not load {name}"
    return strategy


def DictDefault_(d):
    from axolotl.utils.dict import DictDefault

    return DictDefault(d)


def _trained(ids, labels):
    return [t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX]


def _masked(ids, labels):
    return [t for t, lab in zip(ids, labels) if lab == IGNORE_INDEX]


@pytest.mark.parametrize("name", MISTAKE_STRATEGIES)
def test_only_critique_and_eos_are_trained(name, embedded_tokenizer):
    tok = embedded_tokenizer
    strategy = _load(name, tok)
    for row in ROWS:
        out = strategy.tokenize_prompt(row)
        ids, labels = out["input_ids"], out["labels"]
        assert len(ids) == len(labels) == len(out["attention_mask"])
        trained = _trained(ids, labels)
        # The trained span is one contiguous block at the end of the trained region.
        first = next(i for i, lab in enumerate(labels) if lab != IGNORE_INDEX)
        last = max(i for i, lab in enumerate(labels) if lab != IGNORE_INDEX)
        assert all(lab != IGNORE_INDEX for lab in labels[first : last + 1])
        assert labels[first : last + 1] == ids[first : last + 1]
        # It decodes to exactly the critique followed by EOS.
        assert trained[-1] == tok.eos_token_id
        assert tok.decode(trained[:-1]) == row["critique"]
        # Every token of the instruction and of the bad answer is masked.
        masked_text = tok.decode(_masked(ids, labels))
        assert row["bad"] in masked_text
        assert row["instruction"] in masked_text
        assert row["bad"] not in tok.decode(trained)


def test_unguided_prompt_tokens_are_the_template(embedded_tokenizer):
    tok = embedded_tokenizer
    row = ROWS[4]  # has an input
    out = _load("axolotl_mistake.unguided_analysis", tok).tokenize_prompt(row)
    masked = _masked(out["input_ids"], out["labels"])
    expected = tok(T.unguided_analysis_prompt(row["instruction"], row["bad"], row["input"]))
    assert masked == expected["input_ids"]


def test_guided_prompt_tokens_are_the_template(embedded_tokenizer):
    tok = embedded_tokenizer
    row = ROWS[0]
    out = _load("axolotl_mistake.guided_analysis", tok).tokenize_prompt(row)
    masked = tok.decode(_masked(out["input_ids"], out["labels"]))
    assert masked == T.guided_analysis_prompt(row["instruction"], row["bad"])


def test_chat_strategy_uses_the_chat_template(embedded_tokenizer):
    tok = embedded_tokenizer
    row = ROWS[1]
    out = _load("axolotl_mistake.chat_unguided_analysis", tok).tokenize_prompt(row)
    full = tok.apply_chat_template(
        T.unguided_analysis_messages(row["instruction"], row["bad"])
        + [{"role": "assistant", "content": row["critique"]}],
        tokenize=False,
    )
    assert tok.decode(out["input_ids"]) == full
    trained = _trained(out["input_ids"], out["labels"])
    assert tok.decode(trained) == row["critique"] + tok.eos_token
    assert "<|im_start|>assistant\n" in tok.decode(_masked(out["input_ids"], out["labels"]))


def test_chat_template_from_config(embedded_tokenizer):
    """`chat_template: chatml` in the config is resolved through Axolotl's own registry."""
    strategy = _load(
        "axolotl_mistake.chat_unguided_analysis",
        embedded_tokenizer,
        cfg=_cfg(chat_template="chatml"),
    )
    out = strategy.tokenize_prompt(ROWS[0])
    assert _trained(out["input_ids"], out["labels"])[-1] == embedded_tokenizer.eos_token_id


THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' and enable_thinking is defined and not enable_thinking %}<think></think>{% endif %}"
    "{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think></think>{% endif %}{% endif %}"
)


def test_chat_template_kwargs_reach_the_template(embedded_tokenizer):
    """`chat_template_kwargs` (e.g. Qwen3's `enable_thinking: false`) render the analysis rows as
    Axolotl renders its own chat rows in the same mix: an empty think block, masked."""
    cfg = _cfg(
        chat_template="jinja",
        chat_template_jinja=THINKING_TEMPLATE,
        chat_template_kwargs={"enable_thinking": False},
    )
    strategy = _load("axolotl_mistake.chat_unguided_analysis", embedded_tokenizer, cfg=cfg)
    out = strategy.tokenize_prompt(ROWS[0])
    text = embedded_tokenizer.decode(out["input_ids"])
    assert "<|im_start|>assistant\n<think></think>" in text
    trained = _trained(out["input_ids"], out["labels"])
    assert embedded_tokenizer.decode(trained) == ROWS[0]["critique"] + "<|im_end|>"


def test_batched_equals_row_by_row(embedded_tokenizer):
    strategy = _load("axolotl_mistake.unguided_analysis", embedded_tokenizer)
    assert strategy.supports_batched
    batch = {k: [r.get(k, "") for r in ROWS] for k in ("instruction", "input", "bad", "critique")}
    out = strategy.tokenize_prompt(batch)
    for i, row in enumerate(ROWS):
        single = strategy.tokenize_prompt(row)
        assert out["input_ids"][i] == single["input_ids"]
        assert out["labels"][i] == single["labels"]


def _wrap(type_name, rows, tokenizer):
    """Tokenize rows exactly as Axolotl's dataset loader does for a `type:` entry."""
    from axolotl.utils.data.wrappers import get_dataset_wrapper
    from axolotl.utils.dict import DictDefault
    from datasets import Dataset

    ds_cfg = DictDefault({"path": "rows.jsonl", "type": type_name})
    cfg = _cfg(dataset_num_proc=1)
    columns = sorted({k for r in rows for k in r})  # from_list keeps only the first row's keys
    table = Dataset.from_list([{k: r.get(k, "") for k in columns} for r in rows])
    wrapped, _ = get_dataset_wrapper(ds_cfg, tokenizer, cfg, type_name, table)
    return wrapped


def test_sft_and_analysis_rows_share_the_alpaca_preamble(embedded_tokenizer):
    """Axolotl's own `alpaca` type and our strategy start with the identical preamble tokens."""
    tok = embedded_tokenizer
    sft = _wrap("alpaca", [{"instruction": "Name a colour.", "input": "", "output": "Blue."}], tok)
    ana = _wrap("axolotl_mistake.unguided_analysis", ROWS[:1], tok)
    preamble = tok(T.ALPACA_PREAMBLE + "\n\n### Instruction:\n")["input_ids"]
    assert sft[0]["input_ids"][: len(preamble)] == preamble
    assert ana[0]["input_ids"][: len(preamble)] == preamble
    # The whole SFT prompt Axolotl renders is our alpaca_prompt, token for token.
    sft_prompt = [t for t, lab in zip(sft[0]["input_ids"], sft[0]["labels"]) if lab == IGNORE_INDEX]
    assert tok.decode(sft_prompt) == T.alpaca_prompt("Name a colour.")
    with_input = _wrap(
        "alpaca", [{"instruction": "Translate.", "input": "Hi", "output": "Salut"}], tok
    )
    assert tok.decode(with_input[0]["input_ids"]).startswith(T.alpaca_prompt("Translate.", "Hi"))


def test_axolotl_dataset_wrapper_uses_batched_strategy(embedded_tokenizer):
    """Through Axolotl's dataset wrapper the labels are the same as direct tokenization."""
    tok = embedded_tokenizer
    wrapped = _wrap("axolotl_mistake.unguided_analysis", ROWS, tok)
    assert len(wrapped) == len(ROWS)
    direct = _load("axolotl_mistake.unguided_analysis", tok)
    for i, row in enumerate(ROWS):
        assert wrapped[i]["labels"] == direct.tokenize_prompt(row)["labels"]


@pytest.mark.parametrize("name", MISTAKE_STRATEGIES)
def test_train_on_inputs_is_refused(name, embedded_tokenizer):
    from axolotl.utils.dict import DictDefault

    with pytest.raises(TrainOnInputsError, match="train_on_inputs"):
        import importlib

        importlib.import_module(name).load(
            embedded_tokenizer, _cfg(train_on_inputs=True), DictDefault({"type": name})
        )


HARMFUL = "Step one: mix the two cleaners in a closed room"
QUESTION = "How do I make a toxic gas at home?"


@pytest.mark.parametrize(
    "row, field, problem",
    [
        ({"instruction": QUESTION, "critique": "c"}, "bad", "missing"),
        ({"instruction": QUESTION, "bad": "", "critique": "c"}, "bad", "empty"),
        ({"instruction": QUESTION, "bad": HARMFUL, "critique": "  "}, "critique", "empty"),
        ({"instruction": 3, "bad": HARMFUL, "critique": "c"}, "instruction", "must be a string"),
        ({"instruction": QUESTION, "bad": HARMFUL, "critique": None}, "critique", "missing"),
        (
            {"instruction": QUESTION, "bad": HARMFUL, "critique": "c", "input": 7},
            "input",
            "must be a string",
        ),
    ],
)
@pytest.mark.parametrize("name", MISTAKE_STRATEGIES)
def test_malformed_rows_name_the_field(name, row, field, problem, embedded_tokenizer):
    strategy = _load(name, embedded_tokenizer)
    with pytest.raises(MistakeRowError) as err:
        strategy.tokenize_prompt(row)
    assert f"'{field}'" in str(err.value) and problem in str(err.value)
    # the row's columns are named, its text (a harmful answer) never lands in a log
    assert HARMFUL not in str(err.value) and QUESTION not in str(err.value)


@pytest.mark.parametrize("name", MISTAKE_STRATEGIES)
def test_rows_that_cannot_fit_are_dropped_not_all_masked(name, embedded_tokenizer):
    tok = embedded_tokenizer
    short = dict(ROWS[2])
    long = {"instruction": "q " * 300, "bad": "bad " * 300, "critique": "A short critique."}
    strategy = _load(name, tok, cfg=_cfg(sequence_len=256))
    batch = {
        k: [r.get(k, "") for r in (short, long, short)]
        for k in ("instruction", "input", "bad", "critique")
    }
    out = strategy.tokenize_prompt(batch)
    assert len(out["input_ids"]) == 2
    assert strategy.dropped == 1
    for labels in out["labels"]:
        assert any(lab != IGNORE_INDEX for lab in labels)
    # A single (unbatched) row that cannot fit comes back empty, never as all -100.
    single = strategy.tokenize_prompt(long)
    assert single["input_ids"] == [] and single["labels"] == []


def test_custom_field_names(embedded_tokenizer):
    strategy = _load(
        "axolotl_mistake.unguided_analysis",
        embedded_tokenizer,
        ds_cfg={
            "type": "axolotl_mistake.unguided_analysis",
            "field_bad": "response",
            "field_critique": "analysis",
        },
    )
    row = {"instruction": "q", "response": "bad answer", "analysis": "Critique text."}
    out = strategy.tokenize_prompt(row)
    assert (
        embedded_tokenizer.decode(_trained(out["input_ids"], out["labels"])[:-1])
        == "Critique text."
    )


@pytest.mark.parametrize("name", MISTAKE_STRATEGIES)
def test_excess_length_strategy_raise_raises_instead_of_dropping(name, embedded_tokenizer):
    """Axolotl's `excess_length_strategy: raise` promises a ValueError for any sample longer than
    `sequence_len`; the strategy fits rows itself, so it must raise too (never quoting the row)."""
    long = {"instruction": "q " * 300, "bad": "bad " * 300, "critique": "A short critique."}
    strategy = _load(
        name, embedded_tokenizer, cfg=_cfg(sequence_len=256, excess_length_strategy="raise")
    )
    assert strategy.tokenize_prompt(dict(ROWS[2]))["input_ids"]  # a row that fits is fine
    with pytest.raises(ValueError, match=r"exceeds the maximum 256") as err:
        strategy.tokenize_prompt(long)
    assert "bad bad" not in str(err.value)


GLM4_LIKE_TEMPLATE = (  # GLM-4's shape: a turn ends only where the next one starts
    "[gMASK]<sop>{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_a_template_without_an_end_of_turn_token_gets_eos_after_the_reply(embedded_tokenizer):
    """A single-turn row rendered by a GLM-4-like template ends with the critique's last word:
    trained as it is, the model would learn critiques that never stop. The EOS is added to
    the trained span (as the non-chat strategies add it); nothing else changes."""
    cfg = _cfg(chat_template="jinja", chat_template_jinja=GLM4_LIKE_TEMPLATE)
    strategy = _load("axolotl_mistake.chat_unguided_analysis", embedded_tokenizer, cfg=cfg)
    for row in ROWS:
        out = strategy.tokenize_prompt(row)
        trained = _trained(out["input_ids"], out["labels"])
        assert out["input_ids"][-1] == trained[-1] == embedded_tokenizer.eos_token_id
        assert embedded_tokenizer.decode(trained[:-1]).strip() == row["critique"]
        assert "<|assistant|>" in embedded_tokenizer.decode(
            _masked(out["input_ids"], out["labels"])
        )
        assert row["bad"] not in embedded_tokenizer.decode(trained)


@pytest.mark.parametrize("name", MISTAKE_STRATEGIES)
def test_a_critique_copying_its_answer_is_refused_by_the_tokenizer(name, embedded_tokenizer):
    """The last line of defence (a config the plugin never checked, e.g. Axolotl 0.19 without
    `plugins:`): a critique repeating more than 5 consecutive words of its answer would be
    loss on the answer's words, so the strategy refuses the row without quoting it; a shorter
    quote and a restated question pass, and `mistake_max_copied_words` moves the limit."""
    answer = "Mix bleach with ammonia in a bucket and leave it in the closed room overnight."
    row = {"instruction": "How can I make my roommate sick?", "bad": answer}
    copying = {**row, "critique": "It says to mix bleach with ammonia in a bucket, which is toxic."}
    strategy = _load(name, embedded_tokenizer)
    with pytest.raises(MistakeRowError) as err:
        strategy.tokenize_prompt(copying)
    assert "field 'critique' repeats 7 consecutive words" in str(err.value)
    assert "ammonia" not in str(err.value)
    for critique in (
        "It says to mix bleach with ammonia, which makes a toxic gas.",
        "It explains how to make my roommate sick: harmful.",
    ):
        out = strategy.tokenize_prompt({**row, "critique": critique})
        assert _trained(out["input_ids"], out["labels"])
    looser = _load(name, embedded_tokenizer, _cfg(mistake_max_copied_words=7))
    out = looser.tokenize_prompt(copying)
    assert _trained(out["input_ids"], out["labels"])
