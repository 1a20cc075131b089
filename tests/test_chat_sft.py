"""`type: axolotl_mistake.chat_sft`: Axolotl's `chat_template` rows, plus the stop token.

Loaded through Axolotl's own loader (the path `type:` takes) on the real SmolLM2 tokenizer and
compared token by token with Axolotl's `chat_template` type: identical where the template closes
its turns, one trained EOS longer where it does not (GLM-4's shape). `.ci/axolotl_latest.sh`
runs this file on the newest Axolotl too, since the strategy extends Axolotl's classes.
"""

from __future__ import annotations

import logging

import pytest

from axolotl_mistake.strategies_common import IGNORE_INDEX
from tests.test_strategies import GLM4_LIKE_TEMPLATE

ROWS = [
    {
        "messages": [
            {"role": "user", "content": "How do I bake bread at home?"},
            {"role": "assistant", "content": "Mix flour, water, salt and yeast, then bake it."},
        ]
    },
    {
        "messages": [
            {"role": "system", "content": "You are a careful assistant."},
            {"role": "user", "content": "Name a prime number."},
            {"role": "assistant", "content": "Seven."},
            {"role": "user", "content": "And an even one?"},
            {"role": "assistant", "content": "Two is the only even prime."},
        ]
    },
]
GLM = {"chat_template": "jinja", "chat_template_jinja": GLM4_LIKE_TEMPLATE}
OWN = {"chat_template": "tokenizer_default"}  # SmolLM2's ChatML: each turn ends <|im_end|>\n


def _strategy(kind: str, tokenizer, template: dict, **ds):
    from axolotl.prompt_strategies import load
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault({"sequence_len": 1024, "train_on_inputs": False, **template})
    ds_cfg = DictDefault({"type": kind, "field_messages": "messages", **ds})
    strategy = load(kind, tokenizer, cfg, ds_cfg)
    assert strategy is not None, f"axolotl could not load {kind}"
    return strategy


def _pair(tokenizer, template: dict, row: dict, **ds) -> tuple[dict, dict]:
    axolotl = _strategy("chat_template", tokenizer, template, **ds).tokenize_prompt(row)
    ours = _strategy("axolotl_mistake.chat_sft", tokenizer, template, **ds).tokenize_prompt(row)
    return axolotl, ours


@pytest.mark.parametrize("row", ROWS)
def test_a_reply_the_template_leaves_open_gets_a_trained_eos(embedded_tokenizer, row):
    """GLM-4's template renders nothing after the last reply: Axolotl's type trains the reply
    and stops there (the model never learns to stop); ours is the same plus a trained EOS."""
    tok = embedded_tokenizer
    axolotl, ours = _pair(tok, GLM, row)
    assert axolotl["labels"][-1] != IGNORE_INDEX  # the defect: the last trained token ...
    assert axolotl["input_ids"][-1] != tok.eos_token_id  # ... is the reply's last word
    assert ours["input_ids"] == [*axolotl["input_ids"], tok.eos_token_id]
    assert ours["labels"] == [*axolotl["labels"], tok.eos_token_id]
    assert ours["attention_mask"] == [*axolotl["attention_mask"], 1]
    trained = [t for t, lab in zip(ours["input_ids"], ours["labels"]) if lab != IGNORE_INDEX]
    assert tok.decode(trained[:-1]).endswith(row["messages"][-1]["content"])
    assert row["messages"][-2]["content"] not in tok.decode(trained)  # user turns stay masked


@pytest.mark.parametrize("row", ROWS)
def test_a_template_that_closes_its_turns_is_left_as_axolotl_tokenizes_it(embedded_tokenizer, row):
    axolotl, ours = _pair(embedded_tokenizer, OWN, row)
    assert ours == axolotl


def test_train_on_eos_none_adds_the_eos_without_loss(embedded_tokenizer):
    tok = embedded_tokenizer
    axolotl, ours = _pair(tok, GLM, ROWS[0], train_on_eos="none")
    assert ours["input_ids"] == [*axolotl["input_ids"], tok.eos_token_id]
    assert ours["labels"] == [*axolotl["labels"], IGNORE_INDEX]


def test_a_batch_is_tokenized_row_by_row_the_same(embedded_tokenizer):
    """Axolotl maps the strategy over batches of rows (`supports_batched`)."""
    strategy = _strategy("axolotl_mistake.chat_sft", embedded_tokenizer, GLM)
    batch = strategy.tokenize_prompt({"messages": [r["messages"] for r in ROWS]})
    for i, row in enumerate(ROWS):
        single = strategy.tokenize_prompt(row)
        assert {k: v[i] for k, v in batch.items()} == single
        assert single["input_ids"][-1] == embedded_tokenizer.eos_token_id


def test_the_loader_builds_our_subclass_of_the_class_axolotl_would_choose(embedded_tokenizer):
    from axolotl.prompt_strategies.chat_template import ChatTemplateStrategy

    from axolotl_mistake.chat_sft import ChatSftStrategy

    strategy = _strategy("axolotl_mistake.chat_sft", embedded_tokenizer, OWN)
    assert type(strategy) is ChatSftStrategy and isinstance(strategy, ChatTemplateStrategy)


GLM4_TEMPLATE = (  # GLM-4's own shape: each role's token written out, no end-of-turn token
    "[gMASK]<sop>{% for m in messages %}{% if m['role'] == 'system' %}<|system|>\n{{ m['content'] }}"
    "{% elif m['role'] == 'user' %}<|user|>\n{{ m['content'] }}"
    "{% elif m['role'] == 'assistant' %}<|assistant|>\n{{ m['content'] }}"
    "{% elif m['role'] == 'observation' %}<|observation|>\n{{ m['content'] }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture
def glm_tokenizer(embedded_model_dir):
    """The embedded tokenizer with GLM-4's turn tokens as single special tokens (as GLM-4's own
    tokenizer has them), so `eot_tokens` can name them."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    turns = ["<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]
    tok.add_special_tokens({"additional_special_tokens": turns})
    return tok


@pytest.mark.parametrize("eot", [None, ["<|user|>", "<|observation|>"]])
def test_earlier_glm_replies_end_on_the_next_turns_token_when_eot_tokens_names_it(
    glm_tokenizer, eot
):
    """GLM-4 stops on `<|user|>` and `<|observation|>` (generation stop ids besides its EOS).
    With them as `eot_tokens` (the GLM recipe's setting) Axolotl trains the `<|user|>` that
    follows an earlier reply, and this type closes the last reply with the EOS; without them
    the earlier reply's end stays untrained."""
    tok = glm_tokenizer
    user = tok.convert_tokens_to_ids("<|user|>")
    template = {"chat_template": "jinja", "chat_template_jinja": GLM4_TEMPLATE}
    out = _strategy(
        "axolotl_mistake.chat_sft", tok, {**template, **({"eot_tokens": eot} if eot else {})}
    ).tokenize_prompt(ROWS[1])
    ids, labels = out["input_ids"], out["labels"]
    users = [i for i, t in enumerate(ids) if t == user]
    assert len(users) == 2  # the first user turn, and the one after "Seven."
    after_reply = users[1]
    assert labels[after_reply - 1] != IGNORE_INDEX  # the earlier reply is trained ...
    assert labels[after_reply] == (user if eot else IGNORE_INDEX)  # ... its end with eot_tokens
    assert labels[users[0]] == IGNORE_INDEX  # a user turn's own start is never trained
    assert ids[-1] == labels[-1] == tok.eos_token_id  # the last reply ends with a trained EOS
    trained = tok.decode([t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX])
    assert "And an even one?" not in trained and "Name a prime number." not in trained


def test_axolotls_eos_warning_is_replaced_by_what_this_type_does(embedded_tokenizer, caplog):
    """Axolotl warns that an open template's turn terminator "won't be trained"; for this type
    that is untrue, so its strategy holds that warning back and says what it does instead.
    Axolotl's own type still warns, and a template that closes its turns warns neither way."""
    axolotl_says, ours_says = "not found in chat_template", "axolotl_mistake.chat_sft: the chat"

    def messages(kind: str, template: dict) -> str:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            _strategy(kind, embedded_tokenizer, template)
        return "\n".join(r.getMessage() for r in caplog.records)

    theirs = messages("chat_template", GLM)
    assert axolotl_says in theirs and ours_says not in theirs
    ours = messages("axolotl_mistake.chat_sft", GLM)
    assert axolotl_says not in ours and ours_says in ours and "eot_tokens" in ours
    closed = messages("axolotl_mistake.chat_sft", OWN)
    assert axolotl_says not in closed and ours_says not in closed
    again = messages("chat_template", GLM)  # the filter is gone once our strategy is built
    assert axolotl_says in again
