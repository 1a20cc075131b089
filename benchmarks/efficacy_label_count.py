"""How the label-anchored arm's discrimination grows with the labelled answers it is shown.
Exploratory; run after `efficacy_smollm2.py --arms sft,anchored_pku`, in its work folder, never
part of its goals.

    python benchmarks/efficacy_label_count.py [--work outputs/efficacy_smollm2] [--rows 92,46,23]

The reference is the PKU-only anchored arm (`anchored_pku`: the default anchored arm until
2026-12-08, before 40 Alpaca answers labelled harmless joined it), which critiques the labelled
answers of the 98 PKU-SafeRLHF training prompts (184 labelled red-team rows after the builder's
selection; 86 unsafe and 110 safe answers), each 7 times. Whether a user should expect more from more labelled data — the full PKU-SafeRLHF on
the Hub has hundreds of thousands of rows — depends on whether these answers are past the point
where the curve flattens. So each `anchored_r<N>` arm here is the anchored arm built from N of
those rows only (`select.redteam_n: N`: the N smallest seeded hashes, so a smaller N is a
subset of a larger one) with k scaled by its unsafe answers, the side the balanced pick is
limited by, so that the analysis rows stay about as many (k = round(7 × 86 / unsafe answers
selected)); the same SFT rows, steps, settings and seeds. It is evaluated on the same 108
held-out pairs, plain inference. The table gives each arm's held-out
AUC, its difference from the anchored arm's paired on the same pairs, balanced accuracy at its
training-fitted cut, and beside it a model-free reference fitted on the same answers (TF-IDF +
logistic regression), which says how much of the curve a bag of words draws too.
Writes `compare/label_count/` (table and records) and `compare/label_count_plain/` (the
evaluation's own comparison, paired with the anchored arm).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_types import positive_int
from efficacy_hh_transfer import lexical
from efficacy_smollm2 import (
    FULL,
    REPO,
    Experiment,
    add_malloc_argument,
    add_run_arguments,
    eval_paths,
    evaluated_run,
    write_diagnostic,
)
from efficacy_transfer import record_cell

from axolotl_mistake.evaluate.metrics import auc_estimate, paired_auc_difference_estimate
from axolotl_mistake.evaluate.paired import paired_difference

ARM_PREFIX = "anchored_r"
REFERENCE = "anchored_pku"  # the PKU-only anchored arm, whose build the subsets cut down
ROW_ID = re.compile(r":(\d+)(?::(\d+))?$")
"""A PKU answer's row id ends with its line in the file (1-based) and, where the row holds one
answer of a prompt, the answer's index; a row of one unsafe and one safe answer has no index
(the analysis row's label says which of the two it critiques)."""


def arm_name(rows: int) -> str:
    return f"{ARM_PREFIX}{rows}"


def rows_of(arm: str) -> int:
    return int(arm.removeprefix(ARM_PREFIX))


def training_rows(cfg: dict[str, Any]) -> list[Any]:
    """The training red-team rows (`Item`s) a build config selects: the builder's own
    selection, no model called."""
    from dataset_builders.config import BuildConfig
    from dataset_builders.selection import read_and_select

    items = read_and_select(BuildConfig.model_validate(cfg), None).records
    return [it for it in items if it.role == "redteam" and it.split == "train"]


def unsafe_answers(cfg: dict[str, Any]) -> int:
    """Labelled unsafe answers among the training red-team rows a build config selects."""
    return sum(1 for it in training_rows(cfg) if (it.row.unsafe_answer or "").strip())


class LabelCount(Experiment):
    """The efficacy experiment's folder and steps, with `anchored_r<N>` arms: the anchored
    build on N labelled red-team rows, trained and evaluated as the anchored arm is."""

    def available_rows(self) -> int:
        """The labelled red-team rows the anchored build selects (all of the training side)."""
        return len(training_rows(super().build_config(REFERENCE)))

    @cached_property
    def scaled_ks(self) -> dict[str, int]:
        """Each subset arm's k, once computed (a selection reads every source row)."""
        return {}

    def build_config(self, arm: str) -> dict[str, Any]:
        if not arm.startswith(ARM_PREFIX):
            return super().build_config(arm)
        cfg = super().build_config(REFERENCE)
        cfg["output"] = str(self.work / "build" / arm)
        cfg["select"]["redteam_n"] = rows_of(arm)
        cfg["analyses"]["k"] = self.scaled_k(arm, cfg)
        return cfg

    def scaled_k(self, arm: str, cfg: dict[str, Any]) -> int:
        """7 × the anchored build's unsafe answers / the arm's (computed once per arm)."""
        cache = self.scaled_ks
        if arm not in cache:
            unsafe_full = unsafe_answers(super().build_config(REFERENCE))
            unsafe = unsafe_answers(cfg)
            if not unsafe:
                raise SystemExit(f"error: {arm}: its {rows_of(arm)} rows hold no unsafe answer")
            cache[arm] = max(1, round(self.size.anchored_k * unsafe_full / unsafe))
        return cache[arm]

    def analysis_build(self, arm: str) -> str | None:
        return arm if arm.startswith(ARM_PREFIX) else super().analysis_build(arm)

    def eval_config(self, arm: str, base_model: str, adapter: Path | None, style: str) -> dict:
        if not arm.startswith(ARM_PREFIX):
            return super().eval_config(arm, base_model, adapter, style)
        cfg = super().eval_config(REFERENCE, base_model, adapter, style)
        cfg["name"] = f"SFT + label-anchored balanced analysis, {rows_of(arm)} labelled rows"
        cfg["output_dir"] = str(eval_paths(self.work, arm, style)[1])
        cfg["modes"] = ["plain"]  # the question is discrimination; NLL and refusals come along
        return cfg


def answer_of(rows: list[str], row_id: str, label: str | None = None) -> tuple[int, int]:
    """(line, answer index) of the PKU answer a row id names in the file of `rows`; an id
    without an index names the answer whose safety label is `label` ('harmful'/'harmless')."""
    m = ROW_ID.search(row_id)
    if not m:
        raise ValueError(f"not a PKU-SafeRLHF row id: {row_id!r}")
    line = int(m[1])
    if m[2] is not None:
        return line, int(m[2])
    row = json.loads(rows[line - 1])
    match = [i for i in (0, 1) if row[f"is_response_{i}_safe"] == (label == "harmless")]
    if label is None or len(match) != 1:
        raise ValueError(f"{row_id!r}: no index, and label {label!r} names no single answer")
    return line, match[0]


def covered_answers(build: Path, train: list[str]) -> set[tuple[int, int]]:
    """(line, answer index) of the PKU training answers (the lines of `train`) that the build's
    analyses critique."""
    found = set()
    for line in (build / "mistake_analysis.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            found.add(answer_of(train, row["id"], row["label"]))
    return found


def answer_text(rows: list[str], line: int, index: int) -> str:
    """The prompt and answer as the TF-IDF reference reads them."""
    row = json.loads(rows[line - 1])
    return f"{row['prompt']}\n{row[f'response_{index}']}"


def lexical_against_adapter(
    data: Path, train: list[str], answers: set[tuple[int, int]], run: Path
) -> dict[str, dict[str, Any]]:
    """On the run's held-out pairs: the AUC of TF-IDF + logistic regression fitted on `answers`
    (the training answers an arm's analyses critique), and the run's AUC minus it, paired on
    the same pairs (is the adapter more than a bag of words fitted on what it was shown?).
    `train`: the lines of the data's pku_train.jsonl."""
    texts = [answer_text(train, line, i) for line, i in sorted(answers)]
    labels = [
        not json.loads(train[line - 1])[f"is_response_{i}_safe"] for line, i in sorted(answers)
    ]
    held = (data / "pku_heldout.jsonl").read_text().splitlines()
    scored = [
        json.loads(x) for x in (run / "discrimination_pairs.jsonl").read_text().splitlines() if x
    ]
    words = lexical(texts, labels)(
        [answer_text(held, *answer_of(held, r["source"])) for r in scored]
    )
    truth = [bool(r["harmful"]) for r in scored]
    adapter = [float(r["margin"]) for r in scored]
    return {
        "tfidf_auc": auc_estimate(truth, words).model_dump(),
        "auc_minus_tfidf_paired": paired_auc_difference_estimate(
            truth, adapter, words
        ).model_dump(),
    }


def arm_record(exp: LabelCount, arm: str) -> dict[str, Any]:
    """What the table shows of one arm, read back from its build and its evaluation run."""
    run = eval_paths(exp.work, arm)[1]
    results = json.loads((run / "results.json").read_text())
    disc = results["discrimination"]
    record: dict[str, Any] = {
        "auc": disc["auc"],
        "balanced_accuracy": disc["balanced_accuracy"],
        "cut": disc["threshold"],
        "helpful_nll": results["headline"]["plain"]["helpful_nll"],
    }
    if arm != REFERENCE:
        gap = paired_difference(run, eval_paths(exp.work, REFERENCE)[1], "discrimination_auc")
        record["auc_minus_anchored_paired"] = gap.model_dump() if gap else None
    if arm == "sft":
        return record
    build = exp.work / "build" / arm
    train = (exp.data / "pku_train.jsonl").read_text().splitlines()
    answers = covered_answers(build, train)
    rows = [json.loads(x) for x in (build / "mistake_analysis.jsonl").read_text().splitlines() if x]
    cfg = exp.build_config(arm)
    record.update(
        rows=cfg["select"]["redteam_n"] or exp.available_rows(),
        prompts=len({line for line, _ in answers}),
        answers=len(answers),
        harmful_answers=sum(
            1 for line, i in answers if not json.loads(train[line - 1])[f"is_response_{i}_safe"]
        ),
        analysis_rows=len(rows),
        k=cfg["analyses"]["k"],
    )
    record.update(lexical_against_adapter(exp.data, train, answers, run))
    return record


def render_table(records: dict[str, dict[str, Any]]) -> str:
    head = (
        "| arm | labelled rows selected | prompts / answers (harmful) analysed | k | analysis rows "
        f"| held-out AUC | AUC − {REFERENCE}'s, paired | bal. acc. % (fitted cut) "
        "| TF-IDF on the same answers: AUC | AUC − TF-IDF's, paired | reference NLL |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )

    def auc(record: dict[str, Any] | None) -> str:
        return record_cell(record, "discrimination_auc", with_n=False)

    lines = []
    for arm, r in records.items():
        counts = (
            f"{r['rows']} | {r['prompts']} / {r['answers']} ({r['harmful_answers']}) | {r['k']} "
            f"| {r['analysis_rows']}"
            if "prompts" in r
            else "– | – | – | –"
        )
        lines.append(
            f"| {arm} | {counts} | {auc(r['auc'])} | {auc(r.get('auc_minus_anchored_paired'))} "
            f"| {record_cell(r['balanced_accuracy'], 'discrimination_balanced', with_n=False)} "
            f"| {auc(r.get('tfidf_auc'))} | {auc(r.get('auc_minus_tfidf_paired'))} "
            f"| {record_cell(r['helpful_nll'], 'helpful_nll', with_n=False)} |"
        )
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(
        ap,
        reads="SFT-only and anchored_pku runs are",
        arms="reference arms",
        default=f"sft,{REFERENCE}",
    )
    ap.add_argument(
        "--rows",
        default="92,46,23",
        help="comma-separated numbers of labelled red-team rows, one anchored_r<N> arm each "
        "(default %(default)s: a half, a quarter and an eighth of the 184 the anchored_pku build "
        "selects; about 30 minutes each on 2 cores)",
    )
    ap.add_argument("--threads", type=positive_int, default=2, help="OMP_NUM_THREADS of every step")
    add_malloc_argument(ap)
    args = ap.parse_args(argv)
    work, arms = evaluated_run(ap, args)
    if REFERENCE not in arms:
        ap.error(f"--arms must hold {REFERENCE}: every subset is compared with it, paired")
    exp = LabelCount(
        work,
        REPO.parent / "shared" / "data",
        FULL,
        str(args.threads),
        keep_freed_memory=not args.default_malloc,
    )
    total = exp.available_rows()
    try:
        counts = sorted({int(x) for x in args.rows.split(",") if x.strip()}, reverse=True)
    except ValueError:
        ap.error(f"argument --rows: not a list of whole numbers: {args.rows!r}")
    if not counts or not all(0 < n < total for n in counts):
        ap.error(f"argument --rows: give numbers between 1 and {total - 1}")
    from axolotl_mistake.models import ensure_embedded_model

    base_model = str(ensure_embedded_model())
    # the subsets differ from the anchored arm in their analyses only if it was made at these
    # very settings (the full size, the default seeds)
    if not exp.trained(REFERENCE, base_model):
        raise SystemExit(
            f"error: {work / 'train' / REFERENCE} was not trained at the default full size "
            f"(or its inputs changed since): run efficacy_smollm2.py --arms sft,{REFERENCE} there"
            " first, at the default size and seeds"
        )
    subsets = [arm_name(n) for n in counts]
    for arm in subsets:
        exp.build(arm)
        lora = exp.train(arm, base_model)
        exp.evaluate(arm, base_model, lora, "analysis")
    exp.compare("analysis", "plain", (*arms, *subsets), "label_count_plain", REFERENCE)
    records = {arm: arm_record(exp, arm) for arm in (*arms, *subsets)}
    write_diagnostic(work, "label_count", render_table(records), records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
