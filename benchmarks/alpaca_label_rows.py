"""Detailed, compliant answers labelled harmless: the default anchored arm's Alpaca answers (the
opt-in `anchored_alpaca_answers` label arm until 2026-12-08, when they joined the default arm).

The anchored critic leans on answer length outside PKU-SafeRLHF (RESULTS.md, "Answer length"):
it calls long answers harmful on the shipped probe pairs and on HH-RLHF, although length does
not predict the label among its 196 training answers. One untested reading is that what makes an
answer long (detail, steps, compliance) is what the analyses taught it to call harmful, since
every detailed answer it was shown labelled harmless was a careful answer to a red-team prompt.
This arm adds detailed answers that are harmless beyond doubt, Alpaca's reference answers to
benign training-side instructions, to the labelled harmless answers its build critiques: if the
reading is right, the lean on length falls and the probe pairs rank better.

Alpaca's instructions are benign, so the critic may learn the prompt's topic instead of the
answer's content; the held-out PKU pairs (two answers to one prompt) cannot reward that, and
the self-check diagnostic (answers to XSTest's safe prompts) reads it. Some of these answers may
also be among the 400 Alpaca SFT rows every arm trains on (selected by the builder's seeded hash,
which this file does not repeat): an answer with SFT loss elsewhere is context only here.

`anchored_alpaca_hh` adds both kinds of harmless answer the anchored critic lacked, these and the
HH-RLHF refusals of `anchored_hh_refusals` (`refusal_rows.hh_refusal_pairs`), 40 of each.
"""

from __future__ import annotations

from pathlib import Path

from refusal_rows import (
    MIN_PROMPT_CHARS,
    first_unsafe_answers,
    hh_control_pairs,
    hh_refusal_pairs,
    write_unless_same,
)

from axolotl_mistake.probe import load_pairs
from axolotl_mistake.records import LabelledPair
from axolotl_mistake.sources.alpaca import AlpacaSource
from dataset_builders.stages.common import normalise, stable_hash

SALT = "axolotl-mistake alpaca answers v1"
MIN_ANSWER_CHARS, MAX_ANSWER_CHARS = 300, 600
"""Detailed answers about as long as the PKU answers the builds critique (median 498 characters;
the builds clip at 600), so that length alone does not tell these from the red-team answers."""


def alpaca_answer_pairs(data: Path, limit: int) -> list[dict[str, object]]:
    """`limit` Alpaca training-side rows without an input, as labelled harmless pairs: instruction
    of at least MIN_PROMPT_CHARS, answer of MIN_ANSWER_CHARS to MAX_ANSWER_CHARS, distinct
    instructions, in the order of a salted hash (not the file's, which groups by topic)."""
    seen: set[str] = set()
    rows = []
    for row in AlpacaSource(path=str(data / "alpaca_train.jsonl")).rows():
        answer = row.safe_answer or ""
        key = normalise(row.instruction)
        if (
            not row.input
            and len(row.instruction) >= MIN_PROMPT_CHARS
            and MIN_ANSWER_CHARS <= len(answer) <= MAX_ANSWER_CHARS
            and key not in seen
        ):
            seen.add(key)
            rows.append((stable_hash(f"{SALT}\n{key}"), row.instruction, answer, row.id))
    rows.sort()
    return [
        {"question": q, "answer": a, "harmful": False, "source": source}
        for _, q, a, source in rows[:limit]
    ]


def write_alpaca_pairs(data: Path, out: Path, limit: int) -> int:
    """`alpaca_answer_pairs` to `out` (the `pairs` source) for the arm's build; returns the pair
    count. Rewritten only when its content would change."""
    return write_unless_same(out, alpaca_answer_pairs(data, limit))


def alpaca_control_pairs(answers: Path, pku_train: Path, max_chars: int) -> list[LabelledPair]:
    """The arm's control: its Alpaca answers as written, then as many labelled unsafe PKU
    training answers (the first of each prompt, in file order, clipped to `max_chars`). The
    prompts differ, so this shows the rows reached the critic, not that it reads answers only."""
    harmless = load_pairs(answers)
    return harmless + unsafe_pku_pairs(pku_train, len(harmless), max_chars)


def unsafe_pku_pairs(pku_train: Path, count: int, max_chars: int) -> list[LabelledPair]:
    """The first `count` prompts' first labelled unsafe answers (`first_unsafe_answers`), clipped
    to `max_chars` as the builds clip them: the worse answers set against Alpaca answers."""
    unsafe = list(first_unsafe_answers(pku_train).items())[:count]
    return [LabelledPair(question=q, answer=a[:max_chars], harmful=True) for q, a in unsafe]


def write_alpaca_hh_pairs(data: Path, out: Path, limit: int) -> int:
    """`limit` Alpaca answers then `limit` HH refusals, all labelled harmless, to `out` for
    `anchored_alpaca_hh`'s build; returns the pair count. Rewritten only when it would change."""
    return write_unless_same(out, alpaca_answer_pairs(data, limit) + hh_refusal_pairs(data, limit))


def alpaca_hh_control_pairs(answers: Path, pku_train: Path, max_chars: int) -> list[LabelledPair]:
    """`anchored_alpaca_hh`'s control: every harmless answer as written, then the worse answers of
    both controls: an unsafe PKU answer for each Alpaca answer, and the rejected turn of each HH
    refusal's conversation (read from `hh_train.jsonl` beside `pku_train`)."""
    with_hh = hh_control_pairs(answers, pku_train.parent / "hh_train.jsonl", max_chars)
    harmless = [p for p in with_hh if not p.harmful]  # every answer, as written
    alpaca = sum(1 for p in harmless if p.source.startswith("alpaca:"))
    pku = unsafe_pku_pairs(pku_train, alpaca, max_chars)
    return harmless + pku + with_hh[len(harmless) :]
