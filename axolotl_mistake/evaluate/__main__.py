"""CLI: `python -m axolotl_mistake.evaluate --config eval.yml` and `... compare RUN... --output DIR`.

Bad input (config, prompt files, results files) is reported as `error: file:line, field: message`
with exit code 2 before any output is written. Never prints secrets.
"""

from __future__ import annotations

import argparse
import logging
import sys

USAGE = """\
python -m axolotl_mistake.evaluate --config eval.yml [--quiet]
python -m axolotl_mistake.evaluate compare RUN_DIR [RUN_DIR ...] --output DIR [--mode plain] [--judge NAME]"""


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m axolotl_mistake.evaluate",
        usage=USAGE,
        description="Evaluate a model: harmlessness, helpfulness, discrimination, goal-hijacking "
        "defence and over-refusal, with bootstrap intervals; writes results.json, report.md and charts.",
    )
    p.add_argument(
        "--config", required=True, help="eval.yml (see axolotl_mistake/evaluate/README.md)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m axolotl_mistake.evaluate compare",
        description="Side-by-side table (paper layout) and chart of several evaluation runs.",
    )
    p.add_argument("runs", nargs="+", help="run folders (or their results.json)")
    p.add_argument(
        "--output", required=True, help="folder for compare.md, compare.json, compare.png"
    )
    p.add_argument("--mode", default="plain", help="plain or harmless_guided (default plain)")
    p.add_argument(
        "--judge", default=None, help="judge label to read (default: each run's headline judge)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from axolotl_mistake.errors import InputError

    try:
        if argv and argv[0] == "compare":
            args = _compare_parser().parse_args(argv[1:])
            from axolotl_mistake.evaluate.compare import compare

            table = compare(args.runs, args.output, mode=args.mode, judge=args.judge)
            print(
                f"wrote {args.output}/compare.md, compare.json, compare.png ({len(table['rows'])} runs)"
            )
            return 0
        args = _run_parser().parse_args(argv)
        from axolotl_mistake.evaluate.config import load_config
        from axolotl_mistake.evaluate.runner import run

        cfg = load_config(args.config)
        results = run(cfg, progress=not args.quiet)
        print(f"wrote {cfg.output_dir}/results.json, report.md, {', '.join(results['charts'])}")
        for mode in results["modes"]:
            row = results["headline"][mode]
            shown = ", ".join(
                f"{k}={v['value']:.3f}" for k, v in row.items() if v and v.get("value") is not None
            )
            print(f"  {mode}: {shown}")
        return 0
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
