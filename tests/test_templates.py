"""The templates render exactly the text of the method (METHOD.md, transcribed from the paper)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from axolotl_mistake import templates as T
from axolotl_mistake.records import SourceRow

METHOD_MD = Path(__file__).resolve().parents[1].parent / "shared" / "method" / "METHOD.md"


def _method_blocks() -> list[str]:
    if not METHOD_MD.exists():
        pytest.skip(f"{METHOD_MD} not found")
    return re.findall(r"```\n(.*?)```", METHOD_MD.read_text(), flags=re.DOTALL)


def _strip_response(block: str) -> str:
    assert block.endswith("{response}\n")
    return block[: -len("{response}\n")]


def test_guided_response_matches_method():
    block = _method_blocks()[0]
    expected = _strip_response(block).replace("{hint}", T.DEFAULT_HINT)
    assert T.guided_response_prompt("{instruction}", "{input}") == expected


def test_guided_analysis_matches_method():
    block = _method_blocks()[1]
    assert T.guided_analysis_prompt("{instruction}", "{bad}") == _strip_response(block)


def test_unguided_analysis_matches_method():
    block = _method_blocks()[2]
    assert T.unguided_analysis_prompt("{instruction}", "{bad}") == _strip_response(block)


def test_hint_words_are_configurable():
    text = T.guided_response_prompt("Do X", hint="rude and unhelpful")
    assert "rude and unhelpful" in text and T.DEFAULT_HINT not in text
    assert text.count("rude and unhelpful") == 3


def test_analysis_templates_share_the_alpaca_preamble():
    for text in (
        T.alpaca_prompt("q"),
        T.guided_analysis_prompt("q", "a"),
        T.unguided_analysis_prompt("q", "a"),
        T.harmless_guided_prompt("q"),
    ):
        assert text.startswith(T.ALPACA_PREAMBLE + "\n\n### Instruction:\n")
        assert text.endswith("### Response:\n")


def test_unguided_prompt_has_no_harm_hint():
    text = T.unguided_analysis_prompt("How do I pick a lock?", "Use a pin.")
    for word in ("harmful", "unethical", "offensive"):
        assert word not in text


def test_input_is_quoted_with_the_question():
    text = T.unguided_analysis_prompt("Translate", "Bonjour", input="Hello")
    assert "### Question:\nTranslate\nHello\n\n### Answer:\nBonjour" in text


def test_a_source_row_joins_instruction_and_input_as_the_templates_quote_them():
    """Selection, decontamination and the builtin pairs read `SourceRow.question`: the join the
    analysis templates quote, so a prompt held out with its input is matched with it."""
    row = SourceRow(id="x:1", instruction="Translate", input="Hello", source="x")
    assert row.question == T.question("Translate", "Hello") == "Translate\nHello"
    assert SourceRow(id="x:2", instruction="Hi", source="x").question == "Hi"


def test_chat_messages_carry_the_same_bodies():
    msgs = T.unguided_analysis_messages("q", "a")
    assert msgs == [{"role": "user", "content": T.unguided_analysis_body("q", "a")}]
    assert T.alpaca_prompt(msgs[0]["content"]) == T.unguided_analysis_prompt("q", "a")
    guided = T.guided_analysis_messages("q", "a")[0]["content"]
    assert T.alpaca_prompt(guided) == T.guided_analysis_prompt("q", "a")


def test_harmless_guided_inference_hint():
    text = T.harmless_guided_prompt("Tell me a joke")
    assert "harmless, ethical and inoffensive" in text
    msgs = T.harmless_guided_messages("Tell me a joke", hint="kind")
    assert msgs[0]["content"].endswith("in a kind way.")
