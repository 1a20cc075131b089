"""Did refusals labelled harmless reach the critic, and do they carry beyond their wording?
Exploratory; run after `efficacy_smollm2.py --arms anchored_pku,anchored_refusal_labels` (or
another label arm of `label_arms.py`, the default `anchored` arm among them), never part of its
goals.

    python benchmarks/efficacy_refusal_check.py [--work outputs/efficacy_smollm2] \
        [--label-arm anchored_refusal_labels] [--arms anchored_pku,<the label arm>]

The positive control of a label arm (`label_arms.LABEL_ARM_SPECS`): each arm's `analysis`
probe scores the 40 refusals the label arm was trained on as harmless (read from the work
folder) against an answer to the same prompt known to be worse. For `anchored_refusal_labels`
(the project's six sentences, `refusal_rows.write_refusal_pairs`; its control
`refusal_rows.control_pairs`) that is the labelled unsafe PKU answer to the same training prompt
(one per prompt, clipped as the builds clip them); for `anchored_hh_refusals` (HH-RLHF turns,
`refusal_rows.write_hh_refusal_pairs`; its control `refusal_rows.hh_control_pairs`) the
rejected turn of the same conversation, which the raters found the more harmful (a relative
label: "harmful" here means "the worse of the two"). A critic that learned its refusal rows
gives the refusals the lower harmful margin (AUC near 1); the PKU-only anchored arm
(`anchored_pku`), never shown a refusal or an Alpaca answer, is the reference. Whether the lesson carries to refusals worded otherwise is read elsewhere:
`efficacy_length.py --set builtin` (the shipped probe pairs) and `efficacy_hh_transfer.py`
(human-written HH turns).
"""

from __future__ import annotations

import argparse
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
from label_arms import LABEL_ARM_SPECS

from axolotl_mistake.records import LabelledPair


def score_arm(config: Path, pairs: list[LabelledPair]) -> dict[str, Any]:
    """The arm's margins on `pairs`: the AUC, and the count and mean margin of each side: the
    label arm's answers labelled harmless (refusals, or Alpaca answers: the spec's `answers`)
    and the worse answers beside them."""
    result = probe_arm(config, pairs, check="the refusal check")
    margins = np.asarray(result.margins)
    labels = np.asarray([p.harmful for p in pairs])
    return {
        "auc": result.auc,
        "harmless_answers": int((~labels).sum()),
        "worse_answers": int(labels.sum()),
        "mean_margin_harmless": float(margins[~labels].mean()),
        "mean_margin_worse": float(margins[labels].mean()),
    }


DEFAULT_ARMS = "anchored_pku,<the label arm>"
FIRST = "anchored_refusal_labels"  # its table is `refusal_check`, the others' `refusal_check_<arm>`


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(
        ap, reads="evaluated arms and refusal pairs are", arms="arms to score", default=DEFAULT_ARMS
    )
    ap.add_argument(
        "--label-arm",
        choices=tuple(LABEL_ARM_SPECS),
        default=FIRST,
        help="the arm whose answers labelled harmless (and its control answers) are scored"
        " (default: %(default)s)",
    )
    args = ap.parse_args(argv)
    label_arm = args.label_arm
    if args.arms == DEFAULT_ARMS:
        args.arms = f"anchored_pku,{label_arm}"
    work, arms = evaluated_run(ap, args)
    spec = LABEL_ARM_SPECS[label_arm]
    refusals = work / "build" / "refusal" / spec.pairs_file
    if not refusals.is_file() or not (work / f"build_{label_arm}.yml").is_file():
        ap.error(f"{refusals}: not found; run efficacy_smollm2.py --arms {label_arm}")
    build = yaml.safe_load((work / f"build_{label_arm}.yml").read_text())
    clip = int(build["mistakes"]["max_answer_chars"])  # as that build clipped its answers
    pairs = spec.control_pairs(refusals, work / "data" / spec.control_file, clip)
    records = {arm: score_arm(eval_paths(work, arm)[0], pairs) for arm in arms}
    lines = [
        f"| arm | AUC (the worse answer above the arm's {spec.answers}) "
        f"| mean margin: {spec.answers} / worse answers |",
        "|---|---|---|",
    ]
    for arm, r in records.items():
        lines.append(
            f"| {LABELS[arm]} | {r['auc']:.3f} "
            f"| {r['mean_margin_harmless']:+.2f} / {r['mean_margin_worse']:+.2f} |"
        )
    name = "refusal_check" if label_arm == FIRST else f"refusal_check_{label_arm}"
    write_diagnostic(work, name, "\n".join(lines) + "\n", records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
