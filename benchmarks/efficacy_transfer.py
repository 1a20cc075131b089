"""Do the arms' discrimination and refusals reach sets written apart from the training data?
Exploratory; run after `efficacy_smollm2.py`, never part of its goals.

    python benchmarks/efficacy_transfer.py [--work outputs/efficacy_smollm2] [--arms ...]
    python benchmarks/efficacy_transfer.py --pairs mine.jsonl [--redteam prompts.jsonl] [--name mine]

The arms are trained, and their probe cut fitted, on PKU-SafeRLHF answers; every held-out figure
of `efficacy_smollm2.py` is on the other side of the same split. This runs each arm's `analysis`
evaluation config unchanged but for its prompt sets (labelled pairs as `discrimination`,
red-team instructions as `harmful`, the same PKU training answers as `calibration`; plain
inference, or `--modes plain,harmless_guided` for both of the paper's modes) through
`python -m axolotl_mistake.evaluate`: the check RESULTS.md tells a user to make with sets of
their own, for every arm at once. By default the sets are the project's own
(`axolotl_mistake/data/`, written for the project, never in any arm's training data): the 40
probe pairs (20 harmful, 20 harmless answers, short and plainly worded) and the 80 red-team
instructions. `--pairs` and `--redteam` name other files; a set not named is left out when the
other one is named.

Each arm's AUC and harmless rate are also compared with a reference arm's (SFT-only when it was
run, else base) *paired*: both scored on the same bootstrap resample of the pairs or prompts,
which separate intervals on few items cannot do. Where a question comes with both a harmful and
a harmless answer, `twins` says how often the harmful one gets the higher margin: the answer
judged with its question held fixed (benchmarks/data/transfer_pairs.jsonl has 40 such questions,
the shipped probe pairs 8). `--reference ARM` compares with another arm instead. With `--groups`,
pairs whose `source` reads `<group>/...` (transfer_pairs.jsonl's: `declines/...` for the questions
whose harmless answer declines, `helps/...` for those whose harmless answer simply helps) get the
same figures per group as well: where an effect sits, read from one command.

One reference row needs no model: a TF-IDF + logistic-regression classifier fitted on the same
labelled PKU training answers (`efficacy_hh_transfer.lexical`), scored on the pairs: how far
the surface words of the training source reach on this one.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from efficacy_hh_transfer import lexical, pku_answers
from efficacy_smollm2 import (
    LABELS,
    REPO,
    add_malloc_argument,
    add_run_arguments,
    eval_paths,
    evaluated_run,
    evaluation_fresh,
    sh,
    write_diagnostic,
    write_yaml,
)

from axolotl_mistake.errors import InputError
from axolotl_mistake.evaluate.metrics import (
    auc_estimate,
    estimate,
    paired_auc_difference_estimate,
)
from axolotl_mistake.evaluate.paired import paired_difference
from axolotl_mistake.evaluate.report import cell
from axolotl_mistake.evaluate.results import Estimate, bootstrap_settings
from axolotl_mistake.offline_env import offline_cpu_env
from axolotl_mistake.records import LabelledPair
from axolotl_mistake.sources import iter_labelled_pairs, iter_rows, parse_source_config

BUILTIN = "builtin"
"""The name of the runs on the shipped sets: `eval/builtin/<arm>`, `eval_builtin_<arm>.yml`."""

BUILTIN_SETS = {
    "discrimination": {"source": {"kind": "builtin", "name": "probe_pairs"}},
    "harmful": {"source": {"kind": "builtin", "name": "redteam"}},
}


def prompt_sets(
    pairs: Path | None, pairs_kind: str, redteam: Path | None, field: str
) -> dict[str, Any]:
    """The sets to evaluate on: the named files (absolute paths, so a run folder's config
    stands on its own), or the shipped sets when none is named."""
    if pairs is None and redteam is None:
        return copy.deepcopy(BUILTIN_SETS)
    sets: dict[str, Any] = {}
    if pairs is not None:
        sets["discrimination"] = {"source": {"kind": pairs_kind, "path": str(pairs.resolve())}}
    if redteam is not None:
        kind = "csv" if redteam.suffix.lower() in (".csv", ".tsv") else "jsonl"
        source = {"kind": kind, "path": str(redteam.resolve()), "fields": {"instruction": field}}
        sets["harmful"] = {"source": {**source, "prompt_kind": "harmful"}}
    return sets


MODES = ("plain", "harmless_guided")
"""The evaluation's inference modes, in the order its tables list them."""


def transfer_config(
    work: Path, arm: str, name: str, sets: dict[str, Any], modes: tuple[str, ...] = ("plain",)
) -> dict[str, Any]:
    """The arm's `analysis` evaluation config with `sets` as its prompt sets and `modes` as its
    inference modes (the cut still fitted on its PKU training answers when pairs are scored)."""
    config, _ = eval_paths(work, arm)
    cfg = yaml.safe_load(config.read_text())
    cfg["output_dir"] = str(eval_paths(work, arm, name)[1])
    cfg["modes"] = list(modes)
    calibration = cfg["prompt_sets"]["calibration"]
    cfg["prompt_sets"] = dict(sets)
    if "discrimination" in sets:
        cfg["prompt_sets"]["calibration"] = calibration
    else:  # nothing to probe: no cut to fit
        cfg.pop("probe_threshold", None)
    return cfg


def set_files(cfg: dict[str, Any]) -> list[Path]:
    """The local files the config's prompt sets read."""
    found = (s.get("source", {}).get("path") for s in cfg.get("prompt_sets", {}).values())
    return [Path(p) for p in found if p]


def done(work: Path, arm: str, name: str, cfg: dict[str, Any]) -> bool:
    """The arm's run on these sets is there and fresh (`evaluation_fresh`, the rule of
    `efficacy_smollm2.py`'s own evaluations), and newer than the files it read: a set edited
    in place keeps its path, so the config alone would not tell."""
    path, out = eval_paths(work, arm, name)
    adapter = cfg["model"].get("adapter")
    results = out / "results.json"
    if not evaluation_fresh(results, path, cfg, Path(adapter) if adapter else None):
        return False
    made = results.stat().st_mtime_ns
    return all(f.is_file() and f.stat().st_mtime_ns < made for f in set_files(cfg))


def evaluate(
    work: Path,
    arm: str,
    name: str,
    sets: dict[str, Any],
    threads: str,
    modes: tuple[str, ...],
    keep_freed_memory: bool = True,
) -> dict:
    """Run (or, when `done`, reuse) the arm's evaluation on the sets; return its results."""
    path, _ = eval_paths(work, arm, name)
    cfg = transfer_config(work, arm, name, sets, modes)
    if not done(work, arm, name, cfg):
        write_yaml(path, cfg)
        cmd = [sys.executable, "-m", "axolotl_mistake.evaluate", "--config", str(path)]
        sh(
            [*cmd, "--overwrite"],
            work / "logs" / f"eval_{name}_{arm}.log",
            # this checkout and glibc's keep-freed-memory settings, as efficacy_smollm2.py
            offline_cpu_env(threads, pythonpath=REPO, keep_freed_memory=keep_freed_memory),
        )
    return json.loads((eval_paths(work, arm, name)[1] / "results.json").read_text())


def labelled_pairs(discrimination: dict[str, Any]) -> list[LabelledPair]:
    """The pairs a discrimination set yields, read as the evaluation reads them (an InputError
    names file, line and field of a bad row)."""
    return list(iter_labelled_pairs(parse_source_config(discrimination["source"])))


def twins(pairs: list[LabelledPair], margins: list[float | None]) -> dict[str, Any] | None:
    """The answer judged with its question held fixed: of every (harmful, harmless) couple of
    answers to the same question, the share whose harmful answer gets the higher harmful
    margin (ties half), with a 95 % bootstrap interval over couples, and the number of such
    questions; None when no question is asked with both kinds. `margins` follows `pairs`
    (None: not scored). A scorer that reads only the question gets 0.5 here whatever its AUC."""
    answers: dict[str, tuple[list[float], list[float]]] = {}
    for pair, margin in zip(pairs, margins, strict=True):
        if margin is not None:
            answers.setdefault(pair.question, ([], []))[0 if pair.harmful else 1].append(margin)
    both = [sides for sides in answers.values() if all(sides)]
    wins = [float(h > s) + 0.5 * (h == s) for hs, ss in both for h in hs for s in ss]
    if not wins:
        return None
    return estimate(wins, unit="rate").model_dump() | {"questions": len(both)}


def run_margins(out: Path, pairs: list[LabelledPair]) -> list[float | None]:
    """The evaluation run's probe margin of each pair (its `discrimination_pairs.jsonl`, matched
    by the pair's source id), in the order of `pairs`."""
    with open(out / "discrimination_pairs.jsonl", encoding="utf-8") as fh:
        scored = {row["source"]: row["margin"] for row in map(json.loads, fh)}
    return [scored.get(pair.source) for pair in pairs]


def pair_group(pair: LabelledPair) -> str | None:
    """The group a pair's `source` names (`<group>/...`), or None when it names none."""
    group, slash, _ = pair.source.partition("/")
    return group if slash and group else None


def pair_groups(pairs: list[LabelledPair]) -> list[str]:
    """The groups of `pairs` in first-seen order; a ValueError names the first pair whose
    `source` names none (a pair left out of every group would silently leave the figures)."""
    groups: dict[str, None] = {}
    for n, pair in enumerate(pairs, 1):
        group = pair_group(pair)
        if group is None:
            raise ValueError(
                f"pair {n} ({pair.source or 'no source'}): its `source` names no group; "
                "--groups needs every pair's `source` as <group>/<id>"
            )
        groups.setdefault(group)
    return list(groups)


def group_figures(
    pairs: list[LabelledPair],
    margins: list[float | None],
    reference: list[float | None] | None = None,
    **bootstrap: Any,
) -> dict[str, dict[str, Any]]:
    """Per group of `pair_groups`: AUC and `twins` of the margins on the group's scored pairs,
    and, given the reference arm's margins on the same pairs, AUC minus the reference's paired
    (`paired_auc_difference_estimate`, as the evaluation pairs two runs' AUCs)."""
    out: dict[str, dict[str, Any]] = {}
    for group in pair_groups(pairs):
        mine = [
            i
            for i, p in enumerate(pairs)
            if pair_group(p) == group
            and margins[i] is not None
            and (reference is None or reference[i] is not None)
        ]
        labels = [pairs[i].harmful for i in mine]
        ours = [float(margins[i]) for i in mine]  # type: ignore[arg-type]
        figures: dict[str, Any] = {
            "auc": auc_estimate(labels, ours, **bootstrap).model_dump(),
            "twins": twins([pairs[i] for i in mine], ours),
        }
        if reference is not None:
            theirs = [float(reference[i]) for i in mine]  # type: ignore[arg-type]
            gain = paired_auc_difference_estimate(labels, ours, theirs, **bootstrap)
            figures["auc_minus_reference_paired"] = gain.model_dump()
        out[group] = figures
    return out


def lexical_reference(
    data: Path, pairs: list[LabelledPair], groups: bool = False
) -> dict[str, Any]:
    """AUC (and `twins`; with `groups`, both per group) on the scored pairs of the TF-IDF
    scorer fitted on the PKU training answers."""
    score = lexical(*pku_answers(data / "pku_train.jsonl"))
    margins = [float(m) for m in score([f"{p.question}\n{p.answer}" for p in pairs])]
    record = {
        "auc": auc_estimate([p.harmful for p in pairs], margins).model_dump(),
        "twins": twins(pairs, margins),
    }
    if groups:
        record["groups"] = group_figures(pairs, margins)
    return record


def record_cell(record: dict[str, Any] | None, metric: str, with_n: bool = True) -> str:
    """An estimate (a headline's, less its `judge`) as the evaluation's own reports show
    `metric`: rates in %, AUC to 3 places; '–' for none."""
    if not record:
        return "–"
    fields = Estimate.model_fields  # less the record's labels: `judge`, `reference`
    estimate = Estimate.model_validate({k: v for k, v in record.items() if k in fields})
    return cell(estimate, metric, with_n=with_n)


def row(arm: str, record: dict[str, Any], modes: tuple[str, ...]) -> str:
    """One arm's table row from its record: discrimination, then per mode the harmless rate
    and, beside it, its difference from the reference arm's, paired."""
    disc = record.get("discrimination") or {}
    gain = record.get("auc_minus_reference_paired")
    cut = f"{disc['threshold']:.3f}" if disc.get("threshold") is not None else "–"
    rates = "".join(
        f" | {record_cell(record['harmless_rate'].get(mode), 'harmless_rate')}"
        f" | {record_cell(record['harmless_rate_minus_reference_paired'].get(mode), 'harmless_rate')}"
        for mode in modes
    )
    return (
        f"| {LABELS[arm]} | {record_cell(disc.get('auc'), 'discrimination_auc')} "
        f"| {record_cell(gain, 'discrimination_auc')} "
        f"| {record_cell(disc.get('balanced_accuracy'), 'discrimination_balanced')} "
        f"| {cut} | {twins_cell(record.get('twins'))}{rates} |"
    )


def twins_cell(record: dict[str, Any] | None) -> str:
    """`twins` as a table cell: the share in %, its interval, the questions it rests on."""
    if not record:
        return "–"
    return f"{record_cell(record, 'discrimination', with_n=False)} ({record['questions']} q.)"


def reference_arm(arms: list[str], chosen: str | None = None) -> str | None:
    """The arm the others' AUCs are compared with: `chosen` (one of `arms`), else SFT-only when
    run, else base."""
    if chosen is not None:
        if chosen not in arms:
            raise ValueError(f"{chosen!r} is not one of --arms ({', '.join(arms)})")
        return chosen
    return next((a for a in ("sft", "base") if a in arms), None)


def group_lines(records: dict[str, Any], scorers: list[tuple[str, str]], versus: str) -> list[str]:
    """The per-group table: for each group, each scorer's AUC, its difference from the
    reference arm's paired, and `twins`; `scorers` are (record key, label)."""
    groups = next(iter(records[key]["groups"] for key, _ in scorers))
    lines = [
        "",
        f"| group | scorer | AUC | AUC − {versus} | harmful answer above its twin % |",
        "|---|---|---|---|---|",
    ]
    for group in groups:
        for key, label in scorers:
            figures = records[key]["groups"][group]
            lines.append(
                f"| {group} | {label} | {record_cell(figures['auc'], 'discrimination_auc')} "
                f"| {record_cell(figures.get('auc_minus_reference_paired'), 'discrimination_auc')} "
                f"| {twins_cell(figures['twins'])} |"
            )
    return lines


def run_name(args: argparse.Namespace) -> str:
    """`builtin` for the shipped sets, else `transfer_<--name>` (default: the named files'
    stems): the prefix keeps these runs apart from every folder `efficacy_smollm2.py` writes
    (`eval/analysis`, `eval/alpaca`, `compare/...`)."""
    files = [f for f in (args.pairs, args.redteam) if f is not None]
    if not files and not args.name:
        return BUILTIN
    name = args.name or "_".join(f.stem for f in files)
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", name)
    return name if name.startswith("transfer_") else f"transfer_{name}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(
        ap,
        reads="evaluated arms and data/ are",
        arms="arms to evaluate on the sets, each evaluated under --work",
        default="base,sft,anchored",
    )
    ap.add_argument(
        "--pairs",
        type=Path,
        help="labelled pairs to probe (default: the shipped 40 probe pairs): a file the "
        "`--pairs-kind` source reads, e.g. {question, answer, harmful} JSONL",
    )
    ap.add_argument(
        "--pairs-kind",
        default="pairs",
        help="source kind of --pairs (default: pairs; pku_saferlhf, beavertails, jsonl … too)",
    )
    ap.add_argument(
        "--redteam",
        type=Path,
        help="red-team instructions, JSONL or CSV (default: the shipped 80)",
    )
    ap.add_argument(
        "--redteam-field",
        default="instruction",
        help="the --redteam column holding the instruction (default: instruction)",
    )
    ap.add_argument(
        "--name",
        help="name of these runs: eval/transfer_<name>/<arm>, compare/transfer_<name>/ "
        "(default: the files' names; the shipped sets: eval/builtin/<arm>)",
    )
    ap.add_argument(
        "--modes",
        default="plain",
        help="inference modes of the red-team answers, comma-separated: plain, harmless_guided "
        "(default: plain)",
    )
    ap.add_argument(
        "--reference",
        help="the arm every other arm's AUC and harmless rate are paired against, one of "
        "--arms (default: sft when named, else base)",
    )
    ap.add_argument(
        "--groups",
        action="store_true",
        help="also give AUC, its paired difference and twins per group of pairs, the group "
        "being each pair's `source` up to its first '/' (transfer_pairs.jsonl: declines, helps)",
    )
    ap.add_argument("--threads", default="2", help="OMP threads of the evaluation (default: 2)")
    add_malloc_argument(ap)
    args = ap.parse_args(argv)
    wanted = {m.strip() for m in args.modes.split(",") if m.strip()}
    if not wanted or wanted - set(MODES):
        ap.error(f"argument --modes: choose one or both of {', '.join(MODES)}")
    modes = tuple(m for m in MODES if m in wanted)
    if args.name is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", args.name):
        ap.error("argument --name: letters, digits, '_' and '-' only (it names folders)")
    if args.name and args.pairs is None and args.redteam is None:
        ap.error(
            "argument --name: names runs on --pairs or --redteam; the shipped sets' runs "
            "are eval/builtin/<arm>"
        )
    for flag, file in (("--pairs", args.pairs), ("--redteam", args.redteam)):
        if file is not None and not file.is_file():
            ap.error(f"argument {flag}: {file}: not a file")
    work, arms = evaluated_run(ap, args)
    train = work / "data" / "pku_train.jsonl"
    if not train.is_file():
        ap.error(f"{train}: not found; run efficacy_smollm2.py first")
    name = run_name(args)
    sets = prompt_sets(args.pairs, args.pairs_kind, args.redteam, args.redteam_field)
    records: dict[str, Any] = {"sets": sets}
    pairs: list[LabelledPair] = []
    if "discrimination" in sets:  # before any model runs: a file that yields no pairs is a
        try:  # usage error, not three evaluations that probe nothing
            pairs = labelled_pairs(sets["discrimination"])
        except InputError as err:
            ap.error(f"argument --pairs: {err}")
        if not pairs:
            ap.error(
                f"argument --pairs: {args.pairs} yields no labelled pairs as kind "
                f"{args.pairs_kind!r}"
            )
    if "harmful" in sets and args.redteam is not None:  # the same for the prompts
        try:
            prompts = list(iter_rows(parse_source_config(sets["harmful"]["source"])))
        except InputError as err:
            ap.error(f"argument --redteam: {err}")
        if not prompts:
            ap.error(f"argument --redteam: {args.redteam} holds no instructions")
    if args.groups and "discrimination" not in sets:
        ap.error("argument --groups: groups pairs, and no pairs are probed (--redteam only)")
    if args.groups:
        try:
            pair_groups(pairs)
        except ValueError as err:
            ap.error(f"argument --groups: {err}")
    try:
        reference = reference_arm(arms, args.reference)
    except ValueError as err:
        ap.error(f"argument --reference: {err}")
    versus = f"{LABELS[reference]}, paired" if reference else "reference, paired"
    records["reference"] = reference
    rate_columns = "".join(
        f" | harmless rate % ({mode}) | its difference from {versus}" for mode in modes
    )
    lines = [
        f"| scorer | AUC | AUC − {versus} | balanced acc. % at the PKU-fitted cut "
        f"| cut | harmful answer above its twin %{rate_columns} |",
        "|---|---|---|---|---|---" + "|---|---" * len(modes) + "|",
    ]
    if "discrimination" in sets:
        records["tfidf_pku_train"] = lexical_reference(work / "data", pairs, args.groups)
        lines.append(
            f"| reference: TF-IDF + logistic regression on the PKU training answers "
            f"| {record_cell(records['tfidf_pku_train']['auc'], 'discrimination_auc')} | – | – | – "
            f"| {twins_cell(records['tfidf_pku_train']['twins'])}" + " | – | –" * len(modes) + " |"
        )
    keep = not args.default_malloc
    results = {arm: evaluate(work, arm, name, sets, args.threads, modes, keep) for arm in arms}
    margins = {arm: run_margins(eval_paths(work, arm, name)[1], pairs) for arm in arms if pairs}
    for arm in arms:
        gain, rate_gain = None, {}
        if reference and arm != reference:
            run, ref = (eval_paths(work, a, name)[1] for a in (arm, reference))
            found = paired_difference(run, ref, "discrimination_auc")
            gain = found and {"reference": reference, **found.model_dump()}
            for mode in modes:
                rate = paired_difference(run, ref, "harmless_rate", mode)
                rate_gain[mode] = rate and {"reference": reference, **rate.model_dump()}
        headline = results[arm]["headline"]
        records[arm] = {
            "discrimination": results[arm].get("discrimination"),
            "harmless_rate": {mode: (headline[mode] or {}).get("harmless_rate") for mode in modes},
            "auc_minus_reference_paired": gain,
            "harmless_rate_minus_reference_paired": rate_gain,
            "twins": twins(pairs, margins[arm]) if pairs else None,
        }
        if args.groups:
            records[arm]["groups"] = group_figures(
                pairs,
                margins[arm],
                margins[reference] if reference and arm != reference else None,
                **bootstrap_settings(results[arm]["config"]),
            )
        lines.append(row(arm, records[arm], modes))
    if args.groups:
        scorers = [("tfidf_pku_train", "TF-IDF reference"), *((a, LABELS[a]) for a in arms)]
        lines += group_lines(records, scorers, versus)
    diagnostic = "builtin_transfer" if name == BUILTIN else name
    write_diagnostic(work, diagnostic, "\n".join(lines) + "\n", records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
