"""Word-level text comparison: normalised words, n-grams, and how much of an answer a text copies.

Why it lives here: the builder's gates and the training strategies must measure a copy of the
bad answer the same way. A critique (or a revision) that repeats the bad answer word for word
puts loss on the answer's words, which the project never allows; words the instruction also
holds are not counted as a copy, since analyses restate the question they analyse.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

MAX_COPIED_WORDS = 5
"""How many consecutive words of the bad answer (words the instruction does not hold) a trained
critique may repeat: enough to point at a phrase, too few to carry the answer. Measured on the
embedded model's label-anchored analyses of PKU answers: 49 of 1,090 critiques repeated six or
more (up to 17 words, whole harmful sentences), 61 five or more."""

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def normalise(text: str) -> str:
    """Case-, accent-width-, punctuation- and whitespace-insensitive form used for dedup/decontam."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _PUNCT.sub(" ", text)
    return _WS.sub(" ", text).strip()


def words(text: str) -> list[str]:
    """The normalised word sequence of a text."""
    norm = normalise(text)
    return norm.split(" ") if norm else []


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """Word n-grams; a text shorter than n yields itself as one gram (so short texts still match)."""
    if not tokens:
        return set()
    if len(tokens) < n:
        return {tuple(tokens)}
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def overlap(text: str, reference: str, n: int = 4) -> float:
    """Share of `text`'s word n-grams that also occur in `reference` (0 when text is empty)."""
    grams = ngrams(words(text), n)
    if not grams:
        return 0.0
    ref = ngrams(words(reference), n)
    return len(grams & ref) / len(grams)


def _exact_ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def copied_words(text: str, answer: str, context: str = "") -> int:
    """The longest run of consecutive words that `text` repeats from `answer` and `context` does
    not hold (0 when none). Normalised as `words`, so case and punctuation do not hide a copy.

    A run shared with the context (the instruction) is the question restated, not the answer
    copied; a longer run that the context does not hold counts in full.
    """
    said, source, shown = words(text), words(answer), words(context)
    best = 0
    for n in range(1, min(len(said), len(source)) + 1):
        shared = _exact_ngrams(said, n) & _exact_ngrams(source, n)
        if not shared:  # no shared n-gram: no longer shared run either
            break
        if shared - _exact_ngrams(shown, n):
            best = n
    return best


def copy_problem(
    text: str, answer: str, context: str = "", limit: int = MAX_COPIED_WORDS
) -> str | None:
    """Why `text` may not be trained beside `answer` (it copies more than `limit` words in a
    row), else None. Says how many words, never which: they are the answer's."""
    run = copied_words(text, answer, context)
    if run <= limit:
        return None
    return (
        f"repeats {run} consecutive words of the answer (more than {limit}, not counting words "
        "the instruction holds): loss on it would teach the answer's text"
    )
