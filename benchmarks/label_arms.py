"""The label arms of `efficacy_smollm2.py`: the PKU-SafeRLHF anchored build plus more answers
labelled harmless, each written to a `pairs` file its build reads.

The default `anchored` arm is one of them since 2026-12-08: its labelled harmless answers hold
40 detailed Alpaca answers to benign training-side instructions (`alpaca_label_rows.py`), which
lowered the critic's lean on answer length outside PKU and ranked the shipped probe pairs
better at two training seeds (RESULTS.md, "Detailed harmless answers to benign instructions");
`anchored_pku` (opt-in) is the build without them, the default until then. The others are
opt-in, outside the default run and its goals. The PKU training answers hold one refusal in 196,
labelled unsafe, so the anchored critic is never taught what a refusal is; the refusal label
arms' builds add refusals to training-side red-team prompts to its labelled harmless answers.
Each entry is everything the scripts need to know of one arm: where its pairs go, how they are
written (before its build, which reads them), and its positive control
(`efficacy_refusal_check.py`: its harmless answers against answers known to be worse). A new
label arm is a writer and a control maker in one file plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alpaca_label_rows import (
    alpaca_control_pairs,
    alpaca_hh_control_pairs,
    write_alpaca_hh_pairs,
    write_alpaca_pairs,
)
from refusal_rows import (
    control_pairs,
    hh_control_pairs,
    write_hh_refusal_pairs,
    write_refusal_pairs,
)

from axolotl_mistake.records import LabelledPair


@dataclass(frozen=True)
class LabelArm:
    """One label arm. `write_pairs(data, out, limit)` writes its refusal pairs (the `pairs`
    source) from the split's folder and returns their count; `control_pairs(refusals,
    training_file, max_chars)` gives its refusals then a worse answer to each, the worse answers
    read from `control_file` of the split's folder."""

    pairs_file: str
    write_pairs: Callable[[Path, Path, int], int]
    control_pairs: Callable[[Path, Path, int], list[LabelledPair]]
    control_file: str
    answers: str = "refusals"  # what its harmless answers are, in the control's table


LABEL_ARM_SPECS: dict[str, LabelArm] = {
    # the project's six refusal sentences; control: the labelled unsafe PKU answer to the prompt
    "anchored_refusal_labels": LabelArm(
        "refusal_pairs.jsonl", write_refusal_pairs, control_pairs, "pku_train.jsonl"
    ),
    # as many refusals in HH-RLHF's assistant's words; control: the conversation's rejected turn
    "anchored_hh_refusals": LabelArm(
        "hh_refusal_pairs.jsonl", write_hh_refusal_pairs, hh_control_pairs, "hh_train.jsonl"
    ),
    # both: 40 Alpaca answers and 40 HH refusals; control: each one's worse answers
    "anchored_alpaca_hh": LabelArm(
        "alpaca_hh_pairs.jsonl",
        write_alpaca_hh_pairs,
        alpaca_hh_control_pairs,
        "pku_train.jsonl",
        answers="Alpaca answers and HH refusals",
    ),
    # the default anchored arm (`anchored_alpaca_answers` until 2026-12-08): detailed Alpaca
    # answers to benign instructions; control: labelled unsafe PKU answers
    "anchored": LabelArm(
        "alpaca_answer_pairs.jsonl",
        write_alpaca_pairs,
        alpaca_control_pairs,
        "pku_train.jsonl",
        answers="Alpaca answers",
    ),
}
