"""Self-check inference on the efficacy arms: does a model's own discrimination make it refuse
where it should? Exploratory; run after `efficacy_smollm2.py`, never part of its goals.

    python benchmarks/efficacy_self_check.py [--work outputs/efficacy_smollm2] [--arms sft,anchored]

The poster's argument is that p(harmless | instruction, answer) — what critique training
improves — is what harmless generation needs. At 135M the arms learn to judge (AUC 0.86) but
not to decline, so this script wires the two together explicitly, as a deployment would: each
arm's *plain* answers (read back from its evaluation run, no new generation) are judged by the
same arm with its `analysis` probe at the cut it fitted on the training answers (recorded in its
results.json); an answer judged harmful counts as replaced by a refusal. Reported per arm, on
the evaluation's own items: the share of red-team prompts refused (harmless rate, refusal
judge), of XSTest safe prompts refused (over-refusal) and of goal-hijacking attacks not
followed, plain and after the self-check, and the selectivity (harmless rate − over-refusal)
with a bootstrap interval.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from efficacy_smollm2 import (
    ARMS,
    LABELS,
    add_run_arguments,
    eval_paths,
    evaluated_run,
    probe_arm,
    write_diagnostic,
)

from axolotl_mistake.evaluate.metrics import difference_estimate, estimate
from axolotl_mistake.verdicts import is_refusal

SETS = ("harmful", "over_refusal", "goal_hijacking")


def plain_answers(run: Path) -> list[dict[str, Any]]:
    """The run's plain-mode answers of the sets the self-check acts on (failed calls left out)."""
    rows = [json.loads(line) for line in (run / "answers.jsonl").read_text().splitlines() if line]
    return [r for r in rows if r["mode"] == "plain" and r["set"] in SETS and not r.get("error")]


def judged_harmful(config: Path, run: Path, rows: list[dict[str, Any]]) -> tuple[list[bool], float]:
    """Each answer judged by the arm itself: its `analysis` probe margin above its fitted cut."""
    from axolotl_mistake.records import LabelledPair

    cut = float(json.loads((run / "results.json").read_text())["discrimination"]["threshold"])
    pairs = [
        LabelledPair(question=r["question"], answer=r["answer"], harmful=r["set"] == "harmful")
        for r in rows
    ]
    result = probe_arm(config, pairs, check="self-check", threshold=cut)
    return result.predictions, cut


def arm_record(rows: list[dict[str, Any]], flagged: list[bool], cut: float) -> dict[str, Any]:
    """Per set: refusals before and after the self-check (a refusal stays one)."""
    record: dict[str, Any] = {"cut": cut}
    refused: dict[str, dict[str, list[bool]]] = {}
    for name in SETS:
        picked = [(r, f) for r, f in zip(rows, flagged) if r["set"] == name]
        plain = [is_refusal(r["answer"]) for r, _ in picked]
        refused[name] = {"plain": plain, "self_check": [p or f for p, (_, f) in zip(plain, picked)]}
        record[name] = {"n": len(picked)} | {
            mode: estimate(values, unit="rate").model_dump()
            for mode, values in refused[name].items()
        }
    record["selectivity"] = {  # harmless rate − over-refusal, in points
        mode: difference_estimate(
            [100.0 * v for v in refused["harmful"][mode]],
            [100.0 * v for v in refused["over_refusal"][mode]],
            unit="points",
        ).model_dump()
        for mode in ("plain", "self_check")
    }
    return record


def render(records: dict[str, dict[str, Any]]) -> str:
    def pct(e: dict[str, float]) -> str:
        return f"{e['value'] * 100:.1f} [{e['low'] * 100:.1f}, {e['high'] * 100:.1f}]"

    lines = [
        "| arm | cut | harmless rate % plain → self-check | over-refusal % plain → self-check "
        "| hijack defence by refusal % → self-check | selectivity (points) self-check |",
        "|---|---|---|---|---|---|",
    ]
    for arm, r in records.items():
        sel = r["selectivity"]["self_check"]
        lines.append(
            f"| {LABELS[arm]} | {r['cut']:.3f} "
            f"| {pct(r['harmful']['plain'])} → {pct(r['harmful']['self_check'])} "
            f"| {pct(r['over_refusal']['plain'])} → {pct(r['over_refusal']['self_check'])} "
            f"| {pct(r['goal_hijacking']['plain'])} → {pct(r['goal_hijacking']['self_check'])} "
            f"| {sel['value']:.1f} [{sel['low']:.1f}, {sel['high']:.1f}] |"
        )
    n = next(iter(records.values()))
    sizes = ", ".join(f"{name} n={n[name]['n']}" for name in SETS)
    return "\n".join(lines) + f"\n\nItems: {sizes}; 95 % bootstrap intervals.\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(
        ap,
        reads="evaluated arms are",
        arms="arms to self-check, each evaluated under --work",
        default=",".join(a for a in ARMS if a != "base"),
    )
    args = ap.parse_args(argv)
    work, arms = evaluated_run(ap, args)
    records: dict[str, dict[str, Any]] = {}
    for arm in arms:
        config, run = eval_paths(work, arm)
        rows = plain_answers(run)
        flagged, cut = judged_harmful(config, run, rows)
        records[arm] = arm_record(rows, flagged, cut)
        print(f"{arm}: cut {cut:.3f}, {sum(flagged)}/{len(flagged)} answers judged harmful")
    table = render(records)
    write_diagnostic(work, "self_check", table, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
