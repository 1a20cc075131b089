"""Does the anchored arm read the prompt because of its analyst's reasons, or because of how many
prompts it is trained on? Exploratory; run after `efficacy_smollm2.py --arms anchored_pku` has
built the PKU-only anchored arm (it reads that run's PKU split and that build), never part of its
goals.

    python benchmarks/efficacy_reasons.py [--work outputs/efficacy_smollm2] \
        [--out outputs/reasons] [--seeds 0,1] [--steps 40] [--conditions grounded_reasons]

`efficacy_question_only.py` found the anchored arm's held-out PKU AUC to be mostly the prompt's
(the real answers add +0.050 over one fixed answer), while `efficacy_contrast.py` found the
positive control, trained on the answers of 12 one-label prompts with one fixed reason, to read
the answer (+0.200 and +0.125). The two differ in the critiques' reasons (the 135M analyst's
own, against one fixed sentence per label), in the number of prompts and answers (98 and 195
against 12 and 24), and in the dose and the SFT rows beside them. This trains the positive
control of `tests/test_positive_control.py` (its settings, loss on the critique only; here with
`--steps` steps and 512-token rows for every condition) on ten sets:

- `model_reasons`: every answer the anchored build critiqued (195 of the 196 here), one row
  each, with the build's first critique of it: the verdict sentence and the analyst's reasons;
- `fixed_reasons`: the same answers, the same verdict sentences, the positive control's fixed
  reason instead of the analyst's;
- `twelve_prompts`: the contrast check's `same_label` set (12 one-label PKU training prompts,
  24 answers) with the fixed reason, at the same steps: the bridge to that check;
- `grounded_reasons`: the answers of `model_reasons`, each with the one of its critiques whose
  reasons name the most words of the answer that are in neither the request nor the analysis
  prompt (`answer_words`): does grounding the reasons in the answer remedy the reliance?
- `shuffled_reasons`: the same answers, each with the first critique of another answer of its
  label to another prompt (`shuffled`): is it what the reasons say of the request, or the
  reason text itself, whatever it says?
- `pooled_reasons`: the same answers and verdict sentences, each followed by the reasons of
  another answer's first critique, of either label, to another prompt (`pooled`): reasons that
  vary but tell nothing of the request or the label;
- `short_reasons`: `model_reasons` with each critique's reasons cut to their first
  `SHORT_WORDS` words (`shortened`): does less reason text after the verdict let it read the
  answer?
- `verdict_only`: the same answers, each critique cut to its verdict sentence: is the fixed
  reason's wording needed, or only the absence of varied text?
- `few_fixed_reasons`: the same answers and verdicts, each followed by one of four fixed reasons
  per label (`FEW_FIXED_REASONS`, `few_fixed`): text that varies but is easy to learn;
- `verdict_and_reasons`: each answer twice, its verdict sentence alone and its first critique
  (390 rows): verdict rows beside the analyst's reasons, a remedy that keeps them.

Each adapter, and the base model, is probed as in the contrast check: the held-out PKU pairs
with their real answers, the same with one fixed answer, and the second transfer set. If the
reasons make the prompt reliance, `model_reasons` gains less from the answers than
`fixed_reasons`; if the number of prompts does, `fixed_reasons` gains less than `twelve_prompts`.
What the answers add cannot exceed one minus the prompt-alone AUC, so a critic that reads both
the request and the answer scores low on it; the transfer set, whose every question has a
harmful and a harmless answer, is where the request cannot help.
About 8 minutes per training and probing on 2 CPU cores; a rerun reuses every training finished
with the same config. Writes `reasons.{md,json}` and everything it trains under `--out`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the positive control's settings live with its test
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_types import claim_work_folder_or_exit, positive_int
from efficacy_contrast import (
    add_arguments,
    held_out_probes,
    parse_seeds,
    train_and_probe,
    training_sets,
    write_table,
)
from efficacy_hh_transfer import pku_pairs

from axolotl_mistake.fileio import write_atomic
from axolotl_mistake.records import LabelledPair
from axolotl_mistake.templates import (
    ANALYSIS_VERDICT_HARMFUL,
    ANALYSIS_VERDICT_HARMLESS,
    analysis_verdict,
    anchored_critique,
    guided_analysis_prompt,
)

WORK_MARKER = ".axolotl-mistake-reasons"
CONDITIONS = (
    "model_reasons",
    "fixed_reasons",
    "twelve_prompts",
    "grounded_reasons",
    "shuffled_reasons",
    "pooled_reasons",
    "short_reasons",
    "verdict_only",
    "few_fixed_reasons",
    "verdict_and_reasons",
)
SHORT_WORDS = 8
"""`short_reasons` keeps this many words of each critique's reasons (about 10 of their 25 tokens)."""
FEW_FIXED_REASONS = {
    True: (
        "It helps with a request that can hurt people or break the law.",
        "It gives help that could put someone in danger.",
        "It goes along with a harmful request instead of declining it.",
        "It offers information that could be used to cause harm.",
    ),
    False: (
        "It does not help anyone cause harm.",
        "It stays safe and gives no dangerous help.",
        "It answers without putting anyone at risk.",
        "It contains nothing that could be used to hurt people.",
    ),
}
"""`few_fixed_reasons`' reasons, four per label, written for this check (the first of each is the
positive control's): text that varies from row to row but is easy to learn."""
SEQUENCE_LEN = 512
"""The CPU recipe's row length: the build's PKU rows are longer than the control's 256."""


def build_rows(path: Path) -> list[dict[str, Any]]:
    """The first critique of each distinct (instruction, answer) in an anchored build's analysis
    rows, in file order, with its label read from the verdict sentence the critique opens with
    and all of its critiques, in file order, under `critiques`.
    A ValueError naming the line for a row that opens with neither verdict sentence (not an
    anchored build)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            critique = row["critique"]
            harmful = opening_verdict(critique)
            if harmful is None:
                raise ValueError(
                    f"{path}:{line_no}: field 'critique' opens with neither "
                    f"{ANALYSIS_VERDICT_HARMFUL!r} nor {ANALYSIS_VERDICT_HARMLESS!r}: "
                    "not a label-anchored build"
                )
            key = (row["instruction"], row["bad"])
            out.setdefault(key, {**row, "harmful": harmful, "critiques": []})
            out[key]["critiques"].append(critique)
    return list(out.values())


def opening_verdict(critique: str) -> bool | None:
    """True or False when a critique opens with the harmful or harmless verdict sentence, else
    None (not a label-anchored critique)."""
    for harmful in (True, False):
        if critique.startswith(analysis_verdict(harmful)):
            return harmful
    return None


def content_words(text: str) -> set[str]:
    """Lower-cased alphabetic words of four letters or more that are not English stop words."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return {w for w in re.findall(r"[a-z]+", text.casefold()) if len(w) >= 4} - ENGLISH_STOP_WORDS


def answer_words(critique: str, row: dict[str, Any]) -> int:
    """How many content words of the critique's reasons (after its verdict sentence) occur in
    the answer and in neither the request nor the analysis templates: a count of what the
    reasons take from the answer rather than from the question or the prompt's own wording."""
    ignored = content_words(row["instruction"]) | template_words()
    return len((content_words(reasons_of(critique)) & content_words(row["bad"])) - ignored)


@cache
def template_words() -> frozenset[str]:
    """The content words of the guided-analysis prompts (b) and (b') themselves."""
    prompts = "".join(guided_analysis_prompt("", "", "", label) for label in (True, False))
    return frozenset(content_words(prompts))


def donors(anchored: list[dict[str, Any]], group: list[int], what: str) -> list[int]:
    """For each answer of `group` (indices into `anchored`, in file order), the answer whose
    critique it takes: the group rotated by the first shift from half its size on (wrapping
    round) that leaves no answer a critique of its own prompt. A ValueError naming `what` when
    no shift does (one prompt holds half the group)."""
    size = len(group)

    def fits(shift: int) -> bool:
        return all(
            anchored[i]["instruction"] != anchored[group[(n + shift) % size]]["instruction"]
            for n, i in enumerate(group)
        )

    shift = next((s for s in ((size // 2 + j) % size for j in range(size)) if s and fits(s)), None)
    if shift is None:
        raise ValueError(f"no rotation of the {size} {what} moves every critique to another prompt")
    return [group[(n + shift) % size] for n in range(size)]


def shuffled(anchored: list[dict[str, Any]]) -> list[str]:
    """Each answer's first critique taken from another answer of the same label to another
    prompt (`donors` within each label): the critiques per label are the same; what they say of
    the request no longer fits it."""
    out = [r["critique"] for r in anchored]
    for harmful in (True, False):
        group = [i for i, r in enumerate(anchored) if r["harmful"] is harmful]
        what = f"{'harmful' if harmful else 'harmless'} answers"
        for i, d in zip(group, donors(anchored, group, what), strict=True):
            out[i] = anchored[d]["critique"]
    return out


def pooled(anchored: list[dict[str, Any]]) -> list[str]:
    """Each answer's own verdict sentence followed by the reasons of another answer's first
    critique to another prompt, of either label (`donors` over all answers): reasons that vary
    as the analyst's do but tell neither the request nor the label."""
    group = list(range(len(anchored)))
    return [
        anchored_critique(r["harmful"], reasons_of(anchored[d]["critique"]))
        for r, d in zip(anchored, donors(anchored, group, "answers"), strict=True)
    ]


def reasons_of(critique: str) -> str:
    """A label-anchored critique's reasons: what follows its verdict sentence (the whole text
    when it opens with neither)."""
    harmful = opening_verdict(critique)
    return critique if harmful is None else critique[len(analysis_verdict(harmful)) :]


def shortened(critique: str, words: int = SHORT_WORDS) -> str:
    """The first `words` words of a critique's reasons: less reason text after the same verdict."""
    return " ".join(reasons_of(critique).split()[:words])


def few_fixed(anchored: list[dict[str, Any]]) -> list[str]:
    """Each answer's verdict sentence and one of `FEW_FIXED_REASONS` for its label: the n-th
    answer of a label (file order) takes reason n mod 4, so each reason serves a quarter."""
    seen = {True: 0, False: 0}
    out = []
    for r in anchored:
        reasons = FEW_FIXED_REASONS[r["harmful"]]
        out.append(anchored_critique(r["harmful"], reasons[seen[r["harmful"]] % len(reasons)]))
        seen[r["harmful"]] += 1
    return out


def most_grounded(row: dict[str, Any]) -> str:
    """The answer's critique with the most `answer_words`; the first in file order on a tie."""
    return max(row["critiques"], key=lambda c: answer_words(c, row))


def condition_rows(
    anchored: list[dict[str, Any]],
    same_label: list[LabelledPair],
    conditions: Sequence[str] = CONDITIONS,
) -> dict[str, list[dict[str, str]]]:
    """The training rows of each named condition (`instruction`, `input`, `bad`, `critique`):
    all but `twelve_prompts` name the same answers in the same order and differ only in the
    reasons (`verdict_and_reasons` names each twice: its verdict alone, then its critique).
    Only the named ones are made (`shuffled_reasons` needs two prompts per label)."""
    from tests.test_positive_control import REASONS

    def row(r: dict[str, Any], critique: str) -> dict[str, str]:
        return {
            "instruction": r["instruction"],
            "input": r.get("input", ""),
            "bad": r["bad"],
            "critique": critique,
        }

    def fixed(harmful: bool) -> str:
        return anchored_critique(harmful, REASONS[harmful])

    make: dict[str, Callable[[], list[dict[str, str]]]] = {
        "model_reasons": lambda: [row(r, r["critique"]) for r in anchored],
        "fixed_reasons": lambda: [row(r, fixed(r["harmful"])) for r in anchored],
        "twelve_prompts": lambda: [
            row({"instruction": p.question, "bad": p.answer}, fixed(p.harmful)) for p in same_label
        ],
        "grounded_reasons": lambda: [row(r, most_grounded(r)) for r in anchored],
        "shuffled_reasons": lambda: [
            row(r, c) for r, c in zip(anchored, shuffled(anchored), strict=True)
        ],
        "pooled_reasons": lambda: [
            row(r, c) for r, c in zip(anchored, pooled(anchored), strict=True)
        ],
        "short_reasons": lambda: [
            row(r, anchored_critique(r["harmful"], shortened(r["critique"]))) for r in anchored
        ],
        "verdict_only": lambda: [row(r, analysis_verdict(r["harmful"])) for r in anchored],
        "few_fixed_reasons": lambda: [
            row(r, c) for r, c in zip(anchored, few_fixed(anchored), strict=True)
        ],
        "verdict_and_reasons": lambda: [
            row(r, c) for r in anchored for c in (analysis_verdict(r["harmful"]), r["critique"])
        ],
    }
    return {name: make[name]() for name in conditions}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(
        ap, reads="data/ split and build/anchored/ are", out="reasons", writes="reasons.{md,json}"
    )
    ap.add_argument(
        "--steps",
        type=positive_int,
        default=40,
        help="optimizer steps of every training (default: %(default)s, about two epochs of "
        "the anchored build's answers)",
    )
    ap.add_argument(
        "--conditions",
        default=",".join(CONDITIONS),
        help="comma-separated conditions to train (default: all: %(default)s)",
    )
    args = ap.parse_args(argv)
    seeds = parse_seeds(ap, args.seeds)
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    if not conditions:
        ap.error("argument --conditions: name at least one condition")
    unknown = sorted(set(conditions) - set(CONDITIONS))
    if unknown:
        ap.error(
            f"argument --conditions: unknown {', '.join(unknown)}; choose from {', '.join(CONDITIONS)}"
        )
    work = args.work.resolve()
    # the PKU-only anchored build (the default anchored one adds Alpaca answers since 2026-12-08)
    data, analyses = work / "data", work / "build" / "anchored_pku" / "mistake_analysis.jsonl"
    for path in (data / "pku_train.jsonl", data / "pku_heldout.jsonl", analyses):
        if not path.is_file():
            ap.error(f"{path}: not found; run efficacy_smollm2.py --arms anchored_pku first")
    try:
        same_label = training_sets(pku_pairs(data / "pku_train.jsonl"))["same_label"]
        anchored = build_rows(analyses)
        sets = condition_rows(anchored, same_label, conditions)
    except ValueError as err:
        ap.error(str(err))
    out = args.out.resolve()
    claim_work_folder_or_exit(ap, out, WORK_MARKER, who="efficacy_reasons.py", field="--out")
    probes = held_out_probes(pku_pairs(data / "pku_heldout.jsonl"), args.answer)
    rows, trained_on = {}, {}
    for condition, part in sets.items():
        rows[condition] = out / f"{condition}_rows.jsonl"
        write_atomic(rows[condition], "".join(json.dumps(r) + "\n" for r in part))
        trained_on[condition] = f"{len({r['instruction'] for r in part})} / {len(part)}"
    models = train_and_probe(
        out, rows, seeds, probes, trained_on, max_steps=args.steps, sequence_len=SEQUENCE_LEN
    )
    records = {
        "answer": args.answer,
        "seeds": seeds,
        "steps": args.steps,
        "sequence_len": SEQUENCE_LEN,
        "models": models,
    }
    write_table(out, "reasons", records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
