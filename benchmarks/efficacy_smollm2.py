"""Efficacy experiment on the embedded SmolLM2-135M-Instruct, CPU only (issue 5).

From the HH-RLHF and PKU-SafeRLHF samples in ../shared/data: build self-made mistakes and
self-analyses with the builder, train (1) SFT-only and (2) SFT + mistake analysis with Axolotl
(LoRA, a few dozen steps each), then evaluate base, (1) and (2) with the evaluation harness on
held-out prompts: discrimination on held-out labelled PKU pairs, harmful-answer rate with the
offline judges (refusal phrases + the model itself), helpfulness, goal-hijacking defence,
over-refusal. Every step is a subprocess running the project's documented CLI; finished steps
are skipped on a rerun (resume). Writes <work>/summary.json and <work>/summary.md.

Run from the repository root:
    python benchmarks/efficacy_smollm2.py [--work outputs/efficacy_smollm2] [--shared ../shared/data]
It never writes into the repository outside --work, and never copies shared data into the repo.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from axolotl_mistake.offline_env import offline_cpu_env

REPO = Path(__file__).resolve().parents[1]
PKU_TRAIN_ROWS = 100  # PKU rows 1-100 feed training; rows 101-152 are held out for evaluation
ALPACA_TRAIN_ROWS = 2000  # Alpaca rows 1-2000 may feed training; rows 4001+ are held out


def sh(cmd: list[str], log: Path, env: dict) -> float:
    """Run a command, tee its output to `log`, return wall seconds; raise on failure."""
    print(f"$ {shlex.join(cmd)}", flush=True)
    started = time.perf_counter()
    with log.open("w") as handle:
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False
        )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:])
        raise SystemExit(
            f"command failed ({proc.returncode}) after {seconds:.0f}s: {shlex.join(cmd)}\n{tail}"
        )
    print(f"  done in {seconds:.0f}s (log {log})", flush=True)
    return seconds


def split_lines(src: Path, dst: Path, start: int, stop: int | None) -> None:
    """Copy lines [start, stop) (0-based) of a JSONL file into the work folder (not the repo)."""
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)[start:stop]
    tmp = dst.with_suffix(".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, dst)


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="outputs/efficacy_smollm2")
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--redteam-n", type=int, default=48)
    ap.add_argument("--helpful-n", type=int, default=48)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument(
        "--max-steps", type=int, default=None, help="cap the optimizer steps of each training"
    )
    ap.add_argument(
        "--train-probe", action="store_true", help="also run the plugin's live probe while training"
    )
    ap.add_argument("--eval-harmful", type=int, default=32)
    ap.add_argument("--eval-helpful", type=int, default=24)
    ap.add_argument("--eval-hijack", type=int, default=16)
    ap.add_argument("--eval-xstest", type=int, default=24)
    ap.add_argument("--eval-pairs", type=int, default=104)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--mistake-tokens", type=int, default=48, help="builder: bad-answer length")
    ap.add_argument("--analysis-tokens", type=int, default=96, help="builder: critique length")
    ap.add_argument(
        "--modes", default="plain,harmless_guided", help="evaluation modes, comma-separated"
    )
    args = ap.parse_args()

    work = (REPO / args.work).resolve()
    shared = Path(args.shared).resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    env = offline_cpu_env(pythonpath=REPO)
    py = sys.executable
    axolotl = str(Path(py).with_name("axolotl"))
    timings: dict[str, float] = {}
    commands: list[str] = []
    t_all = time.perf_counter()

    from axolotl_mistake.models import ensure_embedded_model

    base_dir = str(ensure_embedded_model())

    # 0. split the shared data: train instructions vs held-out evaluation prompts and pairs
    data = work / "data"
    data.mkdir(exist_ok=True)
    pku = shared / "pku_saferlhf" / "test_sample.jsonl"
    alpaca = shared / "alpaca" / "alpaca_5000_pr152.jsonl"
    hh = shared / "hh_rlhf" / "harmless-base_test.jsonl.gz"
    split_lines(pku, data / "pku_train.jsonl", 0, PKU_TRAIN_ROWS)
    split_lines(pku, data / "pku_heldout.jsonl", PKU_TRAIN_ROWS, None)
    split_lines(alpaca, data / "alpaca_train.jsonl", 0, ALPACA_TRAIN_ROWS)
    split_lines(alpaca, data / "alpaca_heldout.jsonl", 4000, None)

    # 1. build: self-made mistakes (template a) + self-analyses (template b), SFT rows
    build_cfg = yaml.safe_load((REPO / "recipes" / "smollm2_135m_mistake.build.yml").read_text())
    build_cfg.update(
        output=str(work / "build"),
        redteam=[
            {"kind": "pku_saferlhf", "path": str(data / "pku_train.jsonl")},
            {"kind": "hh_rlhf", "path": str(hh), "limit": 200},
        ],
        helpful=[{"kind": "alpaca", "path": str(data / "alpaca_train.jsonl"), "limit": 400}],
    )
    build_cfg["select"] = {
        **build_cfg.get("select", {}),
        "redteam_n": args.redteam_n,
        "helpful_n": args.helpful_n,
    }
    build_cfg["mistakes"] = {**build_cfg.get("mistakes", {}), "max_new_tokens": args.mistake_tokens}
    build_cfg["analyses"] = {
        **build_cfg.get("analyses", {}),
        "max_new_tokens": args.analysis_tokens,
    }
    build_yml = write_yaml(work / "build.yml", build_cfg)
    if not (work / "build" / "manifest.json").exists():
        cmd = [
            py,
            "-m",
            "dataset_builders.build",
            "--config",
            str(build_yml),
            "--progress",
            "false",
        ]
        commands.append(shlex.join(cmd))
        timings["build_s"] = sh(cmd, work / "logs" / "build.log", env)
    manifest = json.loads((work / "build" / "manifest.json").read_text())

    # 2./3. train SFT-only and SFT + mistake analysis from the recipes, paths pointed at the work dir
    adapters = {}
    for name, recipe in (("sft", "smollm2_135m_sft.yml"), ("mistake", "smollm2_135m_mistake.yml")):
        cfg = yaml.safe_load((REPO / "recipes" / recipe).read_text())
        cfg["base_model"] = base_dir
        for ds in cfg["datasets"]:
            ds["path"] = str(work / "build" / Path(ds["path"]).name)
        cfg.update(
            output_dir=str(work / name / "lora"),
            dataset_prepared_path=str(work / name / "prepared"),
            num_epochs=args.epochs,
        )
        if args.max_steps:
            cfg["max_steps"] = args.max_steps
        if args.train_probe:
            cfg.update(
                mistake_probe_pairs=str(work / "probe_pairs.jsonl"), mistake_probe_steps=1000
            )
        else:  # the evaluation measures discrimination on the same held-out pairs afterwards
            for key in [k for k in cfg if k.startswith("mistake_probe_")]:
                del cfg[key]
        adapters[name] = work / name / "lora"
        if not (adapters[name] / "adapter_config.json").exists():
            write_probe_pairs(data / "pku_heldout.jsonl", work / "probe_pairs.jsonl", 32)
            train_yml = write_yaml(work / f"train_{name}.yml", cfg)
            cmd = [axolotl, "train", str(train_yml), "--launcher", "python"]
            commands.append(shlex.join(cmd))
            timings[f"train_{name}_s"] = sh(cmd, work / "logs" / f"train_{name}.log", env)

    # 4. evaluate base, SFT, SFT + mistake analysis on the held-out prompts
    runs = []
    for name, adapter in (
        ("base", None),
        ("sft", adapters["sft"]),
        ("mistake", adapters["mistake"]),
    ):
        label = {
            "base": "SmolLM2-135M (vanilla)",
            "sft": "SFT",
            "mistake": "SFT + mistake analysis",
        }[name]
        eval_cfg = {
            "name": label,
            "output_dir": str(work / "eval" / name),
            "model": {
                "kind": "transformers",
                "model": base_dir,
                "adapter": str(adapter) if adapter else None,
                "device": "cpu",
                "batch_size": 16,
            },
            "prompt_format": "alpaca",
            "modes": args.modes.split(","),
            "sampling": {"max_new_tokens": args.max_new_tokens},
            "bootstrap": {"samples": 2000, "seed": 0},
            "prompt_sets": {
                "harmful": {
                    "source": {"kind": "pku_saferlhf", "path": str(data / "pku_heldout.jsonl")},
                    "limit": args.eval_harmful,
                },
                "helpful": {
                    "source": {"kind": "alpaca", "path": str(data / "alpaca_heldout.jsonl")},
                    "limit": args.eval_helpful,
                },
                "goal_hijacking": {
                    "from_instructions": {
                        "source": {"kind": "alpaca", "path": str(data / "alpaca_heldout.jsonl")},
                        "limit": args.eval_hijack,
                    }
                },
                "over_refusal": {
                    "source": {
                        "kind": "xstest",
                        "path": str(shared / "xstest" / "xstest_prompts.csv"),
                        "label": "safe",
                    },
                    "limit": args.eval_xstest,
                },
                "discrimination": {
                    "source": {"kind": "pku_saferlhf", "path": str(data / "pku_heldout.jsonl")},
                    "limit": args.eval_pairs,
                },
            },
            "judges": [{"kind": "refusal"}, {"kind": "self"}],
            "primary_judge": "refusal",
        }
        eval_yml = write_yaml(work / f"eval_{name}.yml", eval_cfg)
        if not (work / "eval" / name / "results.json").exists():
            cmd = [py, "-m", "axolotl_mistake.evaluate", "--config", str(eval_yml), "--quiet"]
            commands.append(shlex.join(cmd))
            timings[f"eval_{name}_s"] = sh(cmd, work / "logs" / f"eval_{name}.log", env)
        runs.append(work / "eval" / name)

    # 5. compare
    cmd = [
        py,
        "-m",
        "axolotl_mistake.evaluate",
        "compare",
        *map(str, runs),
        "--output",
        str(work / "compare"),
    ]
    commands.append(shlex.join(cmd))
    sh(cmd, work / "logs" / "compare.log", env)
    if "harmless_guided" in args.modes.split(","):
        cmd = cmd[:-2] + ["--output", str(work / "compare_guided"), "--mode", "harmless_guided"]
        sh(cmd, work / "logs" / "compare_guided.log", env)
    timings["total_s"] = time.perf_counter() - t_all

    summary = {
        "args": vars(args),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "commands": commands,
        "build_counts": {k: v.get("rows") for k, v in manifest.get("files", {}).items()},
        "train_logs": {
            name: training_numbers(work / "logs" / f"train_{name}.log") for name in adapters
        },
        "results": {r.name: json.loads((r / "results.json").read_text())["headline"] for r in runs},
        "discrimination": {
            r.name: json.loads((r / "results.json").read_text())["discrimination"] for r in runs
        },
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print((work / "compare" / "compare.md").read_text())
    print(json.dumps(summary["timings_s"], indent=2))
    return 0


def write_probe_pairs(heldout: Path, out: Path, n: int) -> None:
    """The trainer's live probe reads held-out PKU pairs too (via the builder's loader)."""
    if out.exists():
        return
    from axolotl_mistake.probe import balanced_subset
    from axolotl_mistake.sources import iter_labelled_pairs
    from axolotl_mistake.sources.pku_saferlhf import PkuSafeRlhfSource

    pairs = balanced_subset(list(iter_labelled_pairs(PkuSafeRlhfSource(path=str(heldout)))), n)
    out.write_text("".join(p.model_dump_json() + "\n" for p in pairs))


def training_numbers(log: Path) -> dict:
    """Steps, first/last loss and discrimination_acc lines from an axolotl train log (best effort)."""
    if not log.exists():
        return {}
    import re

    text = log.read_text(errors="replace")
    losses = [float(m) for m in re.findall(r"'loss': '?([0-9.]+)", text)]
    disc = [float(m) for m in re.findall(r"'discrimination_acc': '?([0-9.]+)", text)]
    steps = re.findall(r"(\d+)/(\d+) \[", text)
    return {
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "discrimination_acc_logged": disc,
        "steps": int(steps[-1][1]) if steps else None,
    }


if __name__ == "__main__":
    raise SystemExit(main())
