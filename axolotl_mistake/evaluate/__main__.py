"""CLI: `python -m axolotl_mistake.evaluate --config eval.yml` and `... compare RUN... --output DIR`.

A run's config is read by the project's one loader (`configio`: `--config FILE`, `--key value`
overrides, `--help` from the schema). Bad input (config, prompt files, results files, a foreign
output folder, a repeated flag) is reported as `error: file:line, field: message` with exit code
2 before any output is written (so is a model that cannot be loaded, or prompt sets that nothing
configured can measure); a run whose model calls failed beyond the failure budget, all failed,
or that ends with no metric exits with code 1 and a summary. `compare` writes only into a new or
empty folder or one it made (`--overwrite` for any other), never into one of its runs. Never
prints secrets.
"""

from __future__ import annotations

import argparse
import logging
import sys

USAGE = """\
python -m axolotl_mistake.evaluate --config eval.yml [--key value ...] [--overwrite] [--quiet]
python -m axolotl_mistake.evaluate compare RUN_DIR [RUN_DIR ...] --output DIR [--mode plain] [--judge NAME] [--paired-with RUN_DIR] [--overwrite]"""


class _Once(argparse.Action):
    """Store an option's value, refusing the option a second time (`--output a --output b`):
    which one was meant cannot be known."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        seen = getattr(namespace, "_seen", set())
        if self.dest in seen:
            parser.error(f"{option_string} is given twice; give each option once")
        namespace._seen = seen | {self.dest}
        setattr(namespace, self.dest, values)


class _OnceSwitch(_Once):
    """A switch (no value) that may be given once."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        super().__call__(parser, namespace, True, option_string)


RUN_FLAGS = {
    "--overwrite": "write into an output_dir that holds files this tool did not write",
    "--quiet": "no progress bars",
}
"""Switches of a run that are not config keys."""


def _run_flags(argv: list[str]) -> tuple[set[str], list[str]]:
    """Take the run switches out of argv (each at most once); the rest goes to the loader."""
    from axolotl_mistake.configio import COMMAND_LINE
    from axolotl_mistake.errors import InputError

    found: set[str] = set()
    rest: list[str] = []
    for arg in argv:
        if arg in RUN_FLAGS:
            if arg in found:
                raise InputError(
                    f"{arg} is given twice; give each option once", file=COMMAND_LINE, field=arg[2:]
                )
            found.add(arg)
        else:
            rest.append(arg)
    return found, rest


def _run_help() -> str:
    from axolotl_mistake import configio
    from axolotl_mistake.evaluate.config import EvalConfig

    footer = [f"  {flag:<20} {text}" for flag, text in RUN_FLAGS.items()]
    return configio.help_text(
        EvalConfig,
        usage=USAGE,
        intro=[
            "Evaluate a model: harmlessness, helpfulness, discrimination, goal-hijacking defence",
            "and over-refusal, with bootstrap intervals; writes results.json, report.md, charts.",
            "Every key can be set in the YAML file or given as --key value (nested keys by dots:",
            "--model.adapter DIR). Details: axolotl_mistake/evaluate/README.md",
        ],
        footer=footer,
    )


def _compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m axolotl_mistake.evaluate compare",
        usage=USAGE,
        description="Side-by-side table (paper layout) and chart of several evaluation runs.",
        allow_abbrev=False,
    )
    p.add_argument("runs", nargs="+", help="run folders (or their results.json)")
    p.add_argument(
        "--output",
        required=True,
        action=_Once,
        help="folder for compare.md, compare.json, compare.png",
    )
    p.add_argument(
        "--mode", default="plain", action=_Once, help="plain or harmless_guided (default plain)"
    )
    p.add_argument(
        "--judge",
        default=None,
        action=_Once,
        help="judge label to read (default: each run's headline judge)",
    )
    p.add_argument(
        "--paired-with",
        default=None,
        action=_Once,
        help="one of the runs: add every other run's difference from it, paired on the same "
        "items (judged rates and scores, goal-hijack defence, reference NLL, probe AUC)",
    )
    p.add_argument(
        "--overwrite",
        nargs=0,
        default=False,
        action=_OnceSwitch,
        help="write into an --output folder that holds files compare did not write",
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

            table = compare(
                args.runs,
                args.output,
                mode=args.mode,
                judge=args.judge,
                overwrite=args.overwrite,
                paired_with=args.paired_with,
            )
            print(
                f"wrote {args.output}/compare.md, compare.json, compare.png ({len(table['rows'])} runs)"
            )
            return 0
        from axolotl_mistake import configio
        from axolotl_mistake.evaluate.config import EvalConfig
        from axolotl_mistake.evaluate.inputs import load
        from axolotl_mistake.evaluate.runner import EvaluationFailed, run

        flags, rest = _run_flags(argv)
        cli = configio.parse_command_line(rest, EvalConfig)
        if cli.help:
            print(_run_help())
            return 0
        cfg = load(cli)
        try:
            results = run(cfg, progress="--quiet" not in flags, overwrite="--overwrite" in flags)
        except InputError as exc:
            raise configio.locate(exc, cli.config, cli.flags) from None
        except EvaluationFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {cfg.output_dir}/results.json, report.md, {', '.join(results.charts)}")
        for mode in results.modes:
            shown = ", ".join(
                f"{k}={v.value:.3f}" for k, v in results.headline[mode].items() if v is not None
            )
            print(f"  {mode}: {shown}")
        return 0
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
