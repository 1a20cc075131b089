"""Efficacy of mistake analysis on the embedded SmolLM2-135M-Instruct, CPU only: one command.

    python benchmarks/efficacy_smollm2.py            # the full size (within 150 min, 2 cores)
    python benchmarks/efficacy_smollm2.py --quick    # a small size (within 20 min)

From the labelled public data in ../shared/data, split train / held-out by prompt
(`efficacy_split.py`), it builds three mistake-analysis datasets with the project's builder,
trains four LoRA adapters with `axolotl train` (same SFT rows, steps, batch and LoRA settings),
and evaluates five arms with the project's evaluation harness on held-out data only:

| arm | training data |
|---|---|
| base | none (the model as shipped) |
| sft | harmless answers to the red-team instructions + helpful Alpaca rows |
| paper | sft + analyses of the model's own guided mistakes by itself (template a, b -> c) |
| origin | sft + self-analyses of the labelled unsafe answers (PKU-SafeRLHF training prompts) |
| anchored | sft + label-anchored, balanced self-analyses of labelled harmful AND harmless answers |
|          | (PKU-SafeRLHF's, and 40 detailed Alpaca answers to benign instructions, labelled harmless) |

Opt-in, outside the default run and its goals (`--arms refusal,anchored_refusal`): `refusal`
(sft + refusals to training-side red-team prompts, `refusal_rows.py`), the positive control for
the harmless-rate measure, and `anchored_refusal` (anchored + the same refusal rows); and
`--arms anchored_refusal_labels`: the PKU-only anchored arm whose labelled harmless answers also
hold a refusal to each of the first 40 training-side red-team prompts (its own build; the same
SFT rows, steps and settings), which tells whether the anchored critic scores refusals as harmful only
because the PKU training answers hold none labelled harmless; and `--arms anchored_hh_refusals`:
the same with 40 refusals of many wordings instead of the project's six sentences (HH-RLHF
training turns that open with a refusal and were preferred to one that did not); and
`--arms anchored_pku`: the anchored arm without the Alpaca answers (PKU-SafeRLHF's labelled answers
only; the default until 2026-12-08, when the Alpaca answers, then the opt-in arm
`anchored_alpaca_answers`, joined the default arm); `anchored_alpaca_hh`: the default anchored
arm plus the 40 HH refusals. The label arms are listed in `label_arms.py`. And
`--arms sft_matched`: SFT-only trained for only as many steps as the anchored arm spends on SFT
rows (160 x 510 / 1,600 = 51 at the full size with the PKU-only build; computed from the builds'
row counts), so it sees as many of them: the control of the NLL goal, which compares arms that
see a third as many SFT rows as SFT-only at the same steps.

Held-out metrics: discrimination (the probe on held-out PKU pairs: ROC AUC, balanced accuracy
at the cut fitted on the training prompts' labelled answers and at 0, accuracy; in the trained
`analysis` style and, at the full size, the `alpaca` question style), harmless rate (refusal judge) on held-out
red-team prompts, XSTest over-refusal, goal-hijacking defence, and helpfulness as the NLL of
held-out Alpaca reference answers.
Every step is a subprocess running the project's documented CLI; everything is written under
--work (default outputs/efficacy_smollm2); a rerun skips finished steps (resume), and a
training that was killed goes on from its last checkpoint (every 20 steps) of the same settings.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_types import claim_work_folder as claim_folder
from cli_types import positive_int
from efficacy_goals import GOALS_TITLE, check, render
from efficacy_split import split_shared
from label_arms import LABEL_ARM_SPECS
from refusal_rows import write_refusal_rows

from axolotl_mistake.errors import InputError
from axolotl_mistake.evaluate.compare import is_compare_folder
from axolotl_mistake.evaluate.paired import pair_margins, paired_difference
from axolotl_mistake.fileio import (
    file_sha256,
    write_atomic,
    write_json_atomic,
)
from axolotl_mistake.manifest import MANIFEST_NAME, read_manifest
from axolotl_mistake.offline_env import KEEP_FREED_MEMORY, NO_FORKED_WORKERS, offline_cpu_env

REPO = Path(__file__).resolve().parents[1]
ARMS = ("base", "sft", "paper", "origin", "anchored")
# opt-in (`--arms ...`), outside the default run and its goals: the positive control for the
# harmless-rate measure (refusal_rows.py) and the anchored arm with the same refusal rows
CONTROL_ARMS = ("refusal", "anchored_refusal")
# opt-in too: the PKU-only anchored arm, and it plus refusals labelled harmless (label_arms.py,
# whose entries also hold the default anchored arm's Alpaca answers)
LABEL_ARMS = tuple(arm for arm in LABEL_ARM_SPECS if arm not in ARMS)
ANCHORED_BUILDS = ("anchored", "anchored_pku", *LABEL_ARMS)
"""The builds of label-anchored, balanced analyses; each label arm's adds its pairs file."""
# opt-in too: SFT-only at another arm's SFT exposure (its steps scaled by that arm's share of SFT
# rows), the control that tells a helpfulness cost of critiques from SFT rows they displace
MATCHED_TO = {"sft_matched": "anchored"}
OPT_IN = CONTROL_ARMS + ("anchored_pku",) + LABEL_ARMS + tuple(MATCHED_TO)
ANALYSES = {"paper": "paper", "origin": "origin", "anchored": "anchored"}
ANALYSES["anchored_pku"] = "anchored_pku"
ANALYSES["anchored_refusal"] = "anchored"  # the arms trained on a build's analyses, by build
ANALYSES.update({arm: arm for arm in LABEL_ARMS})
LABELS = {
    "base": "SmolLM2-135M-Instruct (vanilla)",
    "sft": "SFT",
    "paper": "SFT + mistake analysis (paper: own mistakes, self-analysis)",
    "origin": "SFT + mistake analysis (origin mistakes, self-analysis)",
    "anchored": "SFT + label-anchored balanced analysis (extension)",
    "anchored_pku": "SFT + label-anchored balanced analysis, PKU-SafeRLHF answers only",
    "refusal": "SFT + refusal rows (positive control for the harmless rate)",
    "anchored_refusal": "SFT + refusal rows + label-anchored balanced analysis",
    "anchored_refusal_labels": "SFT + label-anchored balanced analysis, refusals among the harmless answers",
    "anchored_hh_refusals": "SFT + label-anchored balanced analysis, HH refusals among the harmless answers",
    "anchored_alpaca_hh": "SFT + label-anchored balanced analysis, Alpaca answers and HH refusals among the harmless answers",
    "sft_matched": "SFT, as many SFT rows as the anchored arm sees (control)",
}


def eval_paths(work: Path, arm: str, style: str = "analysis") -> tuple[Path, Path]:
    """(evaluation config, evaluation run folder) of one arm and probe style under `work`."""
    return work / f"eval_{style}_{arm}.yml", work / "eval" / style / arm


def probe_arm(config: Path, pairs: list[Any], *, check: str, threshold: float = 0.0) -> Any:
    """The arm's `analysis`-style probe on `pairs` (LabelledPair), with the model, adapter and
    probe batch size of its evaluation config `config`: how the diagnostic scripts score answers
    beyond the evaluation's own sets. Returns the ProbeResult; an endpoint model, which gives
    no token log-probabilities, ends the `check` with an error naming the config."""
    return probe_sets(config, {"pairs": pairs}, check=check, threshold=threshold)["pairs"]


def probe_sets(
    config: Path, sets: dict[str, list[Any]], *, check: str, threshold: float = 0.0
) -> dict[str, Any]:
    """`probe_arm` on each of several sets of pairs, the model loaded once for all of them."""
    from axolotl_mistake.evaluate.inputs import load_config
    from axolotl_mistake.evaluate.local import hf_model
    from axolotl_mistake.probe import DiscriminationProbe

    cfg = load_config(config)
    loaded = hf_model(cfg, backend=None)
    if loaded is None:
        raise SystemExit(f"error: {config}: {check} needs a local model (transformers/vllm)")
    return {
        name: DiscriminationProbe(pairs, style="analysis", threshold=threshold).evaluate(
            *loaded, batch_size=cfg.probe_batch_size
        )
        for name, pairs in sets.items()
    }


def write_diagnostic(work: Path, name: str, table: str, records: Any) -> None:
    """A diagnostic script's outcome: `compare/<name>/<name>.md` (the table) and `<name>.json`
    (its records) under `work`, and the table on stdout."""
    out = work / "compare" / name
    write_atomic(out / f"{name}.md", table)
    write_json_atomic(out / f"{name}.json", records)
    print(table)


DEFAULT_WORK = "outputs/efficacy_smollm2"
"""The work folder under the repository when --work is not given (--quick adds `_quick`)."""


def add_run_arguments(ap: argparse.ArgumentParser, *, reads: str, arms: str, default: str) -> None:
    """--work and --arms of a script that reads this experiment's evaluated arms back
    (`reads`: what it reads there; `arms`: what the arms are for)."""
    ap.add_argument(
        "--work",
        type=Path,
        default=None,
        help=f"the efficacy_smollm2.py work folder whose {reads} read; a relative path is from "
        f"the current directory (default: {DEFAULT_WORK} in the repository)",
    )
    ap.add_argument(
        "--arms", default=default, help=f"comma-separated {arms} (default: %(default)s)"
    )


def add_malloc_argument(ap: argparse.ArgumentParser) -> None:
    """--default-malloc of a script that starts steps as subprocesses (`offline_cpu_env`'s
    `keep_freed_memory=not args.default_malloc`)."""
    ap.add_argument(
        "--default-malloc",
        action="store_true",
        help=(
            "do not add the glibc malloc settings that keep freed memory"
            " (axolotl_mistake.offline_env.KEEP_FREED_MEMORY) to the steps' environment; the"
            " results are the same, the speed and peak memory differ"
        ),
    )


def evaluated_run(ap: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Path, list[str]]:
    """(work folder, arms) of `add_run_arguments`' flags, each arm checked to have been
    evaluated there; anything else is a usage error."""
    work = (args.work or REPO / DEFAULT_WORK).resolve()
    try:
        arms = evaluated_arms(work, args.arms)
    except ValueError as err:
        ap.error(str(err))
    if not arms:
        ap.error("argument --arms: name at least one arm")
    return work, arms


def evaluated_arms(work: Path, names: str) -> list[str]:
    """The comma-separated arms, each checked to have an `analysis` evaluation run under `work`
    made at the settings of the last finished efficacy run there (for the scripts that read the
    runs back); a ValueError names the first that has not.

    summary.json is the authority: it holds only arms made at its run's settings, so arms it
    holds are never a mix of sizes. An arm evaluated since (a later run that did not finish)
    or left out of it (made at other settings) would be read as if it belonged with the rest.
    """
    arms = [a for a in names.split(",") if a]
    for arm in arms:
        if arm not in ARMS + OPT_IN:
            raise ValueError(f"unknown arm {arm!r}; choose from {', '.join(ARMS + OPT_IN)}")
        config, run = eval_paths(work, arm)
        if not (run / "results.json").is_file() or not config.is_file():
            raise ValueError(f"{arm}: no evaluation run under {run}; run efficacy_smollm2.py first")
    if not arms:
        return arms
    summary = work / "summary.json"
    try:
        made = json.loads(summary.read_text(encoding="utf-8"))["arms"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(
            f"{summary}: missing or unreadable, so the runs' settings are unknown (the efficacy"
            " run did not finish); rerun efficacy_smollm2.py with the same flags (it resumes)"
        ) from None
    for arm in arms:
        results = eval_paths(work, arm)[1] / "results.json"
        if not isinstance(made, dict) or not made.get(arm):
            raise ValueError(
                f"{arm}: not among the arms of {summary} (made at other settings than its run's,"
                f" or not run then); rerun efficacy_smollm2.py with --arms {arm} at those settings"
            )
        if results.stat().st_mtime_ns > summary.stat().st_mtime_ns:
            raise ValueError(
                f"{arm}: {results} is newer than {summary} (a later efficacy run did not finish);"
                " rerun efficacy_smollm2.py with the same flags (it resumes)"
            )
    return arms


@dataclass(frozen=True)
class Size:
    """Every knob that sets the experiment's cost."""

    redteam_n: int | None  # PKU-SafeRLHF training answers (rows) to use; None = all
    helpful_n: int  # helpful Alpaca SFT rows
    guided_k: int  # guided mistakes per distinct red-team prompt (paper arm)
    paper_k: int  # self-analyses per guided mistake (paper arm)
    origin_k: int  # self-analyses per unsafe answer (origin arm)
    anchored_k: int  # self-analyses per labelled answer (anchored arm)
    max_answer_chars: int  # labelled answers are cut to this for the analyst and the rows
    mistake_tokens: int
    analysis_tokens: int
    steps: int  # optimizer steps of every trained arm
    micro_batch: int
    lora_r: int
    learning_rate: float
    sequence_len: int
    eval_harmful: int
    eval_xstest: int
    eval_hijack: int
    eval_helpful: int  # held-out Alpaca reference answers (NLL)
    eval_new_tokens: int
    calibration_n: int | None = None  # training answers that fit the probe cut; None = all
    refusal_n: int = 200  # refusal SFT rows of the control arms (training-side red-team prompts)
    # answers labelled harmless added to each label arm's build: the default anchored arm's
    # Alpaca answers, the refusal arms' refusals
    refusal_label_n: int = 40
    checkpoint_steps: int = 20  # a killed training resumes from its last checkpoint
    # the discrimination probe's styles, one evaluation each: `analysis` (the format the arms
    # are trained on) runs the whole evaluation, `alpaca` only re-probes in the question style
    probe_styles: tuple[str, ...] = ("analysis", "alpaca")


FULL = Size(
    redteam_n=None,
    helpful_n=400,
    guided_k=4,
    paper_k=4,  # 2 until the builder asked template (a) once per prompt, not once per PKU row
    origin_k=14,  # 13 until the copy gate (2026-12-07): 990 rows kept of 1,105, under 1,000
    anchored_k=7,
    max_answer_chars=600,
    mistake_tokens=48,
    analysis_tokens=32,
    steps=160,
    micro_batch=8,
    lora_r=16,
    learning_rate=3e-4,
    sequence_len=512,
    eval_harmful=120,
    eval_xstest=80,
    eval_hijack=18,
    eval_helpful=200,
    eval_new_tokens=48,
)
QUICK = Size(
    redteam_n=40,
    helpful_n=40,
    guided_k=1,
    paper_k=1,
    origin_k=2,
    anchored_k=2,
    max_answer_chars=400,
    mistake_tokens=24,
    analysis_tokens=16,
    steps=12,
    micro_batch=4,  # 8 until 2026-12-04: half the training time, inside 20 min with a margin
    lora_r=16,
    learning_rate=3e-4,
    sequence_len=384,
    eval_harmful=12,
    eval_xstest=8,
    eval_hijack=9,
    eval_helpful=16,
    eval_new_tokens=24,
    calibration_n=64,
    refusal_n=40,
    refusal_label_n=8,
    checkpoint_steps=6,
    # the alpaca-style re-probe was a fifth of the quick run (57 s an arm) and took it past its
    # 20 minutes on a slower CPU (21 min 57 s, 2026-12-06); the full size keeps both styles
    probe_styles=("analysis",),
)


RESUMED_LINE = "=== efficacy_smollm2.py: resumed from {checkpoint}; the lines above are the killed attempt's ==="
"""The line a resumed step's log holds between the killed attempt's lines and its own."""


def sh(cmd: list[str], log: Path, env: dict[str, str], resumed_from: str | None = None) -> float:
    """Run one step, its output to `log`; return wall seconds; stop the experiment on failure.

    A step `resumed_from` a checkpoint appends to the log of the attempt it goes on from, after
    a line saying so, instead of replacing it: that attempt's steps are in the result too."""
    print(f"$ {shlex.join(cmd)}\n  progress: {log}", flush=True)
    started = time.perf_counter()
    with log.open("a" if resumed_from else "w") as handle:
        if resumed_from:
            handle.write(f"\n{RESUMED_LINE.format(checkpoint=resumed_from)}\n")
            handle.flush()
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False
        )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise SystemExit(
            f"step failed ({proc.returncode}) after {seconds:.0f} s: see {log}\n{tail}"
        )
    print(f"  done in {seconds:.0f} s", flush=True)
    return seconds


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    write_atomic(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


# config keys that change how a step reports or recovers from a kill, never what it computes: a
# config that differs from the last one only here is the same step (folders made when builds ran
# with `progress: false`, or trained before trainings saved checkpoints, are resumed, not redone)
RESULT_NEUTRAL_KEYS = (
    "progress",
    "save_strategy",
    "save_steps",
    "save_total_limit",
    "auto_resume_from_checkpoints",
)


def _settings(data: Any) -> Any:
    return (
        {k: v for k, v in data.items() if k not in RESULT_NEUTRAL_KEYS}
        if isinstance(data, dict)
        else data
    )


def finished(marker: Path, config: Path, data: dict[str, Any]) -> bool:
    """A step is finished when its output exists and was made from this very config.

    Resume must never reuse a result made with other settings: a changed config (a new size,
    a new default) reruns the step (the builder and the evaluation still reuse cached calls);
    only RESULT_NEUTRAL_KEYS may differ. The config is written before its step runs and the
    marker when the step ends, so a marker older than its config is what an earlier step left
    when this one failed or was killed.
    """
    if not (marker.exists() and config.exists()):
        return False
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    old = config.read_text()
    same = old == text or _settings(yaml.safe_load(old)) == _settings(yaml.safe_load(text))
    return same and marker.stat().st_mtime_ns > config.stat().st_mtime_ns


def evaluation_fresh(
    results: Path, config: Path, data: dict[str, Any], adapter: Path | None
) -> bool:
    """An evaluation's results are there, made from this very config (`finished`) and after the
    adapter they evaluated was last trained: a retrained arm keeps its adapter path, so its
    config alone would not tell."""
    if not finished(results, config, data):
        return False
    made = None if adapter is None else adapter / "adapter_model.safetensors"
    return made is None or made.stat().st_mtime <= results.stat().st_mtime


class Experiment:
    """The experiment's folder layout, steps and their resume rule (a finished step is skipped)."""

    def __init__(
        self,
        work: Path,
        shared: Path,
        size: Size,
        threads: str,
        train_seed: int = 0,
        build_seed: int | None = None,
        keep_freed_memory: bool = True,
    ) -> None:
        self.work, self.shared, self.size = work, shared, size
        # Axolotl's `seed`: the adapter's initial weights (seeded by the plugin), data order
        # and dropout; the data stay the same
        self.train_seed = train_seed
        # the builder's `seed` (None: the recipe's): which helpful rows are sampled, the
        # critiques' sampling and the balanced pick; the split stays the same
        self.build_seed = build_seed
        self.data = work / "data"
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        # glibc's keep-freed-memory settings: same results, less kernel time (offline_env.py)
        self.env = offline_cpu_env(threads, pythonpath=REPO, keep_freed_memory=keep_freed_memory)
        # with them (ours or the caller's), a training must not fork a data-loader worker
        # (offline_env.py); an option, not a config key: the batches are the same, so a
        # finished arm still counts
        self.train_options = list(NO_FORKED_WORKERS) if self.malloc_env() else []
        self.py = sys.executable
        self.axolotl = str(Path(self.py).with_name("axolotl"))
        self.timings: dict[str, float] = {}
        # steps this run went on with from a checkpoint: their timing is of this part only
        self.resumed: dict[str, str] = {}
        self.commands: list[str] = []

    def malloc_env(self) -> dict[str, str]:
        """The keep-freed-memory variables the steps run with (the project's or the caller's)."""
        return {k: self.env[k] for k in KEEP_FREED_MEMORY if k in self.env}

    def run(self, name: str, cmd: list[str], resumed_from: str | None = None) -> None:
        self.commands.append(shlex.join(cmd))
        seconds = sh(cmd, self.logs / f"{name}.log", self.env, resumed_from)
        self.timings[name] = round(seconds, 1)
        if resumed_from:
            self.resumed[name] = resumed_from

    # -- data --------------------------------------------------------------------------------
    def redteam_sources(self, arm: str = "") -> list[dict[str, Any]]:
        """The red-team side of every arm: the PKU-SafeRLHF training prompts and their labelled
        answers (absolute safety labels); for the label arms (the default anchored arm among
        them) also their answers labelled harmless (Alpaca answers, refusals). HH-RLHF pairs
        are kept out of training: their labels are relative (chosen = the less harmful turn),
        and in a pilot they pulled the verdicts on held-out PKU answers toward 'harmful'
        (RESULTS.md); their held-out prompts are evaluation prompts."""
        sources = [{"kind": "pku_saferlhf", "path": str(self.data / "pku_train.jsonl")}]
        if arm in LABEL_ARM_SPECS:
            sources.append({"kind": "pairs", "path": str(self.label_pairs_path(arm))})
        return sources

    def label_pairs_path(self, arm: str) -> Path:
        """The answers labelled harmless of a label arm (written by `main` first)."""
        return self.work / "build" / "refusal" / LABEL_ARM_SPECS[arm].pairs_file

    def build_config(self, arm: str) -> dict[str, Any]:
        """The builder config of one arm: the CPU recipe's build with these sources and sizes."""
        s = self.size
        cfg = yaml.safe_load((REPO / "recipes" / "smollm2_135m_mistake.build.yml").read_text())
        if self.build_seed is not None:
            cfg["seed"] = self.build_seed
        cfg.update(
            output=str(self.work / "build" / arm),
            redteam=self.redteam_sources(arm),
            helpful=[{"kind": "alpaca", "path": str(self.data / "alpaca_train.jsonl")}],
        )
        cfg["select"] = {"redteam_n": s.redteam_n, "helpful_n": s.helpful_n}
        cfg["mistakes"] = {
            **cfg["mistakes"],
            "max_new_tokens": s.mistake_tokens,
            "max_answer_chars": s.max_answer_chars,
        }
        cfg["analyses"] = {**cfg["analyses"], "max_new_tokens": s.analysis_tokens}
        sampled = {"temperature": 0.7, "top_p": 0.95}  # k > 1 critiques must differ
        if arm == "paper":
            cfg["mistakes"].update(mode="guided", k=s.guided_k)
            cfg["analyses"].update(k=s.paper_k, **(sampled if s.paper_k > 1 else {}))
        elif arm == "origin":
            cfg["mistakes"].update(mode="origin")
            cfg["analyses"].update(k=s.origin_k, **(sampled if s.origin_k > 1 else {}))
        elif arm in ANCHORED_BUILDS:
            cfg["mistakes"].update(mode="origin")
            cfg["analyses"].update(
                anchored=True,
                balanced=True,
                min_chars=10,
                k=s.anchored_k,
                **(sampled if s.anchored_k > 1 else {}),
            )
        return cfg

    def built(self, arm: str) -> bool:
        """The build is there, made from this run's build config (the resume rule of `build`)."""
        out, path = self.work / "build" / arm, self.work / f"build_{arm}.yml"
        return finished(out / "manifest.json", path, self.build_config(arm))

    def build(self, arm: str) -> Path:
        out = self.work / "build" / arm
        data, path = self.build_config(arm), self.work / f"build_{arm}.yml"
        if not self.built(arm):
            write_yaml(path, data)
            self.run(
                f"build_{arm}", [self.py, "-m", "dataset_builders.build", "--config", str(path)]
            )
        return out

    # -- training ----------------------------------------------------------------------------
    def train_datasets(self, arm: str) -> list[dict[str, str]]:
        """The arm's Axolotl `datasets`: its analyses (if any), then the SFT rows every arm shares
        (then the refusal rows, for the control arms)."""
        sft = self.work / "build" / "origin"  # one set of SFT rows for every arm
        datasets = [
            {"path": str(sft / "sft_harmless.jsonl"), "ds_type": "json", "type": "alpaca"},
            {"path": str(sft / "sft_helpful.jsonl"), "ds_type": "json", "type": "alpaca"},
        ]
        if arm in CONTROL_ARMS:
            datasets.append({"path": str(self.refusal_path), "ds_type": "json", "type": "alpaca"})
        if build := self.analysis_build(arm):
            datasets.insert(
                0,
                {
                    "path": str(self.work / "build" / build / "mistake_analysis.jsonl"),
                    "ds_type": "json",
                    "type": "axolotl_mistake.unguided_analysis",
                },
            )
        return datasets

    def analysis_build(self, arm: str) -> str | None:
        """The build whose analyses the arm trains on (None: it trains on SFT rows only)."""
        return ANALYSES.get(arm)

    @property
    def refusal_path(self) -> Path:
        """The control arms' refusal rows (written by `main` before their training)."""
        return self.work / "build" / "refusal" / "sft_refusal.jsonl"

    def train_config(self, arm: str, base_model: str) -> dict[str, Any]:
        """The CPU recipe, pointed at this experiment's data; the same settings for every arm."""
        s = self.size
        steps = self.arm_steps(arm)
        if steps is None:
            raise SystemExit(
                f"error: {arm} takes its steps from the {MATCHED_TO[arm]} build's row counts, and "
                f"{self.work / 'build' / MATCHED_TO[arm] / 'manifest.json'} gives none; rebuild it"
            )
        sft_only = arm in ("sft", "refusal", *MATCHED_TO)
        recipe = "smollm2_135m_sft.yml" if sft_only else "smollm2_135m_mistake.yml"
        cfg = yaml.safe_load((REPO / "recipes" / recipe).read_text())
        for key in [k for k in cfg if k.startswith("mistake_probe")]:
            del cfg[key]  # the evaluation measures discrimination on held-out pairs afterwards
        cfg.update(
            base_model=base_model,
            datasets=self.train_datasets(arm),
            dataset_prepared_path=str(self.work / "train" / arm / "prepared"),
            output_dir=str(self.work / "train" / arm / "lora"),
            max_steps=steps,
            num_epochs=100,  # max_steps decides
            micro_batch_size=s.micro_batch,
            lora_r=s.lora_r,
            lora_alpha=2 * s.lora_r,
            learning_rate=s.learning_rate,
            sequence_len=s.sequence_len,
            warmup_steps=max(2, steps // 20),
            logging_steps=10,
            seed=self.train_seed,
            # a killed training (a closed laptop, a session's end) resumes from its last
            # checkpoint instead of restarting: `train` keeps only checkpoints of these very
            # settings and inputs, and removes them once the adapter is saved
            save_strategy="steps",
            save_steps=s.checkpoint_steps,
            save_total_limit=1,
            auto_resume_from_checkpoints=True,
        )
        return cfg

    def arm_steps(self, arm: str) -> int | None:
        """The arm's optimizer steps: the run's; for an arm of `MATCHED_TO`, the run's scaled by
        the matched arm's share of SFT rows (its batches draw uniformly from its analyses and the
        shared SFT rows, so in the run's steps it sees that share of SFT rows, and SFT-only sees
        as many in the scaled steps), counted from the builds' manifests; None while those give
        no row counts."""
        if arm not in MATCHED_TO:
            return self.size.steps
        rows = {}
        for build in ("origin", MATCHED_TO[arm]):
            try:
                manifest = read_manifest(self.work / "build" / build)
            except InputError:  # unreadable: the build step remakes it
                return None
            if manifest is None:
                return None
            rows[build] = {name: entry.rows for name, entry in manifest.files.items()}
        sft = sum(rows["origin"].get(Path(d["path"]).name, 0) for d in self.train_datasets("sft"))
        analyses = rows[MATCHED_TO[arm]].get("mistake_analysis.jsonl", 0)
        if not sft:
            return None
        return max(1, round(self.size.steps * sft / (sft + analyses)))

    def trained(self, arm: str, base_model: str) -> bool:
        """The arm's adapter is there, made from this run's config and from its inputs as they
        are now (the resume rule of `train`)."""
        if self.arm_steps(arm) is None:
            return False
        lora = self.work / "train" / arm / "lora"
        config, data = self.work / f"train_{arm}.yml", self.train_config(arm, base_model)
        return finished(lora / "adapter_model.safetensors", config, data) and not self.stale(
            lora, arm
        )

    def train(self, arm: str, base_model: str) -> Path:
        lora = self.work / "train" / arm / "lora"
        data, path = self.train_config(arm, base_model), self.work / f"train_{arm}.yml"
        if not self.trained(arm, base_model):
            write_yaml(path, data)
            # Axolotl keys its tokenised rows by the datasets' paths and types, not by their
            # content: rows left by an earlier training would be read instead of the inputs
            # as they are now (a rebuild writes new rows to the same paths)
            clear_prepared(Path(data["dataset_prepared_path"]))
            inputs = self.inputs_digest(arm)
            resumed_from = self.keep_resumable(arm, data, inputs)
            cmd = [self.axolotl, "train", str(path), "--launcher", "python", *self.train_options]
            self.run(f"train_{arm}", cmd, resumed_from=resumed_from)
            write_json_atomic(self.inputs_record(arm), inputs, indent=1)
            remove_checkpoints(lora)
        return lora

    def resume_record(self, arm: str) -> Path:
        return self.work / "train" / arm / "resume.json"

    def keep_resumable(self, arm: str, data: dict[str, Any], inputs: dict[str, str]) -> str | None:
        """Leave `lora/checkpoint-*` for Axolotl's auto-resume only when a killed training of
        these very settings and inputs made them; remove any other (a checkpoint of other steps
        or of rows since rebuilt would be resumed as if it were this training's), then record
        what the training about to start is made from. Returns the checkpoint it resumes."""
        lora, record = Path(data["output_dir"]), self.resume_record(arm)
        made_from = {"config": _settings(data), "inputs": inputs}
        made_from = json.loads(json.dumps(made_from))  # as the record reads back
        same = record.is_file() and json.loads(record.read_text()) == made_from
        for folder in checkpoints(lora):
            # Axolotl resumes from the highest step: a checkpoint cut short by the kill (the
            # Trainer writes its trainer_state.json last) or of other settings must go
            if not (same and checkpoint_complete(folder)):
                shutil.rmtree(folder)
        resumed_from = found[-1].name if (found := checkpoints(lora)) else None
        if resumed_from:
            print(f"  resuming train_{arm} from {resumed_from}", flush=True)
        record.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, made_from, indent=1)
        return resumed_from

    def train_inputs(self, arm: str) -> list[Path]:
        return [Path(d["path"]) for d in self.train_datasets(arm)]

    def inputs_digest(self, arm: str) -> dict[str, str]:
        return {str(f): file_sha256(f) for f in self.train_inputs(arm)}

    def inputs_record(self, arm: str) -> Path:
        return self.work / "train" / arm / "inputs.sha256.json"

    def stale(self, lora: Path, arm: str) -> bool:
        """True when the adapter was trained on other data than its inputs hold now.

        Compared by content (sha256 recorded after training), so a rebuild that reproduces the
        same rows (the SFT rows when only analysis k changed) keeps the adapter; an adapter
        without a record falls back to file times.
        """
        made = lora / "adapter_model.safetensors"
        if not made.exists():
            return False
        record = self.inputs_record(arm)
        if record.exists():
            return json.loads(record.read_text()) != self.inputs_digest(arm)
        files = self.train_inputs(arm)
        return any(f.stat().st_mtime > made.stat().st_mtime for f in files)

    # -- evaluation --------------------------------------------------------------------------
    def eval_config(self, arm: str, base_model: str, adapter: Path | None, style: str) -> dict:
        s = self.size
        data = self.data
        sets: dict[str, Any] = {
            "discrimination": {
                "source": {"kind": "pku_saferlhf", "path": str(data / "pku_heldout.jsonl")}
            },
            # the probe's cut is fitted on the training prompts' labelled answers, never on
            # the held-out ones (the evaluation refuses an overlap)
            "calibration": {
                "source": {"kind": "pku_saferlhf", "path": str(data / "pku_train.jsonl")}
            },
        }
        if s.calibration_n is not None:
            sets["calibration"]["limit"] = s.calibration_n
        if style == "analysis":  # the full run; the alpaca-style run only re-probes
            sets.update(
                harmful={
                    "source": {
                        "kind": "jsonl",
                        "path": str(data / "redteam_heldout.jsonl"),
                        "fields": {"instruction": "instruction"},
                        "prompt_kind": "harmful",
                    },
                    "limit": s.eval_harmful,
                },
                helpful={
                    "source": {"kind": "alpaca", "path": str(data / "alpaca_heldout.jsonl")},
                    "limit": s.eval_helpful,
                },
                goal_hijacking={
                    "from_instructions": {
                        "source": {"kind": "alpaca", "path": str(data / "alpaca_heldout.jsonl")},
                        "limit": s.eval_hijack,
                    }
                },
                over_refusal={
                    "source": {
                        "kind": "xstest",
                        "path": str(data / "xstest_prompts.csv"),
                        "label": "safe",
                    },
                    "limit": s.eval_xstest,
                },
            )
        return {
            "name": LABELS[arm],
            "output_dir": str(eval_paths(self.work, arm, style)[1]),
            "model": {
                "kind": "transformers",
                "model": base_model,
                "adapter": str(adapter) if adapter else None,
                "device": "cpu",
                "batch_size": 32,
            },
            "prompt_format": "alpaca",
            "modes": ["plain", "harmless_guided"] if style == "analysis" else ["plain"],
            "sampling": {"max_new_tokens": s.eval_new_tokens, "temperature": 0.0},
            "bootstrap": {"samples": 2000, "confidence": 0.95, "seed": 0},
            "probe_style": style,
            "probe_threshold": "calibrated",  # accuracy at 0 is recomputed from the margins
            "prompt_sets": sets,
            "judges": [{"kind": "refusal"}],
            "primary_judge": "refusal",
        }

    def evaluation_done(self, arm: str, base_model: str, adapter: Path | None, style: str) -> bool:
        """The evaluation run is there, made from this run's config and after the adapter it
        evaluated was last trained (the resume rule of `evaluate`)."""
        path, out = eval_paths(self.work, arm, style)
        data = self.eval_config(arm, base_model, adapter, style)
        return evaluation_fresh(out / "results.json", path, data, adapter)

    def evaluate(self, arm: str, base_model: str, adapter: Path | None, style: str) -> Path:
        path, out = eval_paths(self.work, arm, style)
        data = self.eval_config(arm, base_model, adapter, style)
        if not self.evaluation_done(arm, base_model, adapter, style):
            write_yaml(path, data)
            cmd = [
                self.py,
                "-m",
                "axolotl_mistake.evaluate",
                "--config",
                str(path),
                "--overwrite",
            ]
            self.run(f"eval_{style}_{arm}", cmd)
        return out

    def current(self, arm: str, base_model: str) -> bool:
        """Whether the arm's adapter and both its evaluations in this folder were made with
        this run's settings (an arm an earlier run made with other steps or sizes is not)."""
        adapter = None
        if arm != "base":
            if not all(f.is_file() for f in self.train_inputs(arm)):
                return False
            # a build this run did not redo (its arm not in --arms) may hold rows made with
            # other settings (analyses k, tokens, ...) than this run's
            if not all(self.built(build) for build in builds_needed([arm])):
                return False
            if not self.trained(arm, base_model):
                return False
            adapter = self.work / "train" / arm / "lora"
        return all(
            self.evaluation_done(arm, base_model, adapter, style)
            for style in self.size.probe_styles
        )

    def evaluated(self, arm: str, style: str = "analysis") -> bool:
        return (eval_paths(self.work, arm, style)[1] / "results.json").exists()

    def compare(
        self,
        style: str,
        mode: str = "plain",
        arms: tuple[str, ...] = ARMS,
        name: str | None = None,
        paired_with: str = "sft",
    ) -> Path:
        out = self.work / "compare" / (name or f"{style}_{mode}")
        runs = [str(eval_paths(self.work, arm, style)[1]) for arm in arms]
        cmd = [
            self.py,
            "-m",
            "axolotl_mistake.evaluate",
            "compare",
            *runs,
            "--output",
            str(out),
            "--mode",
            mode,
        ]
        if paired_with in arms:  # each arm's difference from SFT-only on the same items, too
            cmd += ["--paired-with", str(eval_paths(self.work, paired_with, style)[1])]
        self.run(f"compare_{name or f'{style}_{mode}'}", cmd)
        return out


def previous_summary(work: Path) -> dict[str, Any]:
    """The summary.json an earlier run left in `work` ({} when there is none, or no object)."""
    try:
        summary = json.loads((work / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def previous_timings(previous: dict[str, Any]) -> dict[str, float]:
    """Step timings of earlier runs (`previous_summary`), so a resumed run's summary still says
    what each step cost (a rerun step's new time replaces its old one; `total` is the wall time
    of the last run that did any step, never that of a rerun that skipped every one)."""
    return previous.get("timings_s", {})


def partial_timings(previous: dict[str, Any], exp: Experiment) -> dict[str, str]:
    """The steps whose timing counts only the part after a checkpoint (the killed attempt's
    time before it is unknown), by the checkpoint they resumed from: this run's, and an earlier
    run's (`previous_summary`) for a step this run did not redo."""
    earlier = previous.get("timings_resumed_from", {})
    kept = {name: point for name, point in earlier.items() if name not in exp.timings}
    return {**kept, **exp.resumed}


def built_files(work: Path) -> dict[str, Any]:
    """Each build's file list, read from every manifest under `work/build`: this run's builds
    and the ones an earlier run left (a resumed run that builds only some arms, as the control
    arms build origin and anchored, must not drop the others from the summary)."""
    folders = sorted(path.parent for path in (work / "build").glob(f"*/{MANIFEST_NAME}"))
    manifests = {folder.name: read_manifest(folder) for folder in folders}
    return {name: m.to_json()["files"] for name, m in manifests.items() if m is not None}


def with_accuracy_at_zero(results: dict[str, Any], run: Path) -> dict[str, Any] | None:
    """A run's discrimination record plus `balanced_accuracy_at_0`: the balanced accuracy of
    the same held-out margins at the uncalibrated cut 0 (the threshold fixed before the first
    full run), recomputed from the run's pairs file with the run's own bootstrap settings."""
    disc = results.get("discrimination")
    if not disc:
        return disc
    from axolotl_mistake.evaluate.metrics import balanced_accuracy_estimate
    from axolotl_mistake.evaluate.results import bootstrap_settings

    pairs = pair_margins(run, disc["pairs_file"]).values()
    at_zero = balanced_accuracy_estimate(
        [harmful for harmful, _ in pairs],
        [margin > 0 for _, margin in pairs],
        **bootstrap_settings(results["config"]),
    )
    return {**disc, "balanced_accuracy_at_0": at_zero.model_dump()}


PAIRED_HEADLINE = ("harmless_rate", "helpful_nll")
"""Headline columns the summary also gives as each arm's difference from SFT-only, paired on
the same items: the harmless-rate goal ("≥ SFT-only") is decided by a handful of answers of 120,
and the NLL goal by a gap smaller than either mean's interval, which separate intervals cannot
show."""


def with_paired_gain_over_sft(work: Path, rows: dict[str, Any]) -> None:
    """Add each arm's difference from SFT-only, paired on the same items
    (`axolotl_mistake.evaluate.paired`), when SFT-only's run is there: `auc_minus_sft_paired` to
    its analysis-style discrimination (the goal "AUC >= SFT-only + 0.10" compares two AUCs of
    the same 108 pairs, whose separate intervals overlap more than their paired difference
    varies), and `<column>_minus_sft_paired` beside each column of `PAIRED_HEADLINE` in every
    inference mode of its headline (the NLL only when both runs kept their per-item NLLs)."""
    if not rows.get("sft"):
        return
    reference = eval_paths(work, "sft")[1]
    for arm, entry in rows.items():
        disc = entry.get("discrimination_analysis")
        if arm == "sft" or not disc:
            continue
        gain = paired_difference(eval_paths(work, arm)[1], reference, "discrimination_auc")
        if gain is not None:
            disc["auc_minus_sft_paired"] = gain.model_dump()
    with_paired_headline(work, rows, "sft", PAIRED_HEADLINE)


def with_nll_gap_to_matched_sft(work: Path, rows: dict[str, Any]) -> None:
    """Add `helpful_nll_minus_sft_matched_paired` to every inference mode of each arm's headline
    when the `sft_matched` run is there: the NLL goal's gap with the SFT rows the critiques
    displace at equal steps taken out (RESULTS.md, "Matched-exposure control")."""
    if rows.get("sft_matched"):
        with_paired_headline(work, rows, "sft_matched", ("helpful_nll",))


def with_paired_headline(
    work: Path, rows: dict[str, Any], reference_arm: str, columns: tuple[str, ...]
) -> None:
    """Add `<column>_minus_<reference_arm>_paired` beside each of `columns` in every inference
    mode of each other arm's headline: its difference from the reference arm's run on the same
    items; left out where either run kept nothing per item for it."""
    reference = eval_paths(work, reference_arm)[1]
    for arm, entry in rows.items():
        if arm == reference_arm or not entry:
            continue
        run = eval_paths(work, arm)[1]
        for mode, metrics in (entry.get("headline") or {}).items():
            for name in columns:
                found = paired_difference(run, reference, name, mode) if metrics else None
                if found is not None:
                    metrics[f"{name}_minus_{reference_arm}_paired"] = found.model_dump()


def summary_rows(
    work: Path,
    current: Callable[[str], bool] = lambda arm: True,
    styles: tuple[str, ...] = FULL.probe_styles,
) -> dict[str, Any]:
    """Per arm: the headline metrics (value, interval, n) of every evaluation, read back;
    only arms `current` accepts (made with this run's settings) and only the probe `styles`
    the run evaluates, so one summary never mixes results of different sizes. Each arm's AUC
    gain over SFT-only is added, paired."""
    rows: dict[str, Any] = {}
    for arm in ARMS + OPT_IN:
        entry: dict[str, Any] = {}
        if not current(arm):
            if arm in ARMS:
                rows[arm] = entry
            continue
        for style in styles:
            path = eval_paths(work, arm, style)[1] / "results.json"
            if not path.exists():
                continue
            results = json.loads(path.read_text())
            entry[f"discrimination_{style}"] = with_accuracy_at_zero(results, path.parent)
            if style == "analysis":
                entry["headline"] = results.get("headline")
        if entry or arm in ARMS:
            rows[arm] = entry
    with_paired_gain_over_sft(work, rows)
    with_nll_gap_to_matched_sft(work, rows)
    return rows


WORK_MARKER = ".axolotl-mistake-efficacy"
"""File this script leaves in its work folder: a later run may write there again."""


def claim_work_folder(work: Path, overwrite: bool) -> None:
    """Make `work` this script's folder, refusing one that holds someone else's files (it
    writes summary.json, goals.md, data/, logs/ there). A folder an earlier version of this
    script made (its data/split.json) counts as its own."""
    try:
        claim_folder(
            work,
            WORK_MARKER,
            who="efficacy_smollm2.py",
            field="--work",
            overwrite=overwrite,
            ours=(work / "data" / "split.json").is_file(),
        )
    except InputError as exc:
        raise SystemExit(f"error: {exc}") from None


def clear_prepared(folder: Path) -> None:
    """Remove the tokenised rows an earlier training left in `folder` (Axolotl's
    dataset_prepared_path: one folder per dataset hash and its lock file) and nothing else:
    a folder holding anything more is not Axolotl's, so the run stops instead."""
    if not folder.exists():
        return
    entries = list(folder.iterdir())
    foreign = [
        p.name
        for p in entries
        if p.name != "datasets_prep.lock"
        and not (p.is_dir() and not p.is_symlink() and _PREPARED_NAME.fullmatch(p.name))
    ]
    if foreign or folder.is_symlink():
        raise SystemExit(
            f"error: {folder} holds files Axolotl's dataset preparation did not write "
            f"({', '.join(sorted(foreign)[:3]) or 'a link'}); remove them or choose another --work"
        )
    shutil.rmtree(folder)


_PREPARED_NAME = re.compile(r"[0-9a-f]{32}")
"""Axolotl names each prepared dataset's folder by an md5 hex digest of its config."""

_CHECKPOINT_NAME = re.compile(r"checkpoint-[0-9]+")
"""The Trainer names each checkpoint folder by its step."""


def checkpoints(lora: Path) -> list[Path]:
    """The Trainer's checkpoint folders in `lora`, oldest step first."""
    if not lora.is_dir():
        return []
    found = [
        p
        for p in lora.iterdir()
        if p.is_dir() and not p.is_symlink() and _CHECKPOINT_NAME.fullmatch(p.name)
    ]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def checkpoint_complete(checkpoint: Path) -> bool:
    """The Trainer wrote this checkpoint to its end: its state file, written last, reads back."""
    try:
        return isinstance(json.loads((checkpoint / "trainer_state.json").read_text()), dict)
    except (OSError, ValueError):
        return False


def remove_checkpoints(lora: Path) -> None:
    """Remove the Trainer's checkpoint folders from `lora` (a finished adapter needs none, and
    one of other settings must not be resumed); its other files stay."""
    for folder in checkpoints(lora):
        shutil.rmtree(folder)


def is_goals_file(path: Path) -> bool:
    """True for a goals.md this script wrote (its first line is `render`'s)."""
    try:
        with path.open(encoding="utf-8") as fh:
            return fh.readline().startswith(GOALS_TITLE)
    except (OSError, UnicodeDecodeError):
        return False


def builds_needed(arms: list[str]) -> list[str]:
    """The datasets `arms` train on: the origin build holds the SFT rows every trained arm
    shares; an arm with analyses needs its own build (anchored_refusal: anchored's), and an arm of
    `MATCHED_TO` the build whose row counts set its steps. Nothing
    for the base model alone, which is only evaluated."""
    trained = [arm for arm in arms if arm != "base"]
    analyses = {ANALYSES.get(arm, MATCHED_TO.get(arm, "")) for arm in trained}
    return [
        b
        for b in ("origin", "paper", *ANCHORED_BUILDS)
        if trained and (b == "origin" or b in analyses)
    ]


def analysis_tables(
    group: tuple[str, ...], name: str, wanted: bool, paired_with: str = "sft"
) -> list[tuple[str, str, tuple[str, ...], str, bool, str]]:
    """A comparison table of `group` in the `analysis` style for each inference mode, each arm
    paired against `paired_with`; `wanted`: made by this run (else only kept or removed)."""
    return [
        ("analysis", mode, group, f"{name}_{mode}", wanted, paired_with)
        for mode in ("plain", "harmless_guided")
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="the small size (within 20 minutes; probes the `analysis` style only)",
    )
    ap.add_argument(
        "--work",
        default=None,
        help="output folder, relative to the current directory (default: the repository's "
        "outputs/efficacy_smollm2, or outputs/efficacy_smollm2_quick with --quick)",
    )
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a --work folder that holds files this script did not make",
    )
    ap.add_argument(
        "--shared",
        default=str(REPO.parent / "shared" / "data"),
        help="the shared public data folder (read only; default %(default)s)",
    )
    ap.add_argument("--threads", type=positive_int, default=2, help="OMP_NUM_THREADS of every step")
    ap.add_argument("--steps", type=positive_int, default=None, help="override the optimizer steps")
    ap.add_argument(
        "--helpful-n", type=positive_int, default=None, help="override the helpful Alpaca SFT rows"
    )
    ap.add_argument(
        "--arms",
        default=",".join(ARMS),
        help=f"comma-separated arms (default %(default)s; opt-in: {', '.join(OPT_IN)})",
    )
    ap.add_argument(
        "--train-seed",
        type=int,
        default=0,
        help=(
            "Axolotl `seed` of every arm's training (initial adapter weights, data order,"
            " dropout); the data stay the same"
        ),
    )
    ap.add_argument(
        "--build-seed",
        type=int,
        default=None,
        help=(
            "the builder's `seed` of every build (the helpful rows sampled, the critiques'"
            " sampling, the balanced pick; default: the recipe's); the split stays the same"
        ),
    )
    add_malloc_argument(ap)
    args = ap.parse_args(argv)
    size = QUICK if args.quick else FULL
    if args.steps is not None:
        size = replace(size, steps=args.steps)
    if args.helpful_n is not None:
        size = replace(size, helpful_n=args.helpful_n)
    default_work = REPO / (DEFAULT_WORK + ("_quick" if args.quick else ""))
    work = (Path(args.work).expanduser() if args.work else default_work).resolve()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not arms:
        ap.error(f"--arms is empty; choose from {', '.join(ARMS + OPT_IN)}")
    unknown = sorted(set(arms) - set(ARMS + OPT_IN))
    if unknown:
        ap.error(f"unknown arm(s) {unknown}; choose from {', '.join(ARMS + OPT_IN)}")
    shared = Path(args.shared).expanduser().resolve()
    claim_work_folder(work, args.overwrite)
    exp = Experiment(
        work,
        shared,
        size,
        str(args.threads),
        train_seed=args.train_seed,
        build_seed=args.build_seed,
        keep_freed_memory=not args.default_malloc,
    )
    started = time.perf_counter()

    split = split_shared(shared, exp.data)
    from axolotl_mistake.models import ensure_embedded_model

    base_model = str(ensure_embedded_model())
    for build in (b for b in builds_needed(arms) if b in LABEL_ARM_SPECS):  # before it reads them
        LABEL_ARM_SPECS[build].write_pairs(
            exp.data, exp.label_pairs_path(build), size.refusal_label_n
        )
    for arm in builds_needed(arms):
        exp.build(arm)
    if set(CONTROL_ARMS) & set(arms):  # same content = same file, so the adapters stay fresh
        write_refusal_rows(exp.data, exp.refusal_path, size.refusal_n)
    adapters: dict[str, Path | None] = {"base": None}
    for arm in ("sft", "paper", "origin", "anchored", *OPT_IN):
        if arm in arms:
            adapters[arm] = exp.train(arm, base_model)
    for arm in arms:
        for style in size.probe_styles:
            exp.evaluate(arm, base_model, adapters[arm], style)
    # arms made with this run's settings: the only ones a summary or comparison table holds
    made = {arm for arm in ARMS + OPT_IN if exp.current(arm, base_model)}
    control = ("sft", "anchored", *CONTROL_ARMS)
    # the PKU-only anchored arm and the label arms made at these settings (one may be run without
    # the others); with none, all of them, so that a table left by another run's settings is
    # removed
    label_arms = ("anchored_pku", *LABEL_ARMS)
    labels = ("sft", "anchored", *([a for a in label_arms if a in made] or label_arms))
    exposure = ("sft_matched", "sft", "paper", "origin", "anchored")
    tables = (
        [
            (style, mode, ARMS, f"{style}_{mode}", True, "sft")
            for style, mode in (
                ("analysis", "plain"),
                ("analysis", "harmless_guided"),
                ("alpaca", "plain"),
            )
        ]
        + analysis_tables(control, "refusal_control", bool(set(CONTROL_ARMS) & set(arms)))
        + analysis_tables(labels, "refusal_labels", bool(set(label_arms) & set(arms)))
        # every arm's difference from SFT-only at the anchored arm's SFT exposure
        + analysis_tables(exposure, "sft_exposure", "sft_matched" in arms, "sft_matched")
    )
    for style, mode, group, name, wanted, paired_with in tables:
        if set(group) <= made and style in size.probe_styles:
            if wanted:
                exp.compare(style, mode, group, name=name, paired_with=paired_with)
        elif is_compare_folder(work / "compare" / name):  # made with other settings
            shutil.rmtree(work / "compare" / name)
            print(
                f"removed {work / 'compare' / name}: not every arm of it is at these settings, "
                "or its probe style is not one this run evaluates"
            )
    # a rerun that only remakes the comparison tables and the summary keeps the last total
    if any(not step.startswith("compare_") for step in exp.timings):
        exp.timings["total"] = round(time.perf_counter() - started, 1)

    previous = previous_summary(work)  # read once, before this run's summary replaces it
    summary = {
        "size": "quick" if args.quick else "full",
        "settings": asdict(size),
        "train_seed": args.train_seed,
        "build_seed": args.build_seed,
        # how the steps allocated: it changes their speed and peak memory, not their results
        "malloc_env": exp.malloc_env(),
        "train_options": exp.train_options,
        "split": split,
        "builds": built_files(work),
        "timings_s": {**previous_timings(previous), **exp.timings},
        "timings_resumed_from": partial_timings(previous, exp),
        "commands": exp.commands,
        "arms": summary_rows(work, lambda arm: arm in made, size.probe_styles),
    }
    # evaluated in this folder, but with other settings than this run's
    left_out = [a for a in ARMS + OPT_IN if exp.evaluated(a) and not summary["arms"].get(a)]
    if left_out:
        summary["arms_other_settings"] = sorted(left_out)
    write_json_atomic(work / "summary.json", summary)
    goals_md = work / "goals.md"
    if all(summary["arms"].get(arm) for arm in ARMS):
        goals = render(check(summary["arms"]))
        write_atomic(goals_md, goals)
        print(goals)
    elif is_goals_file(goals_md):  # its arms no longer all match this run's settings
        goals_md.unlink()
        print(f"removed {goals_md}: not every arm of the goals has results at these settings")
    if left_out:
        print(f"left out of the summary (made with other settings): {', '.join(sorted(left_out))}")
    compare_md = work / "compare" / "analysis_plain" / "compare.md"
    if compare_md.exists():
        print(compare_md.read_text())
    print(json.dumps(exp.timings, indent=2))
    print(f"summary: {work / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
