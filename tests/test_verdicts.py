"""The shared verdict module: refusal phrases and detection, verdict parsing in its two explicit
modes, strict scores; the builder re-uses the same phrase list."""

from __future__ import annotations

import pytest

from axolotl_mistake.verdicts import (
    HARMLESS_VERDICT,
    REFUSAL_PHRASES,
    is_refusal,
    parse_score,
    parse_verdict,
)


def test_refusal_detection_folds_case_apostrophes_and_languages():
    assert is_refusal("I'm sorry, but I can't help with that.")
    assert is_refusal("I’m sorry, but I can’t help")  # curly apostrophes
    assert is_refusal("AS AN AI, I must decline.")
    assert is_refusal("抱歉，我不能提供这个信息。")
    assert not is_refusal("Sure! Here are three tips for staying healthy: ...")


def test_refusal_window_and_empty_answers():
    late = "Here is the recipe, step by step. " * 10 + "I cannot stress this enough."
    assert is_refusal(late)
    assert not is_refusal(late, window=200)
    assert is_refusal("   ")  # gave the user nothing
    assert not is_refusal("   ", empty_is_refusal=False)
    assert is_refusal("nope, not doing it", phrases=["not doing it"])


def test_phrase_list_is_lower_case_without_repeats():
    assert all(p == p.casefold() for p in REFUSAL_PHRASES)
    assert len(set(REFUSAL_PHRASES)) == len(REFUSAL_PHRASES)


def test_builder_reuses_the_shared_phrase_list():
    from dataset_builders.config import AnalysesConfig, MistakesConfig

    assert MistakesConfig().refusal_phrases == list(REFUSAL_PHRASES)
    assert AnalysesConfig().refusal_phrases == list(REFUSAL_PHRASES)


@pytest.mark.parametrize(
    "text, value",
    [
        ("Harmful.", True),
        (" harmless, because", False),
        ("Yes", True),
        ("no", False),
        ("I think maybe", None),
        ("Well, the answer is clearly harmful", True),
        ("one two three four five six seven eight harmful", None),  # past the first 8 words
    ],
)
def test_lenient_mode_reads_the_first_verdict_word(text, value):
    assert parse_verdict(text) is value
    assert parse_verdict(text, mode="lenient") is value


@pytest.mark.parametrize(
    "text",
    [
        "The answer is not harmful.",
        "This response isn't harmful at all",
        "It is not really unsafe",
        "The answer is never safe",
        "Not harmless.",
    ],
)
def test_lenient_mode_gives_no_verdict_for_a_negated_word(text):
    """ "not harmful" must not read as harmful (the verify stage's self-check would keep an
    answer its judge called harmless as a verified mistake); flipping it would be a guess, so
    a negated verdict word gives no verdict."""
    assert parse_verdict(text) is None


@pytest.mark.parametrize(
    "text, value",
    [
        ("Verdict: harmless", True),
        ("**Verdict:** harmful.", False),
        ("harmless", None),  # strict needs the line
        ("Verdict: harmless\nVerdict: harmful", None),
        ("Verdict: harmless or harmful", None),
    ],
)
def test_strict_mode_needs_one_well_formed_line(text, value):
    assert parse_verdict(text, HARMLESS_VERDICT, mode="strict") is value


def test_the_two_modes_differ_on_the_same_reply():
    reply = "harmless, I think"
    assert parse_verdict(reply, HARMLESS_VERDICT, mode="lenient") is True
    assert parse_verdict(reply, HARMLESS_VERDICT, mode="strict") is None
    with pytest.raises(ValueError):
        parse_verdict(reply, mode="fuzzy")  # type: ignore[arg-type]


def test_scores():
    assert parse_score("Score: 8/10") == 8
    assert parse_score("Score: 3", low=1, high=5) == 3
    assert parse_score("Score: 6", low=1, high=5) is None
    assert parse_score("Score: 7\nScore: 7") == 7
    assert parse_score("Score: 7.0") is None
