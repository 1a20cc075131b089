"""`python -m dataset_builders.build [--config build.yml] [--key value ...]`: the dataset builder CLI.

Parses and validates the config, runs the pipeline (or a dry run), prints a summary table and
the Axolotl `datasets:` block. Bad input -> one readable line on stderr, exit code 2, no files.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from axolotl_mistake import configio
from axolotl_mistake.errors import BuildFailed, InputError
from dataset_builders.config import BuildConfig
from dataset_builders.progress import StageBars

EXIT_INPUT = 2
EXIT_FAILED = 1


USAGE = "usage: python -m dataset_builders.build [--config build.yml] [--key value ...]"
INTRO = [
    "Builds mistake-analysis training data (Chen et al., ICLR 2024) for Axolotl.",
    "With no arguments: the embedded default (builtin red-team + helpful instructions,",
    "embedded SmolLM2-135M-Instruct on CPU, guided mistakes, self analyses) ->",
    "outputs/smollm2_135m_mistake (what recipes/smollm2_135m_mistake.yml trains on).",
    "",
    "Every key below can be set in the YAML file or overridden as --key value; nested keys",
    "use dots (--mistakes.k 2, --select.redteam_n 64). Values are parsed as YAML",
    "(numbers, true/false, [lists], {mappings}); each option may be given once. A stage",
    "'backend' is 'self' (the build's `model`) or a backend config whose keys are those of",
    "`model.*`; dotted keys below a 'self' start from its kind's defaults (transformers",
    "unless --<stage>.backend.kind is given), not from `model`.",
]


def help_text() -> str:
    """The full `--help` text, generated from the schema and the source kinds."""
    from axolotl_mistake.sources.describe import source_help_lines

    footer = [
        "Source entries (redteam, helpful, select.decontaminate) are mappings with `kind`",
        "plus that kind's keys, e.g. {kind: pku_saferlhf, path: test.jsonl, limit: 500}:",
        "",
        *source_help_lines(),
    ]
    return configio.help_text(BuildConfig, usage=USAGE, intro=INTRO, footer=footer)


def summary_table(counts: dict, timings: dict, calls: dict) -> Table:
    """Per stage: the counts it reported and the seconds it took."""
    table = Table(title="build summary", show_lines=False)
    table.add_column("stage", style="bold")
    table.add_column("counts")
    table.add_column("seconds", justify="right")
    for stage, values in counts.items():
        text = ", ".join(f"{k}={v}" for k, v in values.items())
        table.add_row(stage, text, f"{timings.get(stage, 0):.1f}")
    table.add_row(
        "calls", ", ".join(f"{k}={v}" for k, v in calls.items()), f"{timings.get('total', 0):.1f}"
    )
    return table


def dry_run(cfg: BuildConfig, config_file: str | None, out: Console) -> int:
    """Check the output folder as the build would, select for real, then plan the calls with
    the real tokenizer; write nothing."""
    from axolotl_mistake.sources.base import local_source_paths
    from dataset_builders.dryrun import load_tokenizer, plan
    from dataset_builders.output_guard import check_output
    from dataset_builders.pipeline import analyst_chat_renderer
    from dataset_builders.selection import read_and_select
    from dataset_builders.stages.select import shard_items

    check_output(cfg.output, overwrite=cfg.overwrite, sources=local_source_paths(cfg))
    selected = read_and_select(cfg, config_file)
    items = shard_items(selected.records, *cfg.shard_pair())
    tokenizer, tok_label = load_tokenizer(
        cfg.backend_for(cfg.analyses.backend), cfg.backend_key("analyses.backend")
    )
    plans = plan(cfg, items, tokenizer, analyst_chat_renderer(cfg, config_file))
    table = Table(title=f"dry run (tokenizer: {tok_label}; no generation)")
    for col in ("stage", "instructions", "calls", "prompt tokens", "max new tokens"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    sel = ", ".join(f"{k}={v}" for k, v in selected.counts.items())
    table.add_row("select", str(len(items)), "0", "0", "0")
    for p in plans:
        table.add_row(
            p.stage,
            str(p.instructions),
            str(p.calls),
            ("" if p.exact else "<= ") + str(p.prompt_tokens),
            str(p.max_new_tokens),
        )
    total_calls = sum(p.calls for p in plans)
    table.add_row(
        "total",
        "",
        str(total_calls),
        str(sum(p.prompt_tokens for p in plans)),
        str(sum(p.max_new_tokens for p in plans)),
    )
    out.print(table)
    out.print(f"select: {sel}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    out = Console()
    err = Console(stderr=True)
    loaded = None
    try:
        loaded = configio.load(BuildConfig, list(argv))
        cfg, config_file = loaded.config, loaded.config_file
        if loaded.help:
            print(help_text())
            return 0
        if cfg.dry_run:
            return dry_run(cfg, config_file, out)
        from dataset_builders.pipeline import empty_baseline_files, run_build

        outcome = run_build(cfg, config_file, StageBars(enabled=cfg.progress, console=err))
    except InputError as exc:
        if loaded is not None:  # a later step's error about a key: blame where it was set
            exc = configio.locate(exc, loaded.config_file, loaded.flags)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except BuildFailed as exc:
        print(f"error: build failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(
            "interrupted: rerun the same command to resume (finished calls are cached)",
            file=sys.stderr,
        )
        return 130
    m = outcome.manifest
    out.print(summary_table(m.counts, m.timings_s, m.calls))
    if outcome.empty_shard:
        err.print(
            f"[yellow]shard {m.shard['index']}/{m.shard['count']} has no training rows (its "
            f"slice holds {m.counts['shard']['redteam']} red-team instructions, "
            f"{m.counts.get('context_bound', {}).get('too_long_for_context', 0)} too long for "
            f"the model's context, {m.counts.get('analyses', {}).get('kept', 0)} analyses "
            "kept); it is finished: "
            "merge all shards with `python -m dataset_builders.merge`, which refuses an "
            "empty union.[/yellow]"
        )
    for name in empty_baseline_files(m.files):
        err.print(
            f"[yellow]{name} was asked for but holds no rows (see its counts in manifest.json, "
            "e.g. emit coh_no_good_answer, revise dropped/failed).[/yellow]"
        )
    if m.failed_calls:
        err.print(
            f"[yellow]{len(m.failed_calls)} model calls failed (listed in manifest.json "
            "'failed_calls'); rerun the same command to retry them.[/yellow]"
        )
    if outcome.changed:
        err.print(
            f"[yellow]rebuilt in place: {', '.join(outcome.changed)} changed since the last "
            "build in this folder. Axolotl reuses tokenised rows by dataset path, not content: "
            "before training again, delete the config's `dataset_prepared_path` folder (or "
            "point it at a new one), or it trains on the old rows.[/yellow]"
        )
    out.print(f"wrote {outcome.output}/ ({', '.join(outcome.files)}, manifest.json, README.md)")
    out.print("Axolotl datasets block:")
    print(outcome.datasets_yaml)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
