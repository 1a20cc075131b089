"""The build: read + select -> shard -> context bound -> the registered stages (mistakes,
verify, harmless, analyses, revise) -> emit, with the call cache and atomic writes.

The output folder is checked, inputs read and validated, and models loaded before the folder is
touched, so a bad input leaves nothing behind. Every model call goes through one CachedBackend
whose store lives in the output folder: a rerun after a crash repeats only the missing calls.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axolotl_mistake.errors import BuildFailed, InputError
from axolotl_mistake.fileio import (
    FolderHold,
    remove_stale_temps,
    write_atomic,
    write_json_atomic,
)
from axolotl_mistake.generation.config import LocalBackendConfig
from axolotl_mistake.manifest import MANIFEST_NAME, BuildManifest, read_manifest
from axolotl_mistake.sources.base import local_source_paths
from dataset_builders.backends import Backends, needed_backends
from dataset_builders.card import render_card
from dataset_builders.chat_prefill import ChatRenderer, load_chat_renderer
from dataset_builders.config import BuildConfig
from dataset_builders.context_bound import bound_items
from dataset_builders.output_guard import (
    CACHE_FILE,
    POOL_FILE,
    STATE_DIR,
    check_output,
    made_by_us,
)
from dataset_builders.progress import StageBars
from dataset_builders.provenance import build_manifest
from dataset_builders.selection import read_and_select
from dataset_builders.stages import emit as emit_stage
from dataset_builders.stages.base import StageContext, Work
from dataset_builders.stages.common import CallFailure
from dataset_builders.stages.emit import ALL_FILES, FileSpec
from dataset_builders.stages.registry import STAGES
from dataset_builders.stages.select import shard_items

CARD_FILE = "README.md"
CALL_CHUNK = 256


@dataclass
class BuildOutcome:
    """What a finished build produced (for the CLI summary and tests)."""

    output: Path
    files: dict[str, FileSpec]
    manifest: BuildManifest
    datasets_yaml: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    empty_shard: bool = False
    """A shard (of n > 1) that wrote no training rows: judged at the union, by merge."""
    changed: list[str] = field(default_factory=list)
    """Files an earlier build in this folder wrote with other content: a trainer that cached
    their tokenised rows by path (Axolotl's `dataset_prepared_path`) would read the old ones."""


@dataclass
class StagesOutcome:
    """What the registered stages produced: the work, and per stage its counts and seconds,
    plus every failed call."""

    work: Work
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    failures: list[CallFailure] = field(default_factory=list)


def analyst_chat_renderer(cfg: BuildConfig, config_file: str | None) -> ChatRenderer | None:
    """The analyst's chat-template renderer when anchored analyses run in chat format; None
    otherwise, and for a local analyst with a mistral-common tokenizer, whose anchored requests
    carry the verdict as `prefill` for the backend to encode."""
    if not (cfg.analyses.anchored and cfg.prompt_format == "chat"):
        return None
    analyst = cfg.backend_for(cfg.analyses.backend)
    source = cfg.analyses.chat_template_from
    local = source is None and isinstance(analyst, LocalBackendConfig)
    return load_chat_renderer(
        source or analyst.model,
        None if source else analyst.revision,
        file=config_file or "<command line>",
        field="analyses.chat_template_from"
        if source
        else f"{cfg.backend_key('analyses.backend')}.model",
        prefill_ok=local,
        load=analyst.load_tokenizer if local else None,  # the tokenizer it will encode with
    )


BASELINE_ROLES = ("coh", "critique_revise")
"""Roles of the baseline files `emit` writes when asked: one may come out empty for a reason
in the data (no labelled safe answer for CoH) that does not void the analyses, so an empty
one is said (`empty_baseline_files`), not refused."""


def empty_training_files(files: dict[str, FileSpec]) -> list[str]:
    """The analysis files that hold no row: a build or merge that would write one stops."""
    return [
        name for name, spec in files.items() if spec.role == "mistake_analysis" and not spec.rows
    ]


def empty_baseline_files(files: Mapping[str, Any]) -> list[str]:
    """The baseline files asked for that hold no row (FileSpecs, or a manifest's entries)."""
    return [name for name, spec in files.items() if spec.role in BASELINE_ROLES and not spec.rows]


def failure_summary(failures: list[CallFailure], limit: int = 3) -> str:
    """The most frequent error messages of the failed calls, with their counts."""
    common = Counter(
        f.error.strip().splitlines()[0][:200] if f.error.strip() else "?" for f in failures
    ).most_common(limit)
    return "; ".join(f"{n} x {msg}" for msg, n in common)


def check_failure_budget(
    stage: str,
    failures: list[CallFailure],
    calls: dict[str, int],
    budget: float,
    stage_calls: int | None = None,
) -> None:
    """Raise BuildFailed when more than `budget` of the calls made so far failed, or of the
    `stage_calls` this stage made (its failures are those of `failures` with its name): a
    small stage that failed whole (a dead judge endpoint beside a working analyst) may not
    pass under the others' count, as the evaluation judges each judge's calls on its own."""
    requested = _requested(calls)
    own = [f for f in failures if f.stage == stage or f.stage.startswith(f"{stage}.")]
    if stage_calls is not None and own and len(own) > budget * max(stage_calls, 1):
        failed, made, where = own, stage_calls, f"of stage '{stage}'"
    elif failures and len(failures) > budget * max(requested, 1):
        failed, made, where = failures, requested, f"by the end of stage '{stage}'"
    else:
        return
    raise BuildFailed(
        f"{len(failed)} of {made} model calls failed {where} "
        f"(budget max_failed_fraction={budget}): {failure_summary(failed)}. No output was "
        "written; finished calls are cached, so rerunning the same command resumes."
    )


def _requested(calls: dict[str, int]) -> int:
    return calls.get("hits", 0) + calls.get("misses", 0)


def run_stages(
    work: Work,
    cfg: BuildConfig,
    backends: Backends,
    bars: StageBars,
    render_chat: ChatRenderer | None = None,
) -> StagesOutcome:
    """Every enabled registered stage, in order, on the shard's work; stops with BuildFailed
    when the failed calls exceed the budget after a stage."""
    ctx = StageContext(
        cfg=cfg, backend=backends.get, render_chat=render_chat, chunk_size=CALL_CHUNK
    )
    outcome = StagesOutcome(work)
    for stage in STAGES:
        if not stage.enabled(cfg):
            continue
        started, before = time.perf_counter(), _requested(backends.stats())
        records = stage.inputs(work)
        with bars.stage(stage.name, stage.total(cfg, records)) as tick:
            result = stage.run(ctx, records, tick)
        stage.store(work, result.records)
        outcome.counts[stage.name] = dict(sorted(result.counts.items()))
        outcome.timings[stage.name] = round(time.perf_counter() - started, 3)
        outcome.failures.extend(result.failures)
        calls = backends.stats()
        check_failure_budget(
            stage.name,
            outcome.failures,
            calls,
            cfg.max_failed_fraction,
            stage_calls=_requested(calls) - before,
        )
    return outcome


def retire_previous(out: Path) -> dict[str, str | None]:
    """Call right before the first file of `out` (the pool, then the data files) is replaced.

    Returns the final files an earlier build of this tool left in `out`, each with the sha256
    its manifest lists: those its manifest lists, or, in a folder a killed build left (no
    manifest, `made_by_us`), the final files there (sha256 None: not known to have changed).
    Removes that manifest and, before it, its card: a build killed from here on leaves
    what a killed first build leaves (state/ and some data files, which `made_by_us` accepts
    and a rerun resumes), never new files beside an old manifest whose sha256s and row counts
    no longer match them. A foreign folder (`--overwrite`) loses nothing: returns {}."""
    try:
        manifest = read_manifest(out)
    except InputError:  # says it is ours but cannot be read: treated as foreign, kept
        return {}
    if manifest is None:
        if out.is_dir() and made_by_us(out):
            return {p.name: None for p in sorted(out.iterdir()) if p.name in ALL_FILES}
        return {}
    (out / CARD_FILE).unlink(missing_ok=True)  # first: a card without a manifest is foreign
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    # "" for an entry without a sha256 (an older manifest): unknown content counts as changed
    return {name: entry.sha256 or "" for name, entry in manifest.files.items()}


def write_outputs(
    out: Path,
    files: dict[str, FileSpec],
    manifest: BuildManifest,
    datasets_yaml: str,
    previous: dict[str, str | None] | None = None,
) -> None:
    """Every final file atomically, the manifest and then the card last; the files an
    earlier build of this tool left (`previous`, from `retire_previous`, called here unless
    the caller did so before replacing its pool) and this one does not write are removed
    (nothing else: with `--overwrite` a foreign folder keeps every file the build does not
    replace)."""
    if previous is None:
        previous = retire_previous(out)
    stale = [name for name in previous if name in ALL_FILES and name not in files]
    for name, spec in files.items():
        write_atomic(out / name, spec.to_bytes())
    for name in stale:
        (out / name).unlink(missing_ok=True)
    write_json_atomic(out / MANIFEST_NAME, manifest.to_json())
    write_atomic(out / CARD_FILE, render_card(manifest, datasets_yaml))


def open_output(out: Path, hold: FolderHold) -> None:
    """Create `out` and its state folder, hold `out` (a second build or merge into it stops),
    then remove the temp files a write that a crash interrupted left in both (only under the
    hold: a concurrent run's temp files look the same). For the build and for merge."""
    (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
    hold.take()
    for folder in (out, out / STATE_DIR):
        remove_stale_temps(folder)


def run_build(
    cfg: BuildConfig, config_file: str | None = None, bars: StageBars | None = None
) -> BuildOutcome:
    """The whole build. InputError before anything is written; outputs atomically at the end.
    The output folder is held (`FolderHold`) to the last write: from the start when it
    exists (a second run stops before reading or loading anything), else from its creation."""
    with ExitStack() as held:
        return _run_build(cfg, config_file, bars or StageBars(enabled=False), held)


def _run_build(
    cfg: BuildConfig, config_file: str | None, bars: StageBars, held: ExitStack
) -> BuildOutcome:
    from axolotl_mistake.generation.cache import CallCache

    counts: dict[str, dict[str, int]] = {}
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    check_output(cfg.output, overwrite=cfg.overwrite, sources=local_source_paths(cfg))
    out = Path(cfg.output)
    hold = FolderHold(held, out, who="the dataset builder", field="output")
    with bars:
        with bars.stage("read", None) as tick:
            selected = read_and_select(cfg, config_file, tick)
        counts["select"] = dict(sorted(selected.counts.items()))
        timings["select"] = round(time.perf_counter() - t0, 3)
        index, count = cfg.shard_pair()
        items = shard_items(selected.records, index, count)
        counts["shard"] = {
            "redteam": sum(1 for it in items if it.role == "redteam"),
            "helpful": sum(1 for it in items if it.role == "helpful"),
        }
        backends = Backends()
        backends.preload([(cfg.backend_key(k), b) for k, b in needed_backends(cfg)], config_file)
        render_chat = analyst_chat_renderer(cfg, config_file)
        bounded = bound_items(
            cfg, items, backends.loaded, render_chat, config_file=config_file, whole=count == 1
        )
        counts["context_bound"] = dict(sorted(bounded.counts.items()))
        items = bounded.records
        open_output(out, hold)
        cache = CallCache(out / STATE_DIR / CACHE_FILE)
        backends.attach(cache)
        try:
            staged = run_stages(Work(items=items), cfg, backends, bars, render_chat)
        finally:
            calls = backends.stats()
            cache.close()
    counts.update(staged.counts)
    timings.update(staged.timings)
    failures = staged.failures
    started = time.perf_counter()
    pool = staged.work.pool()
    files, emitted = emit_stage.emit(pool, cfg.emit, seed=cfg.seed, balanced=cfg.analyses.balanced)
    counts["emit"] = dict(sorted(emitted.counts.items()))
    empty = empty_training_files(files)
    # a shard's empty result is judged at the union (merge refuses an empty one): few red-team
    # rows in many shards leave some slices empty, and merge needs every shard. Failed calls
    # still stop it, as they stop an unsharded run: a rerun retries them.
    empty_shard = bool(empty) and count > 1 and not failures
    if empty and not empty_shard:
        stages = ", ".join(
            f"{k}: {v}"
            for k, v in counts.items()
            if k in ("mistakes", "verify", "analyses", "revise")
        )
        raise BuildFailed(
            f"no training rows: {', '.join(empty)} would be empty ({stages}"
            + (f"; {len(failures)} failed calls: {failure_summary(failures)}" if failures else "")
            + "). Nothing was written."
        )
    # only now, past the last refusal: merge reads the pool beside the manifest
    previous = retire_previous(out)
    pool_sha256 = pool.save(out / STATE_DIR / POOL_FILE)
    failed = [f.to_dict() for f in failures]
    calls = {**calls, "failed": len(failed)}
    datasets_yaml = emit_stage.datasets_block(files, cfg.output.rstrip("/"))
    timings["emit"] = round(time.perf_counter() - started, 3)
    timings["total"] = round(time.perf_counter() - t0, 3)
    manifest = build_manifest(
        cfg,
        config_file,
        files,
        counts,
        timings,
        calls,
        failed,
        {"index": index, "count": count},
        pool_sha256=pool_sha256,
    )
    write_outputs(out, files, manifest, datasets_yaml, previous)
    changed = [n for n, e in manifest.files.items() if previous.get(n) not in (None, e.sha256)]
    return BuildOutcome(out, files, manifest, datasets_yaml, counts, empty_shard, changed)
