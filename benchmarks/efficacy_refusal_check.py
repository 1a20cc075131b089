"""Did refusals labelled harmless reach the critic, and do they carry beyond their wording?
Exploratory; run after `efficacy_smollm2.py --arms anchored_refusal_labels`, never part of its
goals.

    python benchmarks/efficacy_refusal_check.py [--work outputs/efficacy_smollm2] \
        [--arms anchored,anchored_refusal_labels]

The positive control of the `anchored_refusal_labels` arm: each arm's `analysis` probe scores
the 40 refusals that arm was trained on as harmless (the project's six sentences,
`refusal_rows.write_refusal_pairs`, read from the work folder) against the labelled unsafe PKU
answers to the same training prompts (one per prompt, clipped as the builds clip them). A
critic that learned its refusal rows gives the refusals the lower harmful margin (AUC near 1);
the anchored arm, never shown a refusal, is the reference. Whether the lesson carries to
refusals worded otherwise is read elsewhere: `efficacy_length.py --set builtin` (the shipped
probe pairs) and `efficacy_hh_transfer.py` (human-written HH turns).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from efficacy_smollm2 import (
    LABELS,
    add_run_arguments,
    eval_paths,
    evaluated_run,
    probe_arm,
    write_diagnostic,
)

from axolotl_mistake.records import LabelledPair


def control_pairs(refusals: Path, pku_train: Path, max_chars: int) -> list[LabelledPair]:
    """The refusal pairs as written, then one labelled unsafe PKU answer (the first, clipped to
    `max_chars`) to each of their prompts that has one."""
    harmless = [
        LabelledPair(**json.loads(line)) for line in refusals.read_text().splitlines() if line
    ]
    unsafe: dict[str, str] = {}
    for line in pku_train.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            for i in (0, 1):
                if not row[f"is_response_{i}_safe"]:
                    unsafe.setdefault(str(row["prompt"]).strip(), row[f"response_{i}"])
    harmful = [
        LabelledPair(question=p.question, answer=unsafe[p.question][:max_chars], harmful=True)
        for p in harmless
        if p.question in unsafe
    ]
    return harmless + harmful


def score_arm(config: Path, pairs: list[LabelledPair]) -> dict[str, Any]:
    """The arm's margins on `pairs`: the AUC, and the mean margin of each label."""
    result = probe_arm(config, pairs, check="the refusal check")
    margins = np.asarray(result.margins)
    labels = np.asarray([p.harmful for p in pairs])
    return {
        "auc": result.auc,
        "refusals": int((~labels).sum()),
        "unsafe_answers": int(labels.sum()),
        "mean_margin_refusals": float(margins[~labels].mean()),
        "mean_margin_unsafe": float(margins[labels].mean()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(
        ap,
        reads="evaluated arms and refusal pairs are",
        arms="arms to score",
        default="anchored,anchored_refusal_labels",
    )
    args = ap.parse_args(argv)
    work, arms = evaluated_run(ap, args)
    refusals = work / "build" / "refusal" / "refusal_pairs.jsonl"
    if not refusals.is_file() or not (work / "build_anchored_refusal_labels.yml").is_file():
        ap.error(f"{refusals}: not found; run efficacy_smollm2.py --arms anchored_refusal_labels")
    build = yaml.safe_load((work / "build_anchored_refusal_labels.yml").read_text())
    clip = int(build["mistakes"]["max_answer_chars"])  # as that build clipped its answers
    pairs = control_pairs(refusals, work / "data" / "pku_train.jsonl", clip)
    records = {arm: score_arm(eval_paths(work, arm)[0], pairs) for arm in arms}
    lines = [
        "| arm | AUC (unsafe answer above refusal) | mean margin: refusals / unsafe answers |",
        "|---|---|---|",
    ]
    for arm, r in records.items():
        lines.append(
            f"| {LABELS[arm]} | {r['auc']:.3f} "
            f"| {r['mean_margin_refusals']:+.2f} / {r['mean_margin_unsafe']:+.2f} |"
        )
    write_diagnostic(work, "refusal_check", "\n".join(lines) + "\n", records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
