"""Can the model learn to tell a labelled set's answers apart at all, and carry it to questions
it was not trained on? The positive control for a transfer set; exploratory, never part of the
efficacy goals; trains the embedded model twice (about 4 minutes each on 2 CPU cores).

    python benchmarks/efficacy_learnability.py [--pairs benchmarks/data/transfer_pairs.jsonl] \
        [--work outputs/learnability]

When every arm is at chance on a set (RESULTS.md, "A second transfer set"), either the arms did
not learn what the set asks, or the model cannot learn it from anything. This splits the set's
distinct questions into two halves in file order (every answer to a question stays on its side),
trains the positive control of `tests/test_positive_control.py` (its settings and its critique
rows: each answer's label verdict sentence and one fixed reason, loss on the critique only) on
one half's answers, and reads the live probe's AUC (`analysis` style) on the other half's, before
the first step and after the last; then the other way round. The starting AUC is the base model's
on that half. A rise says the stance can be learnt from answers of the set's own kind at this
size and dose, and how far; it is not a figure of any arm.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the positive control's settings live with its test
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_types import claim_work_folder_or_exit

from axolotl_mistake.errors import InputError
from axolotl_mistake.fileio import write_atomic, write_json_atomic
from axolotl_mistake.records import LabelledPair
from axolotl_mistake.sources import iter_labelled_pairs, parse_source_config

DEFAULT_PAIRS = REPO / "benchmarks" / "data" / "transfer_pairs.jsonl"
WORK_MARKER = ".axolotl-mistake-learnability"
DIRECTIONS = (("first", "second"), ("second", "first"))


def halves(pairs: list[LabelledPair]) -> dict[str, list[LabelledPair]]:
    """The pairs of the first and the second half of the distinct questions, in file order
    (an odd count puts the extra question in the first half); each half must hold both labels."""
    order = list(dict.fromkeys(p.question for p in pairs))
    first = set(order[: (len(order) + 1) // 2])
    split = {
        "first": [p for p in pairs if p.question in first],
        "second": [p for p in pairs if p.question not in first],
    }
    for name, part in split.items():
        if len({p.harmful for p in part}) < 2:
            raise ValueError(
                f"the {name} half of the questions holds only "
                f"{'harmful' if part and part[0].harmful else 'harmless'} answers; the probe "
                "needs both labels on each side (order the file so that each half has both)"
            )
    return split


def write_pairs(path: Path, pairs: list[LabelledPair]) -> None:
    """`pairs` as a `{question, answer, harmful}` file, the probe's and the control's input."""
    rows = (p.model_dump(include={"question", "answer", "harmful"}) for p in pairs)
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


def write_halves(split: dict[str, list[LabelledPair]], folder: Path) -> None:
    """Each half as probe pairs (`<half>_pairs.jsonl`) and as the positive control's training
    rows made from them (`<half>_rows.jsonl`, `tests.test_positive_control.write_rows`)."""
    from tests.test_positive_control import write_rows

    for name, part in split.items():
        write_pairs(folder / f"{name}_pairs.jsonl", part)
        write_rows(folder / f"{name}_pairs.jsonl", folder / f"{name}_rows.jsonl")


def control_config(folder: Path, train: str, probe: str, n_probe: int) -> dict[str, Any]:
    """The positive control's training config (`tests/test_positive_control.control_config`),
    trained on `train`'s rows with the live probe on `probe`'s pairs."""
    from axolotl_mistake.models import ensure_embedded_model
    from tests.test_positive_control import control_config as positive_control

    return positive_control(
        ensure_embedded_model(),
        folder / f"{train}_rows.jsonl",
        folder / f"{train}_to_{probe}",
        folder / f"{probe}_pairs.jsonl",
        n_probe,
    )


def logged_aucs(log: str) -> list[float]:
    """The live probe's AUCs in a training log, in order."""
    return [float(v) for v in re.findall(r"'discrimination_auc': '?([0-9.]+)", log)]


def train(folder: Path, config: dict[str, Any], name: str) -> list[float]:
    """Run `axolotl train` on `config` (log in `<name>.log`); its logged AUCs, or an error."""
    from tests.axolotl_runner import run_axolotl, write_config

    path = write_config(config, folder / f"{name}.yml")
    run = run_axolotl(["train", str(path), "--launcher", "python"], cwd=folder, timeout=None)
    log = run.stdout + run.stderr
    write_atomic(folder / f"{name}.log", log)
    aucs = logged_aucs(log)
    if run.returncode != 0 or len(aucs) != 2:
        raise RuntimeError(
            f"axolotl train {path} exited {run.returncode} with {len(aucs)} probe runs logged "
            f"(want 2); see {folder / f'{name}.log'}"
        )
    return aucs


def table(records: dict[str, Any]) -> str:
    lines = [
        "| trained on | probed on (unseen questions) | answers trained | pairs probed "
        "| AUC before (base model) | AUC after | rise |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records["directions"]:
        lines.append(
            f"| {r['train']} half | {r['probe']} half | {r['train_rows']} | {r['probe_pairs']} "
            f"| {r['auc_before']:.3f} | {r['auc_after']:.3f} | {r['auc_after'] - r['auc_before']:+.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--pairs",
        type=Path,
        default=DEFAULT_PAIRS,
        help="{question, answer, harmful} JSONL (default: benchmarks/data/transfer_pairs.jsonl)",
    )
    ap.add_argument(
        "--work",
        type=Path,
        default=REPO / "outputs" / "learnability",
        help="folder for the rows, configs, logs, adapters and learnability.{md,json} "
        "(default: outputs/learnability in the repository)",
    )
    args = ap.parse_args(argv)
    if not args.pairs.is_file():
        ap.error(f"argument --pairs: {args.pairs}: not a file")
    try:
        pairs = list(
            iter_labelled_pairs(parse_source_config({"kind": "pairs", "path": str(args.pairs)}))
        )
        split = halves(pairs)
    except (InputError, ValueError) as err:
        ap.error(f"argument --pairs: {err}")
    work = args.work.resolve()
    claim_work_folder_or_exit(ap, work, WORK_MARKER, who="efficacy_learnability.py", field="--work")
    write_halves(split, work)
    records: dict[str, Any] = {"pairs": str(args.pairs), "directions": []}
    for first, second in DIRECTIONS:
        name = f"{first}_to_{second}"
        print(f"training on the {first} half, probing the {second} half ...", flush=True)
        before, after = train(work, control_config(work, first, second, len(split[second])), name)
        records["directions"].append(
            {
                "train": first,
                "probe": second,
                "train_rows": len(split[first]),
                "probe_pairs": len(split[second]),
                "auc_before": before,
                "auc_after": after,
            }
        )
    text = table(records)
    write_atomic(work / "learnability.md", text)
    write_json_atomic(work / "learnability.json", records)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
