"""Refusal-style harmless SFT rows: the positive control for the harmless-rate measure.

The efficacy arms' harmless SFT rows are PKU-SafeRLHF's safe answers, which are mostly helpful
and safe rather than refusals, and the evaluation's refusal judge only counts refusals. So a
harmless rate near 0 in every arm could mean "critique training does not change generation"
or "nothing this experiment trains could move the measure". These rows tell the two apart: an
arm trained on refusals to the training-side red-team prompts must refuse more held-out
red-team prompts, or the measure (generation + judge) is blind.

Prompts: the PKU-SafeRLHF training prompts with at least one answer labelled unsafe, then the
first human turns of HH-RLHF harmless-base training conversations (red-team by construction),
skipping any prompt that is also a held-out red-team prompt. Some HH first turns are benign
("What's in the news these days?"), so the rows also teach some over-refusal: XSTest measures
it, and the comparison that matters holds these rows fixed (`refusal` vs `anchored_refusal`).
Refusals: the sentences below,
written for this project, one chosen per prompt by a stable hash. Never used by the library.

The same sentences, labelled harmless, are the refusals of the `anchored_refusal_labels` arm's
build (`write_refusal_pairs`); `hh_refusal_pairs` gives the `anchored_hh_refusals` arm as many
refusals in other words, HH-RLHF's own. Each label arm's positive control sets its refusals
against answers known to be worse (`control_pairs`, `hh_control_pairs`); `label_arms.py` ties
each arm to its writer and control.
"""

from __future__ import annotations

import json
from pathlib import Path

from efficacy_split import HH_HUMAN

from axolotl_mistake.fileio import write_atomic
from axolotl_mistake.probe import load_pairs
from axolotl_mistake.records import LabelledPair
from axolotl_mistake.sources.hh_rlhf import HhRlhfSource
from axolotl_mistake.sources.pku_saferlhf import PkuSafeRlhfSource
from axolotl_mistake.verdicts import REFUSAL_WINDOW, is_refusal
from dataset_builders.stages.common import normalise, stable_hash

REFUSALS = (
    "I'm sorry, but I can't help with that. It could hurt other people or break the law.",
    "I can't help with this request. Doing it could cause real harm, so I won't give "
    "instructions for it.",
    "I'm sorry, I won't do that. It would be unsafe and unfair to the people affected.",
    "I cannot help with that. If you are in a difficult situation, a trusted person or a "
    "professional can help you find a safe and legal way forward.",
    "Sorry, but I can't assist with this. It asks for something harmful, and I don't want to "
    "put anyone at risk.",
    "I'm not able to help with that, because it could be used to harm someone. I'm happy to "
    "help with something else.",
)
SALT = "axolotl-mistake refusal rows v1"
MIN_PROMPT_CHARS = 20
OPENING_CHARS = 60
"""An HH turn counts as a refusal when a refusal phrase is in its first OPENING_CHARS characters:
its opening sentence, not a caveat further on (the builder's wider REFUSAL_WINDOW let in turns
such as "Sure, of course! ... I won't share ...")."""


def pku_pairs(path: Path) -> list[LabelledPair]:
    """Every answer of a PKU-SafeRLHF file as a labelled pair, in file order (response 0, then
    1): the library's own reader, so a malformed row stops with its file, line and field."""
    return list(PkuSafeRlhfSource(path=str(path)).pairs())


def refusal_for(prompt: str) -> str:
    """One of the project's refusal sentences, the same for a prompt on every machine."""
    return REFUSALS[stable_hash(SALT, normalise(prompt)) % len(REFUSALS)]


def heldout_prompts(data: Path) -> set[str]:
    """The held-out red-team prompts, normalised: no training row may use one."""
    return {
        normalise(json.loads(line)["instruction"])
        for line in (data / "redteam_heldout.jsonl").read_text().splitlines()
        if line.strip()
    }


def first_use(prompt: str, seen: set[str], heldout: set[str]) -> bool:
    """Whether `prompt` may start a training row: at least MIN_PROMPT_CHARS, not held out, not
    used yet (normalised); a prompt that may is recorded in `seen`."""
    key = normalise(prompt)
    if len(prompt) < MIN_PROMPT_CHARS or key in seen or key in heldout:
        return False
    seen.add(key)
    return True


def red_team_prompts(data: Path, limit: int) -> list[str]:
    """Training-side red-team prompts, PKU (labelled unsafe answers) first, then HH."""
    heldout = heldout_prompts(data)
    seen: set[str] = set()
    prompts: list[str] = []

    def take(prompt: str) -> None:
        if first_use(prompt, seen, heldout):
            prompts.append(prompt)

    for pair in pku_pairs(data / "pku_train.jsonl"):
        if pair.harmful:
            take(pair.question.strip())
    for line in (data / "hh_train.jsonl").read_text().splitlines():
        if len(prompts) >= limit:
            break
        match = HH_HUMAN.search(str(json.loads(line)["chosen"]))
        if match:
            take(match.group(1).strip())
    return prompts[:limit]


def write_refusal_rows(data: Path, out: Path, limit: int) -> int:
    """Alpaca-format rows (instruction, empty input, refusal) to `out`; returns the row count.

    Rewritten only when its content would change (same prompts, same sentences = same file)."""
    return write_unless_same(
        out,
        [
            {"instruction": p, "input": "", "output": refusal_for(p)}
            for p in red_team_prompts(data, limit)
        ],
    )


def write_refusal_pairs(data: Path, out: Path, limit: int) -> int:
    """Labelled pairs (`{question, answer, harmful: false}`, the `pairs` source) of a refusal to
    each of the first `limit` training-side red-team prompts, for a build whose labelled
    harmless answers should include refusals; returns the pair count. Rewritten only when its
    content would change, as `write_refusal_rows`."""
    return write_unless_same(
        out,
        [
            {"question": p, "answer": refusal_for(p), "harmful": False}
            for p in red_team_prompts(data, limit)
        ],
    )


def hh_refusal_pairs(data: Path, limit: int) -> list[dict[str, object]]:
    """Refusals of many wordings, labelled harmless: the last Assistant turn of HH-RLHF
    harmless-base *training* conversations whose chosen turn opens with a refusal (a refusal
    phrase in its first OPENING_CHARS characters) and whose rejected turn holds none in its first
    REFUSAL_WINDOW, the first `limit` in file order (distinct last Human turns of at
    least MIN_PROMPT_CHARS, none a held-out red-team prompt or the last Human turn of a held-out
    HH pair).

    Two signals agree on the label: the turn refuses (the builder's phrase list,
    `verdicts.is_refusal`) and the raters preferred it to a turn that did not. HH's preference
    alone is relative (the rejected turn is the *more* harmful one, not a harmful one), so the
    rejected turns are not used. The question is the last Human turn, as the HH source makes it;
    earlier turns are dropped (a labelled pair has no context)."""
    heldout_pairs = HhRlhfSource(path=str(data / "hh_heldout.jsonl")).rows()
    heldout = heldout_prompts(data) | {normalise(row.instruction) for row in heldout_pairs}
    seen: set[str] = set()
    pairs: list[dict[str, object]] = []
    for row in HhRlhfSource(path=str(data / "hh_train.jsonl")).rows():
        if len(pairs) >= limit:
            break
        chosen, rejected = row.safe_answer or "", row.unsafe_answer or ""
        if (
            is_refusal(chosen, window=OPENING_CHARS, empty_is_refusal=False)
            and not is_refusal(rejected, window=REFUSAL_WINDOW)
            and first_use(row.instruction, seen, heldout)
        ):
            pairs.append(
                {
                    "question": row.instruction,
                    "answer": chosen,
                    "harmful": False,
                    "source": f"{row.id}:chosen",
                }
            )
    return pairs


def write_hh_refusal_pairs(data: Path, out: Path, limit: int) -> int:
    """`hh_refusal_pairs` to `out` (the `pairs` source) for `anchored_hh_refusals`' build;
    returns the pair count. Rewritten only when its content would change."""
    return write_unless_same(out, hh_refusal_pairs(data, limit))


def first_unsafe_answers(pku_train: Path) -> dict[str, str]:
    """The first labelled unsafe answer to each prompt of a PKU file, by stripped prompt, in
    file order."""
    unsafe: dict[str, str] = {}
    for pair in pku_pairs(pku_train):
        if pair.harmful:
            unsafe.setdefault(pair.question.strip(), pair.answer)
    return unsafe


def control_pairs(refusals: Path, pku_train: Path, max_chars: int) -> list[LabelledPair]:
    """`anchored_refusal_labels`' control: the refusal pairs as written, then one labelled unsafe
    PKU answer (the first, clipped to `max_chars`) to each of their prompts that has one."""
    harmless = load_pairs(refusals)
    unsafe = first_unsafe_answers(pku_train)
    harmful = [
        LabelledPair(question=p.question, answer=unsafe[p.question][:max_chars], harmful=True)
        for p in harmless
        if p.question in unsafe
    ]
    return harmless + harmful


def hh_control_pairs(refusals: Path, hh_train: Path, max_chars: int) -> list[LabelledPair]:
    """`anchored_hh_refusals`' control: the refusal pairs as written, then the rejected turn
    (clipped to `max_chars`) of the HH conversation each was taken from (its `source`: the row id
    plus `:chosen`)."""
    harmless = load_pairs(refusals)
    rejected = {
        f"{row.id}:chosen": row.unsafe_answer
        for row in HhRlhfSource(path=str(hh_train)).rows()
        if row.unsafe_answer
    }
    harmful = [
        LabelledPair(question=p.question, answer=rejected[p.source][:max_chars], harmful=True)
        for p in harmless
        if p.source in rejected
    ]
    return harmless + harmful


def write_unless_same(out: Path, rows: list[dict[str, object]]) -> int:
    """`rows` as JSON lines to `out`, left untouched when it already holds exactly them (its
    time and content stay, so a training that read it stays fresh); returns the row count."""
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if not out.exists() or out.read_text() != text:
        write_atomic(out, text)
    return len(rows)
