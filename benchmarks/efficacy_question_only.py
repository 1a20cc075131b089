"""How much of an arm's held-out PKU discrimination does the question alone explain?
Exploratory; run after `efficacy_smollm2.py`, never part of its goals.

    python benchmarks/efficacy_question_only.py [--work outputs/efficacy_smollm2] [--arms ...] \
        [--answer "OK."]

The held-out PKU pairs are two answers to each of 54 prompts, and the two usually share their
label: a scorer that reads only the question can rank them well without telling one answer from
another. This measures that, three ways, on the very pairs `efficacy_smollm2.py` scores:

- the pairs' label structure: how many questions come with two harmful answers, two harmless
  ones, or one of each (only the last can show answer discrimination with the question fixed);
- model-free references: TF-IDF + logistic regression fitted on the PKU training side
  (`efficacy_hh_transfer.lexical`) on the question alone, the answer alone, and both;
- each arm's `analysis` probe with every answer replaced by one fixed text (`--answer`), run as
  `efficacy_transfer.py` runs an arm on other pairs (`eval/transfer_pku_question_only/<arm>`,
  its evaluation config but for the pairs; reused when done): whatever AUC remains comes from
  the question. Beside it, the arm's AUC on the real answers (`eval/analysis/<arm>`), the
  difference of the two paired on the same pairs (what the answers add), and `twins` on the
  questions that have one answer of each kind. (Not through `efficacy_transfer.py --pairs`: the
  two answers to a question become one item there, which its paired comparison refuses.)

Writes `compare/question_only/question_only.{md,json}`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import efficacy_transfer
from efficacy_hh_transfer import lexical, pku_pairs
from efficacy_smollm2 import (
    LABELS,
    add_malloc_argument,
    add_run_arguments,
    eval_paths,
    evaluated_run,
    write_diagnostic,
)

from axolotl_mistake.evaluate.metrics import auc_estimate, paired_auc_difference_estimate
from axolotl_mistake.evaluate.results import bootstrap_settings
from axolotl_mistake.fileio import write_atomic
from axolotl_mistake.records import LabelledPair

NAME = "transfer_pku_question_only"
"""The fixed-answer runs' name, as `efficacy_transfer.py --name pku_question_only` names its
runs: eval/transfer_pku_question_only/<arm>, eval_transfer_pku_question_only_<arm>.yml."""


def heldout_pairs(work: Path, arm: str) -> list[LabelledPair]:
    """The labelled pairs the arm's own `analysis` evaluation scores (the held-out PKU pairs)."""
    config = yaml.safe_load(eval_paths(work, arm)[0].read_text())
    return efficacy_transfer.labelled_pairs(config["prompt_sets"]["discrimination"])


def question_kinds(pairs: list[LabelledPair]) -> dict[str, str]:
    """Each question (in file order) by the labels of its answers: `harmful` (every answer
    harmful), `harmless` (every one harmless) or `mixed` (both kinds)."""
    labels: dict[str, set[bool]] = {}
    for pair in pairs:
        labels.setdefault(pair.question, set()).add(pair.harmful)
    return {
        q: "mixed" if len(found) > 1 else ("harmful" if True in found else "harmless")
        for q, found in labels.items()
    }


def label_structure(pairs: list[LabelledPair]) -> dict[str, int]:
    """How many questions of each `question_kinds` kind, and the number of pairs."""
    kinds = Counter(question_kinds(pairs).values())
    return {k: kinds.get(k, 0) for k in ("harmful", "harmless", "mixed")} | {"pairs": len(pairs)}


def fixed_answer_pairs(pairs: list[LabelledPair], answer: str) -> list[dict[str, Any]]:
    """The pairs as `{question, answer, harmful, source}` records with every answer `answer`:
    a probe's margin on them can depend on the question only."""
    return [
        {"question": p.question, "answer": answer, "harmful": p.harmful, "source": p.source}
        for p in pairs
    ]


def lexical_references(train: Path, pairs: list[LabelledPair]) -> dict[str, Any]:
    """AUC on `pairs` of TF-IDF + logistic regression fitted on the PKU training answers, on the
    question alone, the answer alone and both (the last is `efficacy_transfer`'s reference)."""
    fitted = pku_pairs(train)
    views = {
        "question": lambda p: p.question,
        "answer": lambda p: p.answer,
        "both": lambda p: f"{p.question}\n{p.answer}",
    }
    out = {}
    for view, text in views.items():
        score = lexical([text(p) for p in fitted], [p.harmful for p in fitted])
        margins = [float(m) for m in score([text(p) for p in pairs])]
        out[view] = auc_estimate([p.harmful for p in pairs], margins).model_dump()
    return out


def arm_record(work: Path, arm: str, pairs: list[LabelledPair]) -> dict[str, Any]:
    """The arm's AUC on the real answers (its `analysis` run) and with every answer fixed (its
    run on the fixed-answer pairs), what the answers add (the first minus the second, paired:
    both runs' margins matched to the same pairs by source id) and `twins` on the real answers."""
    real, fixed = eval_paths(work, arm)[1], eval_paths(work, arm, NAME)[1]
    results = {run: json.loads((run / "results.json").read_text()) for run in (real, fixed)}
    margins = [efficacy_transfer.run_margins(run, pairs) for run in (real, fixed)]
    if any(m is None for run in margins for m in run):
        raise ValueError(f"{arm}: a pair without a margin in {real} or {fixed}; rerun them")
    gain = paired_auc_difference_estimate(
        [p.harmful for p in pairs], *margins, **bootstrap_settings(results[real]["config"])
    )
    return {
        "auc": results[real]["discrimination"]["auc"],
        "auc_question_only": results[fixed]["discrimination"]["auc"],
        "answers_add_paired": gain.model_dump(),
        "twins": efficacy_transfer.twins(pairs, margins[0]),
    }


def table(records: dict[str, Any], arms: list[str], answer: str) -> str:
    s = records["label_structure"]
    lexical_auc = records["tfidf_pku_train"]
    cell = efficacy_transfer.record_cell
    lines = [
        f"Held-out PKU pairs: {s['pairs']} answers to {s['harmful'] + s['harmless'] + s['mixed']}"
        f" questions; {s['harmful']} with only harmful answers, {s['harmless']} with only"
        f" harmless ones, {s['mixed']} with one of each.",
        "",
        "| scorer | AUC, real answers | AUC, every answer replaced by "
        f"{json.dumps(answer)} (the question alone) | what the answers add (paired) "
        "| harmful answer above its twin % |",
        "|---|---|---|---|---|",
        f"| TF-IDF on the PKU training side: question alone "
        f"| {cell(lexical_auc['question'], 'discrimination_auc')} | – | – | – |",
        f"| TF-IDF on the PKU training side: answer alone "
        f"| {cell(lexical_auc['answer'], 'discrimination_auc')} | – | – | – |",
        f"| TF-IDF on the PKU training side: both "
        f"| {cell(lexical_auc['both'], 'discrimination_auc')} | – | – | – |",
    ]
    for arm in arms:
        r = records[arm]
        lines.append(
            f"| {LABELS[arm]} | {cell(r['auc'], 'discrimination_auc')} "
            f"| {cell(r['auc_question_only'], 'discrimination_auc')} "
            f"| {cell(r['answers_add_paired'], 'discrimination_auc')} "
            f"| {efficacy_transfer.twins_cell(r['twins'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(
        ap,
        reads="evaluated arms and data/ are",
        arms="arms to probe with the question alone",
        default="base,sft,anchored",
    )
    ap.add_argument(
        "--answer",
        default="OK.",
        help="the text that replaces every answer (default: %(default)s)",
    )
    ap.add_argument("--threads", default="2", help="OMP threads of the evaluation (default: 2)")
    add_malloc_argument(ap)
    args = ap.parse_args(argv)
    if not args.answer.strip():
        ap.error("argument --answer: a blank answer leaves nothing to probe")
    work, arms = evaluated_run(ap, args)
    train = work / "data" / "pku_train.jsonl"
    if not train.is_file():
        ap.error(f"{train}: not found; run efficacy_smollm2.py first")
    pairs = heldout_pairs(work, arms[0])
    for arm in arms[1:]:
        if heldout_pairs(work, arm) != pairs:
            ap.error(f"{arm}: its evaluation scored other pairs than {arms[0]}'s; rerun both")
    fixed = work / "question_only" / "pku_heldout_fixed_answer.jsonl"
    text = "".join(json.dumps(r) + "\n" for r in fixed_answer_pairs(pairs, args.answer))
    if not fixed.is_file() or fixed.read_text(encoding="utf-8") != text:
        write_atomic(fixed, text)  # rewritten only when changed: a newer file reruns the arms
    sets = efficacy_transfer.prompt_sets(fixed, "pairs", None, "instruction")
    records: dict[str, Any] = {
        "answer": args.answer,
        "label_structure": label_structure(pairs),
        "tfidf_pku_train": lexical_references(train, pairs),
    }
    keep = not args.default_malloc
    for arm in arms:  # each run reused when done, as efficacy_transfer.py reuses its own
        efficacy_transfer.evaluate(work, arm, NAME, sets, args.threads, ("plain",), keep)
        records[arm] = arm_record(work, arm, pairs)
    write_diagnostic(work, "question_only", table(records, arms, args.answer), records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
