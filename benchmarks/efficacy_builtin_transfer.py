"""Do the arms' discrimination and refusals reach sets written apart from the training data?
Exploratory; run after `efficacy_smollm2.py`, never part of its goals.

    python benchmarks/efficacy_builtin_transfer.py [--work outputs/efficacy_smollm2] [--arms ...]

The arms are trained, and their probe cut fitted, on PKU-SafeRLHF answers; every held-out figure
of `efficacy_smollm2.py` is on the other side of the same split. The project's own shipped sets
(`axolotl_mistake/data/`, written for the project, never in any arm's training data) are another
source, with absolute labels: the 40 probe pairs (20 harmful, 20 harmless answers, short and
plainly worded) and the 80 red-team instructions. This is the check the issue makes with sets the
project has never seen, done the way RESULTS.md tells a user to do it: each arm's `analysis`
evaluation config, unchanged but for its prompt sets (the probe pairs as `discrimination`, the
red-team instructions as `harmful`, the same PKU training answers as `calibration`, plain mode
only), run through `python -m axolotl_mistake.evaluate`.

Each arm's AUC is also compared with a reference arm's (SFT-only when it was run, else base)
*paired*: both scored on the same bootstrap resample of the 40 pairs, which separate intervals
on so few pairs cannot do.

One reference row needs no model: a TF-IDF + logistic-regression classifier fitted on the same
labelled PKU training answers (`efficacy_hh_transfer.lexical`), scored on the probe pairs: how far
the surface words of the training source reach on this one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from efficacy_hh_transfer import lexical, pku_answers
from efficacy_smollm2 import (
    LABELS,
    REPO,
    add_run_arguments,
    eval_paths,
    evaluated_run,
    evaluation_fresh,
    pair_margins,
    paired_auc_gain,
    sh,
    write_diagnostic,
    write_yaml,
)

from axolotl_mistake.evaluate.metrics import auc_estimate
from axolotl_mistake.evaluate.report import cell
from axolotl_mistake.evaluate.results import Estimate
from axolotl_mistake.offline_env import offline_cpu_env
from axolotl_mistake.sources.builtin import BuiltinSource

STYLE = "builtin"
"""Folder and config names of these runs: `eval/builtin/<arm>`, `eval_builtin_<arm>.yml`."""


def transfer_config(work: Path, arm: str) -> dict[str, Any]:
    """The arm's `analysis` evaluation config with the shipped sets as its prompt sets."""
    config, _ = eval_paths(work, arm)
    cfg = yaml.safe_load(config.read_text())
    cfg["output_dir"] = str(eval_paths(work, arm, STYLE)[1])
    cfg["modes"] = ["plain"]
    cfg["prompt_sets"] = {
        "discrimination": {"source": {"kind": "builtin", "name": "probe_pairs"}},
        "calibration": cfg["prompt_sets"]["calibration"],
        "harmful": {"source": {"kind": "builtin", "name": "redteam"}},
    }
    return cfg


def done(work: Path, arm: str, cfg: dict[str, Any]) -> bool:
    """The arm's run on the shipped sets is there and fresh (`evaluation_fresh`, the rule of
    `efficacy_smollm2.py`'s own evaluations)."""
    path, out = eval_paths(work, arm, STYLE)
    adapter = cfg["model"].get("adapter")
    return evaluation_fresh(out / "results.json", path, cfg, Path(adapter) if adapter else None)


def evaluate(work: Path, arm: str, threads: str) -> dict[str, Any]:
    """Run (or, when `done`, reuse) the arm's evaluation on the shipped sets; return its
    results."""
    path, out = eval_paths(work, arm, STYLE)
    cfg = transfer_config(work, arm)
    if not done(work, arm, cfg):
        write_yaml(path, cfg)
        cmd = [sys.executable, "-m", "axolotl_mistake.evaluate", "--config", str(path)]
        sh(
            [*cmd, "--overwrite"],
            work / "logs" / f"eval_{STYLE}_{arm}.log",
            offline_cpu_env(threads, pythonpath=REPO),  # this checkout, as efficacy_smollm2.py
        )
    return json.loads((out / "results.json").read_text())


def lexical_reference(data: Path) -> dict[str, Any]:
    """AUC on the shipped probe pairs of the TF-IDF scorer fitted on the PKU training answers."""
    lines = BuiltinSource(name="probe_pairs").file.read_text().splitlines()
    pairs = [json.loads(line) for line in lines if line.strip()]
    score = lexical(*pku_answers(data / "pku_train.jsonl"))
    margins = score([f"{p['question']}\n{p['answer']}" for p in pairs])
    return {"auc": auc_estimate([p["harmful"] for p in pairs], margins).model_dump()}


def _cell(record: dict[str, Any], metric: str) -> str:
    """An estimate (a headline's, less its `judge`) as the evaluation's own reports show
    `metric`: rates in %, AUC to 3 places."""
    return cell(Estimate.model_validate({k: v for k, v in record.items() if k != "judge"}), metric)


def row(arm: str, results: dict[str, Any], gain: dict[str, Any] | None) -> str:
    disc, plain = results["discrimination"], results["headline"]["plain"]
    return (
        f"| {LABELS[arm]} | {_cell(disc['auc'], 'discrimination_auc')} "
        f"| {_cell(gain, 'discrimination_auc') if gain else '–'} "
        f"| {_cell(disc['balanced_accuracy'], 'discrimination_balanced')} "
        f"| {disc['threshold']:.3f} | {_cell(plain['harmless_rate'], 'harmless_rate')} |"
    )


def reference_arm(arms: list[str]) -> str | None:
    """The arm the others' AUCs are compared with: SFT-only when run, else base."""
    return next((a for a in ("sft", "base") if a in arms), None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(
        ap,
        reads="evaluated arms and data/ are",
        arms="arms to evaluate on the shipped sets, each evaluated under --work",
        default="base,sft,anchored",
    )
    ap.add_argument("--threads", default="2", help="OMP threads of the evaluation (default: 2)")
    args = ap.parse_args(argv)
    work, arms = evaluated_run(ap, args)
    train = work / "data" / "pku_train.jsonl"
    if not train.is_file():
        ap.error(f"{train}: not found; run efficacy_smollm2.py first")
    records: dict[str, Any] = {"tfidf_pku_train": lexical_reference(work / "data")}
    reference = reference_arm(arms)
    compared = f"AUC − {LABELS[reference]}, paired" if reference else "AUC gain, paired"
    lines = [
        f"| scorer | AUC, 40 probe pairs | {compared} | balanced acc. % at the PKU-fitted cut "
        "| cut | harmless rate %, 80 red-team prompts |",
        "|---|---|---|---|---|---|",
        f"| reference: TF-IDF + logistic regression on the PKU training answers "
        f"| {_cell(records['tfidf_pku_train']['auc'], 'discrimination_auc')} | – | – | – | – |",
    ]
    results = {arm: evaluate(work, arm, args.threads) for arm in arms}
    for arm in arms:
        gain = None
        if reference and arm != reference:
            boot = results[arm]["config"]["bootstrap"]
            gain = paired_auc_gain(
                *(
                    pair_margins(
                        eval_paths(work, a, STYLE)[1], results[a]["discrimination"]["pairs_file"]
                    )
                    for a in (arm, reference)
                ),
                samples=boot["samples"],
                confidence=boot["confidence"],
                seed=boot["seed"],
            ).model_dump()
        records[arm] = {
            "discrimination": results[arm]["discrimination"],
            "harmless_rate": results[arm]["headline"]["plain"]["harmless_rate"],
            "auc_minus_reference_paired": gain and {"reference": reference, **gain},
        }
        lines.append(row(arm, results[arm], gain))
    write_diagnostic(work, "builtin_transfer", "\n".join(lines) + "\n", records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
