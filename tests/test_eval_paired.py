"""Paired differences between two run folders (axolotl_mistake.evaluate.paired) and `compare
--paired-with`: hand-made runs written as the runner writes them, with known per-item values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from axolotl_mistake.errors import InputError
from axolotl_mistake.evaluate.judges import Verdict
from axolotl_mistake.evaluate.metrics import auc_estimate
from axolotl_mistake.evaluate.paired import PAIRED_COLUMNS, paired_difference
from tests.test_eval_report import BOOT, _answers, _cfg, _discrimination, _verdicts

LABELS = [True, True, False, False, True]


def _write_run(
    out: Path,
    name: str,
    harmless: dict[str, bool],
    nll: list[float],
    margins: list[float],
    hijacked: bool = True,
) -> Path:
    """A run folder of the fixture's answers with these refusal-judge harmless verdicts, reference
    NLLs and probe margins, written by the runner's own writer."""
    from axolotl_mistake.evaluate.inference import Answer
    from axolotl_mistake.evaluate.metrics import estimate
    from axolotl_mistake.evaluate.report import render_run_report
    from axolotl_mistake.evaluate.results import Results
    from axolotl_mistake.evaluate.runner import _write_outputs
    from axolotl_mistake.evaluate.scoring import agreement, headline, mode_metrics, unparseable

    answers = _answers()
    if not hijacked:  # g0 no longer repeats the injected text
        answers = [
            Answer(a.id, a.set, a.mode, a.question, "No.", a.error, a.target, a.safe)
            if a.id == "g0"
            else a
            for a in answers
        ]
    verdicts = _verdicts()
    verdicts["refusal"]["harmless_verdict"] = {k: Verdict(v, "ok") for k, v in harmless.items()}
    disc = _discrimination(0.0).model_copy(update={"auc": auc_estimate(LABELS, margins, **BOOT)})
    measured = {
        "discrimination": disc.accuracy,
        "discrimination_balanced": disc.balanced_accuracy,
        "discrimination_auc": disc.auc,
        "helpful_nll": estimate(nll, unit="nll", **BOOT),
    }
    m = mode_metrics(answers, verdicts, BOOT, measured)
    config = json.loads(_cfg().model_dump_json())
    results = Results(
        name=name,
        created="2026-01-01T00:00:00Z",
        config=config,
        primary_judge="refusal",
        judges=["refusal", "self"],
        modes=["plain"],
        counts={"harmful": 4, "helpful": 3},
        metrics={"plain": m},
        headline={"plain": headline(m, "refusal")},
        agreement={"plain": agreement(verdicts, answers)},
        unparseable={"plain": unparseable(verdicts)},
        discrimination=disc,
    )
    pair_lines = [
        json.dumps({"key": f"k{i}", "harmful": y, "margin": v, "predicted_harmful": v > 0})
        for i, (y, v) in enumerate(zip(LABELS, margins))
    ]
    nll_lines = [json.dumps({"id": f"p{i}", "mode": "plain", "nll": v}) for i, v in enumerate(nll)]
    out.mkdir(parents=True)
    _write_outputs(
        out,
        results,
        {"plain": answers},
        {"plain": verdicts},
        pair_lines,
        nll_lines,
        lambda results, out: [],
        render_run_report,
        earlier_run=False,
    )
    return out


REFERENCE = {"h0": True, "h1": False, "h2": True, "h3": True}


@pytest.fixture
def runs(tmp_path):
    reference = _write_run(
        tmp_path / "sft", "sft", REFERENCE, [2.0, 3.0, 4.0], [2.0, 0.5, -1.0, 0.7, 1.0]
    )
    # h1 now refused too, h2 no longer; NLL up by 0.5, 0, 0.1; pair 3 ranked below the harmful
    ours = _write_run(
        tmp_path / "anchored",
        "anchored",
        {"h0": True, "h1": True, "h2": False, "h3": True},
        [2.5, 3.0, 4.1],
        [2.0, 0.5, -1.0, -0.7, 1.0],
        hijacked=False,
    )
    return ours, reference


def test_each_column_is_the_mean_of_per_item_differences(runs):
    ours, reference = runs
    harmless = paired_difference(ours, reference, "harmless_rate")
    assert harmless.value == pytest.approx(0.0) and harmless.n == 4  # +1 and -1
    assert harmless.low < 0 < harmless.high
    nll = paired_difference(ours, reference, "helpful_nll")
    assert nll.value == pytest.approx(0.2) and nll.unit == "nll"
    assert 0 <= nll.low <= 0.2 <= nll.high <= 0.5
    # the rule column: g0 defended now, g1 and g3 as before, g2 failed in both (missing)
    hijack = paired_difference(ours, reference, "goal_hijack_defence")
    assert hijack.value == pytest.approx(1 / 3) and hijack.n == 3 and hijack.missing == 1
    # over-refusal reads the safe prompts only (x0, x1): the same verdicts, no difference
    assert paired_difference(ours, reference, "over_refusal").value == pytest.approx(0.0)
    auc = paired_difference(ours, reference, "discrimination_auc")
    assert auc.value == pytest.approx(1.0 - 5 / 6) and auc.n == 5
    # the self judge's score, named instead of the headline's judge
    scores = paired_difference(ours, reference, "harmless_score", judge="self")
    assert scores.value == pytest.approx(0.0)


def test_unpaired_runs_are_refused_and_unmeasured_columns_give_none(runs, tmp_path):
    ours, reference = runs
    assert "discrimination" not in PAIRED_COLUMNS  # accuracy at two different cuts
    with pytest.raises(ValueError, match="no paired difference"):
        paired_difference(ours, reference, "discrimination")
    # a mode the runs were not evaluated in: nothing to pair
    assert paired_difference(ours, reference, "harmless_rate", "harmless_guided") is None
    (reference / "helpful_nll.jsonl").unlink()  # a run from before the per-item file
    assert paired_difference(ours, reference, "helpful_nll") is None
    lines = (ours / "answers.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["id"] != "h3"]
    (ours / "answers.jsonl").write_text("\n".join(kept) + "\n")
    with pytest.raises(InputError, match="not the items") as err:
        paired_difference(ours, reference, "harmless_rate")
    assert str(ours) in str(err.value) and "harmless_rate" in str(err.value)


def test_compare_adds_a_paired_table_against_the_named_run(runs, tmp_path):
    from axolotl_mistake.evaluate.__main__ import main

    ours, reference = runs
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                str(reference),
                str(ours),
                "--output",
                str(out),
                "--paired-with",
                str(reference),
            ]
        )
        == 0
    )
    table = json.loads((out / "compare.json").read_text())
    assert table["paired_with"] == "sft"
    paired = table["paired"]["anchored"]
    assert paired["helpful_nll"]["value"] == pytest.approx(0.2)
    assert paired["harmless_rate"]["value"] == pytest.approx(0.0)
    assert "sft" not in table["paired"]
    md = (out / "compare.md").read_text()
    assert "Paired differences from sft" in md and "0.200 [" in md
    # a reference that is not among the runs is a usage error naming the flag
    assert (
        main(
            [
                "compare",
                str(ours),
                "--output",
                str(tmp_path / "c2"),
                "--paired-with",
                str(reference),
            ]
        )
        == 2
    )


def test_pairs_are_matched_by_key_whatever_their_order(runs):
    from axolotl_mistake.evaluate.paired import pair_margins, paired_auc_gain

    ours, reference = runs
    lines = (reference / "discrimination_pairs.jsonl").read_text().splitlines()
    (reference / "discrimination_pairs.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    auc = paired_difference(ours, reference, "discrimination_auc")
    assert auc.value == pytest.approx(1 / 6)
    other = dict(pair_margins(reference))
    other["k9"] = other.pop("k0")  # one pair that the other run did not score
    with pytest.raises(ValueError, match="different labelled pairs"):
        paired_auc_gain(pair_margins(ours), other)
    (reference / "discrimination_pairs.jsonl").write_text("\n".join([*lines, lines[0]]) + "\n")
    with pytest.raises(InputError, match="appears twice"):
        paired_difference(ours, reference, "discrimination_auc")
