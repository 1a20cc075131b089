"""Check the log of an `axolotl preprocess` / `axolotl train` run of a recipe with the plugin.

Used by `.ci/axolotl_latest.sh` (the newest Axolotl, on CPU) and `benchmarks/gpu/gpu_check.py`
(the same train on the GPU machine). Standard library + PyYAML only.

    python .ci/axolotl_log_check.py preprocess --log LOG --recipe R.yml --workdir DIR
    python .ci/axolotl_log_check.py train --log LOG --recipe R.yml --max-steps 2 --output-dir OUT

Prints one line per problem and exits 1 if there is any, else prints a summary and exits 0.

What `train` asserts:
- the plugin loaded (Axolotl only logs a plugin that failed to import) and no plugin failed;
- `discrimination_acc` was logged exactly once per probe run: the probe runs at the distinct
  steps the recipe's `mistake_probe_*` keys ask for (start, every N steps, end), so two probe
  callbacks (the 0.21 double registration) would log it twice as often;
- the adapter was saved (`adapter_config.json` and `adapter_model.safetensors` in the output
  folder).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PLUGIN_LOADED = re.compile(r"Plugin loaded successfully: axolotl_mistake\b")
FATAL = (
    ("Failed to load plugin", "a plugin failed to load"),
    ("duplicate base class", "the plugin's args class was merged twice (duplicate base class)"),
)
ACC = re.compile(r"""['"]discrimination_acc['"]\s*:""")


def probe_steps(recipe: dict, max_steps: int) -> list[int]:
    """The distinct global steps at which the probe callback runs for `max_steps` steps."""
    if recipe.get("mistake_probe") is False or not recipe.get("mistake_probe_pairs"):
        return []
    steps: set[int] = set()
    if recipe.get("mistake_probe_at_start"):
        steps.add(0)
    every = recipe.get("mistake_probe_steps")
    if every:
        steps.update(range(int(every), max_steps + 1, int(every)))
    if recipe.get("mistake_probe_at_end", True):
        steps.add(max_steps)
    return sorted(steps)


def _common(log: str) -> list[str]:
    problems = [why for marker, why in FATAL if marker in log]
    if not PLUGIN_LOADED.search(log):
        problems.append(
            "no 'Plugin loaded successfully: axolotl_mistake...' line: plugin not loaded"
        )
    return problems


def check_preprocess(log: str, recipe: dict, workdir: Path) -> list[str]:
    """Problems of a preprocess log; the prepared dataset must exist under `workdir`."""
    problems = _common(log)
    prepared = workdir / recipe.get("dataset_prepared_path", "last_run_prepared")
    if not prepared.is_dir() or not any(p.is_dir() for p in prepared.iterdir()):
        problems.append(f"no prepared dataset written under {prepared}")
    if "mistake_probe_pairs" in recipe and '"mistake_probe_pairs"' not in log:
        problems.append("the resolved config lacks mistake_probe_pairs: plugin args not merged")
    return problems


def check_train(log: str, recipe: dict, max_steps: int, output_dir: Path) -> list[str]:
    """Problems of a train log (see the module docstring)."""
    problems = _common(log)
    expected = probe_steps(recipe, max_steps)
    logged = len(ACC.findall(log))
    if logged != len(expected):
        problems.append(
            f"discrimination_acc logged {logged} times, expected {len(expected)} "
            f"(one per probe run, at steps {expected})"
            + ("; twice as many means two probe callbacks" if logged == 2 * len(expected) else "")
        )
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (output_dir / name).is_file():
            problems.append(f"adapter not saved: {output_dir / name} missing")
    return problems


def main(argv: list[str] | None = None) -> int:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    pre = sub.add_parser("preprocess")
    pre.add_argument("--workdir", type=Path, required=True, help="the run's working directory")
    train = sub.add_parser("train")
    train.add_argument("--max-steps", type=int, required=True)
    train.add_argument("--output-dir", type=Path, required=True)
    for p in (pre, train):
        p.add_argument("--log", type=Path, required=True)
        p.add_argument("--recipe", type=Path, required=True)
    args = parser.parse_args(argv)

    log = args.log.read_text(encoding="utf-8", errors="replace")
    recipe = yaml.safe_load(args.recipe.read_text(encoding="utf-8"))
    if args.what == "preprocess":
        problems = check_preprocess(log, recipe, args.workdir)
        summary = f"preprocess of {args.recipe.name}: plugin loaded, dataset prepared"
    else:
        problems = check_train(log, recipe, args.max_steps, args.output_dir)
        steps = probe_steps(recipe, args.max_steps)
        summary = (
            f"train of {args.recipe.name}: discrimination_acc logged once per probe run "
            f"(steps {steps}), adapter saved in {args.output_dir}"
        )
    for problem in problems:
        print(f"FAIL ({args.log.name}): {problem}", file=sys.stderr)
    if not problems:
        print(f"ok: {summary}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
