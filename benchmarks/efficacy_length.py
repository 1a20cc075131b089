"""Is an arm's discrimination an answer-length detector? Exploratory; run after
`efficacy_smollm2.py` (or `efficacy_transfer.py`), never part of its goals; no model runs.

    python benchmarks/efficacy_length.py [--work outputs/efficacy_smollm2] [--arms sft,anchored]
    python benchmarks/efficacy_length.py --set builtin      # the shipped probe pairs' runs

Labelled answers differ in length by label (on the PKU held-out pairs the harmful answers are
longer: length alone ranks them with AUC above 0.5; on the shipped probe pairs the other way
round), so a probe that learned "long, detailed answer = harmful" would score well on one set
and badly on the other without telling harm apart. For each arm this reads the evaluation run's
per-pair margins and the answers it scored, and reports: the AUC of the margins, the AUC of the
answer's length alone, their Spearman correlation, and the AUC within each third of the pairs
by answer length (thirds of all the set's answers, so every arm is cut the same way), pooled as
the within-thirds AUC: the share of (harmful, harmless) comparisons of answers in the same third
that the margins order right (ties count half). A margin that ranks as well within thirds as
overall is not leaning on length.

Refusals are the other trait checked (`refusal_record`): the PKU training answers the arms'
analyses come from hold one refusal in 196, labelled unsafe, so how an arm scores a refusal is
not something it was taught. For each arm: how many scored answers refuse
(`verdicts.is_refusal`) and how many of those are harmful, the mean margin of the refusals and
of the other answers, and the AUC without the refusals.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from axolotl_mistake.evaluate.paired import PairMargins, pair_margins
from axolotl_mistake.evaluate.results import bootstrap_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from efficacy_smollm2 import LABELS, add_run_arguments, eval_paths, evaluated_run, write_diagnostic

THIRDS = 3


def scored_answers(run: Path) -> dict[str, str]:
    """{pair key: the answer} of the pairs the run's discrimination set yields, read as the
    evaluation read them (its config's source, keyed as its pairs file is)."""
    from axolotl_mistake.evaluate.local import pair_key
    from axolotl_mistake.sources import iter_labelled_pairs, parse_source_config

    source = json.loads((run / "results.json").read_text())["config"]["prompt_sets"]
    pairs = iter_labelled_pairs(parse_source_config(source["discrimination"]["source"]))
    return {pair_key(p): p.answer for p in pairs}


def refusal_record(
    margins: PairMargins, refusing: dict[str, bool], **bootstrap: Any
) -> dict[str, Any]:
    """One arm's refusal figures (the module docstring); `refusing`: {pair key: refuses}."""
    from axolotl_mistake.evaluate.metrics import auc_estimate

    keys = sorted(margins)
    refusals = [k for k in keys if refusing[k]]
    others = [k for k in keys if not refusing[k]]

    def mean(part: list[str]) -> float | None:
        return float(np.mean([margins[k][1] for k in part])) if part else None

    return {
        "refusals": len(refusals),
        "harmful_refusals": sum(margins[k][0] for k in refusals),
        "mean_margin_refusals": mean(refusals),
        "mean_margin_others": mean(others),
        "auc_without_refusals": auc_estimate(
            [margins[k][0] for k in others], [margins[k][1] for k in others], **bootstrap
        ).model_dump(),
    }


def length_record(
    margins: PairMargins,
    lengths: dict[str, int],
    cuts: list[float],
    reference: PairMargins | None = None,
    **bootstrap: Any,
) -> dict[str, Any]:
    """One arm's figures (the module docstring); `cuts` split the lengths into thirds. With a
    `reference` arm's margins on the same pairs, also the within-thirds AUC minus the
    reference's, paired."""
    from scipy.stats import spearmanr

    from axolotl_mistake.evaluate.metrics import auc_estimate, stratified_auc_estimate

    missing = sorted(set(margins) - set(lengths))
    if missing:
        raise ValueError(
            f"{len(missing)} scored pairs are not in the run's set (e.g. {missing[0]})"
        )
    keys = sorted(margins)
    harmful = [margins[k][0] for k in keys]
    margin = [margins[k][1] for k in keys]
    length = [lengths[k] for k in keys]
    third = [int(t) for t in np.digitize(length, cuts)]
    thirds = []
    for t in range(THIRDS):
        inside = [i for i, x in enumerate(third) if x == t]
        auc = auc_estimate([harmful[i] for i in inside], [margin[i] for i in inside], **bootstrap)
        thirds.append(
            {"auc": auc.value, "n": len(inside), "harmful": sum(harmful[i] for i in inside)}
        )
    record = {
        "n": len(keys),
        "auc": auc_estimate(harmful, margin, **bootstrap).model_dump(),
        "auc_of_length": auc_estimate(harmful, length, **bootstrap).model_dump(),
        "spearman_margin_length": float(spearmanr(margin, length)[0]),
        "thirds": thirds,
        "auc_within_thirds": stratified_auc_estimate(
            harmful, margin, third, **bootstrap
        ).model_dump(),
    }
    if reference is not None:
        if reference.keys() != margins.keys():
            raise ValueError("the reference arm scored different pairs: rerun it")
        theirs = [reference[k][1] for k in keys]
        gain = stratified_auc_estimate(harmful, margin, third, theirs, **bootstrap)
        record["auc_within_thirds_minus_reference_paired"] = gain.model_dump()
    return record


def _fmt(x: dict[str, Any] | float | None, interval: bool = False) -> str:
    """An estimate record or a bare value to 3 places ('–' for none)."""
    if isinstance(x, dict):
        band = (
            f" [{x['low']:.3f}, {x['high']:.3f}]" if interval and x.get("low") is not None else ""
        )
        x = x.get("value")
        return "–" if x is None else f"{x:.3f}{band}"
    return "–" if x is None else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(
        ap, reads="evaluated arms are", arms="arms to check", default="base,sft,anchored"
    )
    ap.add_argument(
        "--set",
        default="analysis",
        help="the evaluation runs to read, eval/<set>/<arm>: analysis (the held-out PKU pairs; "
        "default), builtin or transfer_<name> (efficacy_transfer.py's runs)",
    )
    args = ap.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_-]+", args.set):  # it names the output folder too
        ap.error("argument --set: letters, digits, '_' and '-' only (a folder under eval/)")
    work, arms = evaluated_run(ap, args)
    runs = {arm: eval_paths(work, arm, args.set)[1] for arm in arms}
    results: dict[str, dict[str, Any]] = {}
    for arm, run in runs.items():
        if not (run / "results.json").is_file():
            ap.error(f"argument --set: {arm}: no evaluation run under {run}")
        results[arm] = json.loads((run / "results.json").read_text())
        if not results[arm].get("discrimination"):
            ap.error(f"argument --set: {arm}: {run} probed no labelled pairs")
    from axolotl_mistake.verdicts import is_refusal

    answers = {arm: scored_answers(run) for arm, run in runs.items()}
    lengths = {arm: {k: len(a) for k, a in found.items()} for arm, found in answers.items()}
    cuts = [float(c) for c in np.quantile(list(lengths[arms[0]].values()), [1 / 3, 2 / 3])]
    records: dict[str, Any] = {"set": args.set, "length_cuts_chars": cuts}
    reference = next((a for a in ("sft", "base") if a in arms), None)
    margins = {
        arm: pair_margins(run, results[arm]["discrimination"]["pairs_file"])
        for arm, run in runs.items()
    }
    boot = bootstrap_settings(results[arms[0]]["config"])
    versus = f"minus {reference}'s, paired" if reference else "paired"
    lines = [
        "| arm | AUC | AUC of length alone | Spearman (margin, length) | AUC by third of length "
        f"(short / middle / long; n, harmful) | within-thirds AUC | within-thirds AUC {versus} "
        "| refusals (harmful) | mean margin: refusals / others | AUC without refusals |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in runs:
        other = margins[reference] if reference and arm != reference else None
        rec = length_record(margins[arm], lengths[arm], cuts, other, **boot)
        refusing = {k: is_refusal(a) for k, a in answers[arm].items()}
        rec["refusal"] = refusal = refusal_record(margins[arm], refusing, **boot)
        records[arm] = rec
        thirds = " / ".join(f"{_fmt(t['auc'])} ({t['n']}, {t['harmful']})" for t in rec["thirds"])
        gain = rec.get("auc_within_thirds_minus_reference_paired")
        lines.append(
            f"| {LABELS[arm]} | {_fmt(rec['auc'])} | {_fmt(rec['auc_of_length'])} "
            f"| {rec['spearman_margin_length']:+.3f} | {thirds} "
            f"| {_fmt(rec['auc_within_thirds'], True)} | {_fmt(gain, True)} "
            f"| {refusal['refusals']} ({refusal['harmful_refusals']}) "
            f"| {_fmt(refusal['mean_margin_refusals'])} / {_fmt(refusal['mean_margin_others'])} "
            f"| {_fmt(refusal['auc_without_refusals'], True)} |"
        )
    write_diagnostic(work, f"length_{args.set}", "\n".join(lines) + "\n", records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
