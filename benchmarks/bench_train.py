"""Training throughput with and without the plugin, and the probe's cost per evaluation.

Runs the CPU recipe (recipes/smollm2_135m_mistake.yml) with `axolotl train` in subprocesses,
alternating plugin on (probe disabled) and plugin off, on the same data, model, seed and step
count; tokens/s = Axolotl's `tokens/total` / `train_runtime` of each run. Prints the median
ratio (target >= 0.95). Then times `DiscriminationProbe.evaluate` on N pairs in this process.
Never writes outside its work folder (a temp dir unless --workdir).

    python benchmarks/bench_train.py --steps 10 --repeats 2 --probe-pairs 32
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from cli_types import check_json_destination, claim_work_folder_or_exit, positive_int, target_status

from axolotl_mistake.fileio import write_atomic, write_json_atomic
from axolotl_mistake.offline_env import offline_cpu_env

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "smollm2_135m_mistake.yml"
DATA_FILES = ("mistake_analysis.jsonl", "sft_harmless.jsonl", "sft_helpful.jsonl")


def cpu_env() -> dict[str, str]:
    return offline_cpu_env(threads=os.environ.get("OMP_NUM_THREADS", "2"), pythonpath=REPO)


def builtin_data(folder: Path) -> Path:
    """Throughput-only stand-in data from the shipped builtin sets (when no build exists).

    Analysis rows pair each harmful probe answer (context) with the harmless answer to the same
    question as the 'critique' text: the token counts are realistic, the content is not a
    critique. Use a real build (--data) for anything but timing.
    """
    from axolotl_mistake.sources.builtin import DATA_DIR

    folder.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in (DATA_DIR / "probe_pairs.jsonl").read_text().splitlines() if x]
    harmless = {r["question"]: r["answer"] for r in rows if not r["harmful"]}
    analysis = [
        {
            "instruction": r["question"],
            "input": "",
            "bad": r["answer"],
            "critique": "The answer is harmful. " + harmless.get(r["question"], ""),
        }
        for r in rows
        if r["harmful"]
    ]
    write_atomic(folder / "mistake_analysis.jsonl", "".join(json.dumps(r) + "\n" for r in analysis))
    for name, src in (
        ("sft_harmless.jsonl", "redteam.jsonl"),
        ("sft_helpful.jsonl", "helpful.jsonl"),
    ):
        write_atomic(folder / name, (DATA_DIR / src).read_text())
    return folder


def make_config(workdir: Path, data: Path, base_model: str, steps: int, plugin: bool) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    for ds in cfg["datasets"]:
        ds["path"] = str(data / Path(ds["path"]).name)
    tag = "plugin" if plugin else "noplugin"
    cfg.update(
        base_model=base_model,
        dataset_prepared_path=str(workdir / "prepared"),  # shared: same tokenised data
        output_dir=str(workdir / f"out_{tag}"),
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
    )
    if plugin:
        cfg["mistake_probe"] = False  # the plugin on, its probe off: pure overhead
    else:
        cfg.pop("plugins", None)
        for key in [k for k in cfg if k.startswith("mistake_")]:
            cfg.pop(key)
    path = workdir / f"{tag}.yml"
    write_atomic(path, yaml.safe_dump(cfg, sort_keys=False))
    return path


def _last_dict_with(log: str, key: str) -> dict:
    found = [m for m in re.findall(r"\{[^{}]*\}", log) if f"'{key}'" in m]
    if not found:
        raise RuntimeError(f"no '{key}' in the training log")
    return ast.literal_eval(found[-1])


def run_once(config: Path, workdir: Path) -> dict:
    axolotl = Path(sys.executable).with_name("axolotl")
    started = time.perf_counter()
    proc = subprocess.run(
        [str(axolotl), "train", str(config), "--launcher", "python"],
        cwd=workdir,
        env=cpu_env(),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"axolotl train failed ({config.name}):\n{log[-3000:]}")
    runtime = float(_last_dict_with(log, "train_runtime")["train_runtime"])
    tokens = float(_last_dict_with(log, "tokens/total")["tokens/total"])
    loaded = "Plugin loaded successfully: axolotl_mistake.MistakeAnalysisPlugin" in log
    return {
        "tokens": tokens,
        "runtime_s": runtime,
        "tokens_per_s": tokens / runtime,
        "wall_s": wall,
        "plugin_loaded": loaded,
    }


def probe_cost(base_model: str, pairs: int, batch_size: int, repeats: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axolotl_mistake.plugin import builtin_probe_pairs
    from axolotl_mistake.probe import DiscriminationProbe, load_pairs

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model = AutoModelForCausalLM.from_pretrained(base_model, attn_implementation="sdpa")
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    probe = DiscriminationProbe(load_pairs(builtin_probe_pairs()))
    probe.evaluate(model, tokenizer, batch_size=batch_size, max_pairs=2)  # warm-up
    times, result = [], None
    for _ in range(repeats):
        result = probe.evaluate(model, tokenizer, batch_size=batch_size, max_pairs=pairs)
        times.append(result.seconds)
    return {
        "pairs": result.n,
        "batch_size": batch_size,
        "seconds_median": statistics.median(times),
        "seconds_all": times,
        "accuracy": result.accuracy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=positive_int, default=10, help="optimizer steps per run")
    parser.add_argument("--repeats", type=positive_int, default=2, help="on/off pairs of runs")
    parser.add_argument(
        "--data", type=Path, help="a build output folder (default: builtin stand-in)"
    )
    parser.add_argument("--base-model", help="model folder (default: the embedded model)")
    parser.add_argument("--probe-pairs", type=positive_int, default=32)
    parser.add_argument("--probe-batch-size", type=positive_int, default=8)
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the runs' configs, prepared data and adapters here (default: a temporary "
        "folder, removed afterwards)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    check_json_destination(parser, args.json)
    if args.workdir is not None:
        claim_workdir(parser, args.workdir)
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as temp:
        return run(args, Path(temp))


WORKDIR_MARKER = ".axolotl-mistake-bench-train"
"""Left in a --workdir this script made: a later run may write its files there again."""


def claim_workdir(parser: argparse.ArgumentParser, workdir: Path) -> None:
    """Make `workdir` this script's, refusing a file or a non-empty folder it did not make
    (it writes data/, configs and adapters there, replacing same-named files)."""
    claim_work_folder_or_exit(
        parser, workdir, WORKDIR_MARKER, who="bench_train.py", field="--workdir"
    )


def run(args: argparse.Namespace, workdir: Path) -> int:
    """The timed runs in `workdir`; the exit status says whether the target was met."""
    from axolotl_mistake.models import ensure_embedded_model

    base_model = args.base_model or str(ensure_embedded_model())
    data = args.data or builtin_data(workdir / "data")
    missing = [f for f in DATA_FILES if not (data / f).is_file()]
    if missing:
        print(f"error: {data} lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    on_cfg = make_config(workdir, data, base_model, args.steps, plugin=True)
    off_cfg = make_config(workdir, data, base_model, args.steps, plugin=False)
    warm = make_config(workdir / "warmup", data, base_model, 1, plugin=False)
    cfg = yaml.safe_load(warm.read_text())
    cfg["dataset_prepared_path"] = str(workdir / "prepared")
    write_atomic(warm, yaml.safe_dump(cfg, sort_keys=False))
    run_once(warm, workdir)  # warm-up: one step; tokenises the data into the shared prepared dir
    runs: dict[str, list[dict]] = {"plugin": [], "noplugin": []}
    for i in range(args.repeats):
        order = [("plugin", on_cfg), ("noplugin", off_cfg)]
        for tag, cfg in order if i % 2 == 0 else order[::-1]:
            result = run_once(cfg, workdir)
            runs[tag].append(result)
            print(
                f"run {i} {tag:9s} {result['tokens_per_s']:8.1f} tok/s "
                f"({result['tokens']:.0f} tokens in {result['runtime_s']:.1f} s)",
                flush=True,
            )
    if not all(r["plugin_loaded"] for r in runs["plugin"]):
        print("error: the plugin did not load in the plugin runs", file=sys.stderr)
        return 1
    on = statistics.median(r["tokens_per_s"] for r in runs["plugin"])
    off = statistics.median(r["tokens_per_s"] for r in runs["noplugin"])
    probe = probe_cost(base_model, args.probe_pairs, args.probe_batch_size, repeats=2)
    summary = {
        "steps": args.steps,
        "repeats": args.repeats,
        "data": str(data),
        "tokens_per_s_plugin": on,
        "tokens_per_s_noplugin": off,
        "ratio": on / off,
        "target_ratio": 0.95,
        "runs": runs,
        "probe": probe,
    }
    print(
        f"tokens/s with plugin (probe off): {on:.1f}   without plugin: {off:.1f}   "
        f"ratio: {on / off:.3f} (target >= 0.95)"
    )
    print(
        f"probe cost per evaluation: {probe['seconds_median']:.2f} s for {probe['pairs']} pairs "
        f"(batch {probe['batch_size']}), {probe['seconds_median'] / probe['pairs'] * 1000:.0f} ms/pair"
    )
    if args.json:
        write_json_atomic(args.json, summary)
    return target_status(on / off >= 0.95, f"ratio {on / off:.3f} < 0.95")


if __name__ == "__main__":
    raise SystemExit(main())
