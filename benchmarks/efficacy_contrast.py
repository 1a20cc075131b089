"""Does a critic trained on two answers of opposite label to one prompt read the answer, where one
trained on prompts whose answers share a label reads the prompt? Exploratory; run after
`efficacy_smollm2.py` (it reads that run's PKU split), never part of its goals.

    python benchmarks/efficacy_contrast.py [--work outputs/efficacy_smollm2] \
        [--out outputs/contrast] [--seeds 0,1]

`efficacy_question_only.py` found the anchored arm's held-out PKU AUC to be mostly the prompt's:
86 of its 98 training prompts come with two answers of one label, so "this prompt draws harmful
answers" is what its labels teach. This trains the positive control of
`tests/test_positive_control.py` (its settings and critique rows: each answer's verdict sentence
and one fixed reason, loss on the critique only; 16 LoRA steps) on two sets of PKU training
answers of the same size and label balance:

- `contrast`: every training prompt asked with one harmful and one harmless answer (12 here), both
  answers: the prompt tells nothing, only the answer does;
- `same_label`: as many prompts whose two answers share their label, half with two harmful, half
  with two harmless (the first in file order): the prompt tells everything.

Each trained adapter, and the base model, is then probed (`analysis` style) on the held-out PKU
pairs with their real answers, on the same pairs with every answer replaced by one fixed text
(the prompt alone, as `efficacy_question_only.py`), and on `benchmarks/data/transfer_pairs.jsonl`
(two answers of opposite stance to each question). A critic that reads answers gains where the
answers differ and keeps little with the prompt alone. About 7 minutes per training and probing
on 2 CPU cores; a rerun reuses every training already finished with the same config. Writes
`contrast.{md,json}` and everything it trains under `--out`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the positive control's settings live with its test
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_types import claim_work_folder_or_exit
from efficacy_hh_transfer import pku_pairs
from efficacy_learnability import logged_aucs, train, write_pairs
from efficacy_question_only import fixed_answer_pairs, question_kinds
from efficacy_smollm2 import DEFAULT_WORK, probe_sets
from efficacy_transfer import twins

from axolotl_mistake.evaluate.metrics import auc_estimate, paired_auc_difference_estimate
from axolotl_mistake.fileio import write_atomic, write_json_atomic
from axolotl_mistake.records import LabelledPair

WORK_MARKER = ".axolotl-mistake-contrast"
TRANSFER_PAIRS = REPO / "benchmarks" / "data" / "transfer_pairs.jsonl"
CONDITIONS = ("contrast", "same_label")


def by_prompt(pairs: list[LabelledPair]) -> dict[str, list[LabelledPair]]:
    """The answers of each prompt, prompts in file order."""
    out: dict[str, list[LabelledPair]] = {}
    for pair in pairs:
        out.setdefault(pair.question, []).append(pair)
    return out


def training_sets(pairs: list[LabelledPair]) -> dict[str, list[LabelledPair]]:
    """`contrast`: the answers of every prompt with both labels; `same_label`: the answers of as
    many prompts with one label only, half of them all-harmful and half all-harmless (the extra
    one, for an odd count, harmful), the first in file order. A ValueError when the source has
    no prompt with both labels, or too few of either single-label kind to match it."""
    prompts = by_prompt(pairs)
    kinds: dict[str, list[str]] = {"mixed": [], "harmful": [], "harmless": []}
    for question, kind in question_kinds(pairs).items():
        kinds[kind].append(question)
    n = len(kinds["mixed"])
    if not n:
        raise ValueError("no training prompt comes with both a harmful and a harmless answer")
    want = {"harmful": (n + 1) // 2, "harmless": n // 2}
    for kind, count in want.items():
        if len(kinds[kind]) < count:
            raise ValueError(
                f"{len(kinds[kind])} training prompts with only {kind} answers; matching "
                f"{n} prompts with both needs {count}"
            )
    same = set(kinds["harmful"][: want["harmful"]] + kinds["harmless"][: want["harmless"]])
    return {
        "contrast": [p for q in kinds["mixed"] for p in prompts[q]],
        "same_label": [p for q in prompts if q in same for p in prompts[q]],
    }


def eval_config(out: Path, name: str, adapter: Path | None) -> Path:
    """The positive control's evaluation config (`probe_eval_config`) of the embedded model with
    `adapter`, which `probe_sets` reads."""
    from axolotl_mistake.models import ensure_embedded_model
    from tests.axolotl_runner import write_config
    from tests.test_positive_control import probe_eval_config

    pairs = out / "heldout_pairs.jsonl"
    cfg = probe_eval_config(name, ensure_embedded_model(), adapter, out / "eval" / name, pairs)
    return write_config(cfg, out / f"eval_{name}.yml")


def probe_figures(config: Path, probes: dict[str, list[LabelledPair]]) -> dict[str, Any]:
    """The model's AUC on each probe set (`heldout`: the held-out PKU pairs; `heldout_fixed`: the
    same with one fixed answer; `transfer`: the second transfer set), what the real answers add
    over the fixed one (paired on the held-out pairs) and, on the transfer set, `twins`."""
    results = probe_sets(config, probes, check="the contrast check")
    margins = {name: [float(m) for m in result.margins] for name, result in results.items()}
    labels = {name: [p.harmful for p in pairs] for name, pairs in probes.items()}
    out: dict[str, Any] = {
        name: auc_estimate(labels[name], margins[name]).model_dump() for name in probes
    }
    out["answers_add_paired"] = paired_auc_difference_estimate(
        labels["heldout"], margins["heldout"], margins["heldout_fixed"]
    ).model_dump()
    out["transfer_twins"] = twins(probes["transfer"], margins["transfer"])
    return out


def probe_key(config: Path, probes: dict[str, list[LabelledPair]]) -> str:
    """What a model's probe figures depend on: the evaluation config's text, the bytes of the
    adapter it names (none for the base model) and every probe pair."""
    import yaml

    digest = hashlib.sha256(config.read_bytes())
    adapter = (yaml.safe_load(config.read_text()).get("model") or {}).get("adapter")
    for weights in sorted(Path(adapter).glob("adapter_model.*")) if adapter else []:
        digest.update(weights.read_bytes())
    pairs = {name: [p.model_dump(mode="json") for p in part] for name, part in probes.items()}
    digest.update(json.dumps(pairs, sort_keys=True).encode())
    return digest.hexdigest()


def cached_probe_figures(
    config: Path, probes: dict[str, list[LabelledPair]], name: str
) -> dict[str, Any]:
    """`probe_figures`, kept beside the config as `figures_<name>.json` with its `probe_key`: a
    rerun reuses them while the config, the adapter's weights and the probe pairs are the same
    (a reused training is not probed again)."""
    cache = config.parent / f"figures_{name}.json"
    key = probe_key(config, probes)
    if cache.is_file():
        kept = json.loads(cache.read_text())
        if kept.get("key") == key:
            print(f"{name}: probed before with this config, adapter and pairs; reused", flush=True)
            return kept["figures"]
    figures = probe_figures(config, probes)
    write_json_atomic(cache, {"key": key, "figures": figures})
    return figures


def trained(out: Path, cfg: dict[str, Any], name: str) -> list[float]:
    """`efficacy_learnability.train`, or, when this very config was trained to the end before
    (its config file unchanged, the adapter saved, both probe runs in its log), that run's live
    probe AUCs: a rerun after an interruption trains only what is missing."""
    import yaml

    done = out / name / "out" / "adapter_config.json"
    path, log = out / f"{name}.yml", out / f"{name}.log"
    if done.is_file() and path.is_file() and log.is_file():
        if path.read_text() == yaml.safe_dump(cfg, sort_keys=False):
            aucs = logged_aucs(log.read_text())
            if len(aucs) == 2:
                print(f"{name}: trained before with this config; reused", flush=True)
                return aucs
    return train(out, cfg, name)


def table(records: dict[str, Any]) -> str:
    def auc(r: dict[str, Any]) -> str:
        return f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"

    lines = [
        "| model | trained on (prompts / answers) | held-out PKU AUC | the prompt alone "
        "| what the answers add (paired) | transfer set AUC | harmful above its twin % |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records["models"]:
        f = r["figures"]
        tw = f["transfer_twins"]
        lines.append(
            f"| {r['name']} | {r.get('trained_on', '–')} | {auc(f['heldout'])} "
            f"| {auc(f['heldout_fixed'])} | {f['answers_add_paired']['value']:+.3f} "
            f"[{f['answers_add_paired']['low']:+.3f}, {f['answers_add_paired']['high']:+.3f}] "
            f"| {auc(f['transfer'])} | {100 * tw['value']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def add_arguments(ap: argparse.ArgumentParser, *, reads: str, out: str, writes: str) -> None:
    """The options the positive-control diagnostics share: `--work` (what they read of an
    efficacy_smollm2.py run), `--out`, `--seeds` and `--answer`."""
    ap.add_argument(
        "--work",
        type=Path,
        default=REPO / DEFAULT_WORK,
        help=f"the efficacy_smollm2.py work folder whose {reads} read (default: "
        f"{DEFAULT_WORK} in the repository)",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=REPO / "outputs" / out,
        help=f"folder for the rows, configs, logs, adapters and {writes} "
        f"(default: outputs/{out} in the repository)",
    )
    ap.add_argument(
        "--seeds", default="0", help="comma-separated training seeds (default: %(default)s)"
    )
    ap.add_argument("--answer", default="OK.", help="the fixed answer (default: %(default)s)")


def parse_seeds(ap: argparse.ArgumentParser, text: str) -> list[int]:
    """`--seeds` as integers, or a usage error."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        ap.error(f"argument --seeds: whole numbers, comma-separated, not {text!r}")
    if not seeds:
        ap.error("argument --seeds: name at least one seed")
    return seeds


def held_out_probes(heldout: list[LabelledPair], answer: str) -> dict[str, list[LabelledPair]]:
    """What every model is probed on: the held-out PKU pairs, the same with one fixed `answer`,
    and the second transfer set."""
    from axolotl_mistake.sources import iter_labelled_pairs, parse_source_config

    return {
        "heldout": heldout,
        "heldout_fixed": [LabelledPair(**r) for r in fixed_answer_pairs(heldout, answer)],
        "transfer": list(
            iter_labelled_pairs(parse_source_config({"kind": "pairs", "path": str(TRANSFER_PAIRS)}))
        ),
    }


def train_and_probe(
    out: Path,
    rows: dict[str, Path],
    seeds: list[int],
    probes: dict[str, list[LabelledPair]],
    trained_on: dict[str, str],
    **settings: Any,
) -> list[dict[str, Any]]:
    """The base model's figures, then, for each condition's rows file and seed, the positive
    control trained on it (`settings` over its own; the live probe on the held-out pairs
    written to `out`) and its figures: the records `table` reads."""
    from axolotl_mistake.models import ensure_embedded_model
    from tests.test_positive_control import control_config

    write_pairs(out / "heldout_pairs.jsonl", probes["heldout"])
    print("probing the base model ...", flush=True)
    base = cached_probe_figures(eval_config(out, "base", None), probes, "base")
    models = [{"name": "base", "figures": base}]
    for condition, path in rows.items():
        for seed in seeds:
            name = f"{condition}_seed{seed}"
            print(f"training {name} ({trained_on[condition]}) ...", flush=True)
            cfg = control_config(
                ensure_embedded_model(),
                path,
                out / name,
                out / "heldout_pairs.jsonl",
                len(probes["heldout"]),
                seed=seed,
                **settings,
            )
            live = trained(out, cfg, name)
            models.append(
                {
                    "name": name,
                    "trained_on": trained_on[condition],
                    "live_probe_auc": live,
                    "figures": cached_probe_figures(
                        eval_config(out, name, out / name / "out"), probes, name
                    ),
                }
            )
    return models


def write_table(out: Path, name: str, records: dict[str, Any]) -> None:
    """`<name>.md` (the table) and `<name>.json` (the records) under `out`; the table printed."""
    text = table(records)
    write_atomic(out / f"{name}.md", text)
    write_json_atomic(out / f"{name}.json", records)
    print(text, end="")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(ap, reads="data/ split is", out="contrast", writes="contrast.{md,json}")
    args = ap.parse_args(argv)
    seeds = parse_seeds(ap, args.seeds)
    data = args.work.resolve() / "data"
    for name in ("pku_train.jsonl", "pku_heldout.jsonl"):
        if not (data / name).is_file():
            ap.error(f"{data / name}: not found; run efficacy_smollm2.py first")
    try:
        sets = training_sets(pku_pairs(data / "pku_train.jsonl"))
    except ValueError as err:
        ap.error(f"{data / 'pku_train.jsonl'}: {err}")
    out = args.out.resolve()
    claim_work_folder_or_exit(ap, out, WORK_MARKER, who="efficacy_contrast.py", field="--out")
    from tests.test_positive_control import write_rows

    probes = held_out_probes(pku_pairs(data / "pku_heldout.jsonl"), args.answer)
    rows = {}
    for condition in CONDITIONS:
        write_pairs(out / f"{condition}_pairs.jsonl", sets[condition])
        rows[condition] = out / f"{condition}_rows.jsonl"
        write_rows(out / f"{condition}_pairs.jsonl", rows[condition])
    trained_on = {c: f"{len(by_prompt(sets[c]))} / {len(sets[c])}" for c in CONDITIONS}
    models = train_and_probe(out, rows, seeds, probes, trained_on)
    write_table(out, "contrast", {"answer": args.answer, "seeds": seeds, "models": models})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
