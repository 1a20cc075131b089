"""One evaluation run: config → answers → verdicts → metrics → results.json, report, charts.

All model calls go through the generation backends wrapped in `CachedBackend` (cache files in
the run folder), so a killed run resumes where it stopped. The run refuses a non-empty folder it
did not make, drops prompts too long for the model (counted), and stops with `EvaluationFailed`
when more model calls failed than `max_failed_fraction` allows, before anything is written as a
result. Outputs are written atomically (`axolotl_mistake.fileio`). Never puts an API key in any
output (the config holds only the env-var name).

Everything that can be refused is refused before the run folder is created: the prompt sets, the
output folder, loading every model (a load failure is an InputError naming the config key) and a
config that would measure nothing with this model and these judges. A run that ends with no
metric measured, or whose model calls all failed, stops with `EvaluationFailed` whatever the
failure budget.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axolotl_mistake.evaluate.config import EvalConfig
from axolotl_mistake.evaluate.inference import ALPACA_STOP, Answer, DroppedItem, answer_items
from axolotl_mistake.evaluate.judges import JudgeContext
from axolotl_mistake.evaluate.local import (
    NLL_FILE,
    PAIRS_FILE,
    boot_args,
    context_of,
    discrimination_metrics,
    hf_model,
    run_discrimination,
    run_helpful_nll,
)
from axolotl_mistake.evaluate.metric_table import METRICS, answered_sets
from axolotl_mistake.evaluate.prompt_sets import SET_NAMES, LoadedSets, load_prompt_sets
from axolotl_mistake.evaluate.results import (
    RESULTS_FORMAT,
    Dropped,
    Estimate,
    Failures,
    Results,
    read_format,
)
from axolotl_mistake.evaluate.scoring import (
    agreement,
    headline,
    judge_answers,
    judged_calls,
    mode_metrics,
    unparseable,
)
from axolotl_mistake.fileio import (
    FolderHold,
    check_output_folder,
    remove_stale_temps,
    write_atomic,
    write_json_atomic,
)
from axolotl_mistake.generation.base import SamplingParams
from axolotl_mistake.redact import redact_urls
from axolotl_mistake.sources.base import local_source_paths

log = logging.getLogger(__name__)

MARKER = ".axolotl-mistake-eval"
"""Written first into a run folder: the folder is this tool's (a killed run may resume in it)."""

__all__ = ["RESULTS_FORMAT", "EvaluationFailed", "run"]


class EvaluationFailed(RuntimeError):
    """Too many model calls failed: the numbers would not mean anything. Nothing is written as
    a result; finished calls stay cached in the run folder, so a rerun resumes."""


def recorded_config(cfg: EvalConfig) -> dict:
    """The config as results.json records it: URLs without the credentials pasted into them."""
    return redact_urls(json.loads(cfg.model_dump_json()))


def check_output(out: Path, overwrite: bool = False, sources: Sequence[str] = ()) -> None:
    """Refuse an output_dir the run may not use (a file, a path through a file, a folder that
    cannot be written, a non-empty folder this tool did not make, one holding a prompt set's
    data file: `sources`). Creates nothing.

    A folder is ours when it holds our marker or a results.json of ours. `overwrite` allows
    writing into a foreign folder (our files replace same-named ones; nothing is deleted).
    """
    check_output_folder(
        out,
        ours=made_here(out),
        overwrite=overwrite,
        who="this tool",
        field="output_dir",
        sources=sources,
    )


def made_here(out: Path) -> bool:
    """The folder holds our marker or a results.json of ours: an earlier run of this tool."""
    return (out / MARKER).is_file() or read_format(out / "results.json") is not None


def prepare_output(out: Path, name: str, hold: FolderHold, overwrite: bool = False) -> None:
    """Create the run folder, or reuse one this tool made; refuse any other non-empty folder
    (see `check_output`), then write our marker into it. The folder is held (`hold`) from
    its creation, before any file in it is touched: a second evaluation into it stops at once."""
    from axolotl_mistake.errors import InputError

    check_output(out, overwrite)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the folder: {exc.strerror or exc}", file=str(out), field="output_dir"
        ) from None
    hold.take()
    remove_stale_temps(out)  # left by a killed write of an earlier run
    if not (out / MARKER).is_file():
        marker = {"format": RESULTS_FORMAT, "name": name, "created": _now()}
        write_json_atomic(out / MARKER, marker)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class FailureLedger:
    """Failed model calls per stage, checked against the failure budget after each stage."""

    budget: float
    out: Path
    calls: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def add(self, stage: str, errors: Sequence[str | None]) -> None:
        """Record one stage's calls; `errors[i]` is None for a call that worked."""
        self.calls[stage] = self.calls.get(stage, 0) + len(errors)
        bad = [e for e in errors if e is not None]
        self.failed[stage] = self.failed.get(stage, 0) + len(bad)
        for message in dict.fromkeys(bad):
            if len(self.examples) < 5:
                self.examples.append(f"{stage}: {message[:300]}")

    def check(self) -> None:
        """Raise EvaluationFailed when any stage failed more than the budget allows."""
        over = [s for s, n in self.calls.items() if n and self.failed.get(s, 0) / n > self.budget]
        if not over:
            return
        counts = "; ".join(f"{s}: {self.failed[s]}/{self.calls[s]} failed" for s in over)
        examples = "\n".join(f"  - {e}" for e in self.examples)
        raise EvaluationFailed(
            f"too many failed model calls (max_failed_fraction {self.budget:g}): {counts}\n"
            f"first errors:\n{examples}\n"
            f"finished calls are cached in {self.out}; fix the cause (endpoint, model, key) and "
            "rerun the same command" + previous_run_note(self.out)
        )

    def record(self) -> Failures:
        return Failures(
            calls=dict(self.calls), failed=dict(self.failed), examples=list(self.examples)
        )

    def check_final(self, metrics: dict[str, dict[str, dict[str, Estimate]]]) -> None:
        """Raise EvaluationFailed when every model call failed or no metric got a value, even
        within the budget: such a run has measured nothing."""
        calls, failed = sum(self.calls.values()), sum(self.failed.values())
        measured = any(
            e.value is not None
            for per_mode in metrics.values()
            for per_judge in per_mode.values()
            for e in per_judge.values()
        )
        if calls and failed == calls:
            why = f"every model call failed ({failed}/{calls}), so nothing was measured"
        elif not measured:
            why = "no metric got a value (no usable answer, verdict, pair or reference answer)"
        else:
            return
        counts = "; ".join(
            f"{s}: {self.failed.get(s, 0)}/{n} failed" for s, n in self.calls.items() if n
        )
        examples = "".join(f"\n  - {e}" for e in self.examples)
        raise EvaluationFailed(
            f"{why}; no results written"
            + (f"\ncalls: {counts}" if counts else "")
            + (f"\nfirst errors:{examples}" if examples else "")
            + f"\nfinished calls are cached in {self.out}; fix the cause and rerun the same command"
            + previous_run_note(self.out)
        )


def previous_run_note(out: Path) -> str:
    """For a failed run's message: the results.json an earlier finished run left in `out`, which
    this run did not replace (a reader of the folder would otherwise take it for this run's)."""
    file = out / "results.json"
    if read_format(file) is None:
        return ""
    try:
        created = json.loads(file.read_text(encoding="utf-8")).get("created") or "unknown"
    except (OSError, ValueError):
        created = "unknown"
    return (
        f"\n{file} and report.md are still those of an earlier run (created {created}), "
        "not of this one"
    )


class _Backends:
    """Every configured model loaded once, before the run folder exists; each use gets a
    `_LazyCached` whose call cache (a file in the run folder) opens with `open_caches`."""

    def __init__(self, out: Path) -> None:
        from axolotl_mistake.generation.factory import LoadedBackends

        self.out = out
        self._models = LoadedBackends()
        self._cached: list[_LazyCached] = []

    def load(self, bcfg: Any, where: str) -> Any:
        return self._models.load(bcfg, where)

    def cached(self, bcfg: Any, file_name: str, where: str) -> _LazyCached:
        lazy = _LazyCached(self.load(bcfg, where), self.out / file_name)
        self._cached.append(lazy)
        return lazy

    def open_caches(self) -> None:
        for lazy in self._cached:
            lazy.open()

    def close_caches(self) -> None:
        """Close every call cache (a run in a long-lived process, a notebook or a test, must
        not leave its sqlite connections open on files a later run replaces)."""
        for lazy in self._cached:
            lazy.close()


class _LazyCached:
    """A loaded backend behind a CachedBackend opened once the run folder exists; until then
    attribute reads (name, max_context, ...) go to the loaded backend."""

    def __init__(self, backend: Any, cache_path: Path) -> None:
        self._inner = backend
        self._path = cache_path
        self._cached: Any = None

    def open(self) -> None:
        from axolotl_mistake.generation.cache import CachedBackend, CallCache

        if self._cached is None:
            self._cached = CachedBackend(self._inner, CallCache(self._path))

    def close(self) -> None:
        if self._cached is not None:
            self._cached.cache.close()
            self._cached = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._cached if self._cached is not None else self._inner, name)


def _judge_errors(verdicts: dict) -> dict[str, list[str | None]]:
    """judge -> one entry per verdict: its error message, or None when the call worked."""
    return {
        judge: [v.raw if v.status == "error" else None for t in tables.values() for v in t.values()]
        for judge, tables in verdicts.items()
    }


def _dropped_record(
    dropped: Sequence[DroppedItem], nll_dropped: dict[str, list[str]], verdicts: dict[str, dict]
) -> Dropped:
    """Counts of everything not run for length: answers, NLL items and judge prompts."""
    counts: dict[str, int] = {}
    for d in dropped:
        counts[f"{d.mode}/{d.set}"] = counts.get(f"{d.mode}/{d.set}", 0) + 1
    for mode, ids in nll_dropped.items():
        if ids:
            counts[f"{mode}/helpful_nll"] = len(ids)
    for mode, per_judge in verdicts.items():
        for judge, tables in per_judge.items():
            n = sum(v.status == "too_long" for t in tables.values() for v in t.values())
            if n:
                counts[f"{mode}/judge {judge}"] = n
    examples = [f"{d.mode}/{d.set} {d.id}: {d.reason}" for d in dropped[:5]]
    return Dropped(counts=counts, examples=examples)


def run(cfg: EvalConfig, progress: bool = True, overwrite: bool = False) -> Results:
    """Run the whole evaluation; return the results (also written to the run folder). Its
    call caches are closed when it returns or fails."""
    backends = _Backends(Path(cfg.output_dir))
    try:
        with ExitStack() as held:  # the run folder's lock (`FolderHold`), to the end
            return _run(cfg, progress, overwrite, backends, held)
    finally:
        backends.close_caches()


def _run(
    cfg: EvalConfig, progress: bool, overwrite: bool, backends: _Backends, held: ExitStack
) -> Results:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from axolotl_mistake.evaluate.charts import run_charts
    from axolotl_mistake.evaluate.report import render_run_report
    from axolotl_mistake.logged_progress import LoggedProgress

    started = time.time()
    # every InputError up to prepare_output comes before anything is written
    loaded = load_prompt_sets(cfg.prompt_sets)
    out = Path(cfg.output_dir)
    check_output(out, overwrite, local_source_paths(cfg.prompt_sets))
    # held from here when the folder exists: a second run stops before loading any model
    hold = FolderHold(held, out, who="the evaluator", field="output_dir")
    notes = list(loaded.notes)
    timings: dict[str, float] = {}
    ledger = FailureLedger(cfg.max_failed_fraction, out)
    batch = cfg.batch_size or cfg.model.batch_size

    t0 = time.perf_counter()
    backend = backends.cached(cfg.model, "cache.sqlite", "model")
    judges = [
        jc.build(JudgeContext(i, cfg.prompt_format, batch, backend, _judge_cache(backends, i), out))
        for i, jc in enumerate(cfg.judges)
    ]
    local = None
    if loaded.pairs or loaded.items.get("helpful"):
        local = _local_model(cfg, backends.load(cfg.model, "model"))
        if loaded.pairs and local is not None:
            _check_probe_style(cfg, local[1])
    check_measurable(loaded, {a for j in judges for a in j.aspects}, local is not None)
    timings["load_s"] = time.perf_counter() - t0
    earlier_run = made_here(out)  # before the marker goes in: its per-item files may be stale
    prepare_output(out, cfg.name, hold, overwrite)
    backends.open_caches()
    # on stderr, as the builder's: stdout carries only the run's summary lines
    bar = held.enter_context(
        LoggedProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not progress,
            transient=False,
        )
    )

    measured: dict[str, dict[str, Estimate]] = {mode: {} for mode in cfg.modes}
    disc, pair_lines, nll_dropped, nll_lines = None, [], {}, []
    t0 = time.perf_counter()
    if loaded.pairs and local is not None:
        probed = len(loaded.pairs) + len(loaded.calibration)
        task = bar.add_task("discrimination probe", total=probed)
        disc, pair_lines = _discrimination(cfg, *local, loaded.pairs, loaded.calibration)
        bar.update(task, completed=probed)
        for mode in cfg.modes:
            measured[mode].update(discrimination_metrics(disc))
    elif loaded.pairs:
        notes.append(
            "discrimination: not measured (needs a local model; endpoints give no verdict likelihoods)"
        )
    timings["discrimination_s"] = time.perf_counter() - t0
    helpful = loaded.items.get("helpful", [])
    if helpful and local is not None:
        t0 = time.perf_counter()
        for mode in cfg.modes:
            task = bar.add_task(f"helpful NLL ({mode})", total=len(helpful))
            est, nll_dropped[mode], lines = run_helpful_nll(
                cfg, *local, helpful, mode, context_of(backend, *local)
            )
            nll_lines += lines
            bar.update(task, completed=len(helpful))
            measured[mode]["helpful_nll"] = est
        timings["helpful_nll_s"] = time.perf_counter() - t0
    elif helpful:
        notes.append(
            "helpful_nll: not measured (needs a local model; endpoints give no token log-probabilities)"
        )

    params = SamplingParams(
        max_new_tokens=cfg.sampling.max_new_tokens,
        temperature=cfg.sampling.temperature,
        top_p=cfg.sampling.top_p,
        stop=ALPACA_STOP if cfg.prompt_format == "alpaca" else (),
        seed=cfg.sampling.seed,
    )
    wanted = answered_sets({a for j in judges for a in j.aspects})
    skipped = [n for n in SET_NAMES if loaded.items.get(n) and n not in wanted]
    if skipped:
        notes.append(
            f"not answered (no configured judge reads these answers): {', '.join(skipped)}"
        )
    items = [it for name in SET_NAMES if name in wanted for it in loaded.items.get(name, [])]
    answers: dict[str, list[Answer]] = {}
    verdicts: dict[str, dict] = {}
    dropped: list[DroppedItem] = []
    for mode in cfg.modes:
        task = bar.add_task(f"answer ({mode})", total=len(items))
        t0 = time.perf_counter()
        answers[mode], gone = answer_items(
            backend, items, mode, cfg.prompt_format, params, batch, _advance(bar, task)
        )
        dropped += gone
        timings[f"answer_{mode}_s"] = time.perf_counter() - t0
        ledger.add(f"answers ({mode})", [a.error for a in answers[mode]])
        ledger.check()
        counts: dict[str, int] = {}
        for a in answers[mode]:
            counts[a.set] = counts.get(a.set, 0) + (a.error is None)
        task = bar.add_task(f"judge ({mode})", total=judged_calls(judges, counts))
        t0 = time.perf_counter()
        verdicts[mode] = judge_answers(judges, answers[mode], _advance(bar, task))
        timings[f"judge_{mode}_s"] = time.perf_counter() - t0
        for judge, errors in _judge_errors(verdicts[mode]).items():
            ledger.add(f"judge {judge} ({mode})", errors)
        ledger.check()

    drop_record = _dropped_record(dropped, nll_dropped, verdicts)
    if drop_record.counts:
        shown = ", ".join(f"{k} {v}" for k, v in drop_record.counts.items())
        notes.append(f"dropped as longer than the model's context (never run): {shown}")
    boot = boot_args(cfg)
    metrics = {
        mode: mode_metrics(answers[mode], verdicts[mode], boot, measured[mode])
        for mode in cfg.modes
    }
    ledger.check_final(metrics)
    timings["total_s"] = time.time() - started
    results = Results(
        name=cfg.name,
        created=_now(),
        config=recorded_config(cfg),
        primary_judge=cfg.primary,
        judges=[j.name for j in judges],
        modes=list(cfg.modes),
        counts={name: len(v) for name, v in loaded.items.items()}
        | {"discrimination_pairs": len(loaded.pairs)},
        items_sha256=loaded.digests(),
        metrics=metrics,
        headline={mode: headline(metrics[mode], cfg.primary) for mode in cfg.modes},
        agreement={mode: agreement(verdicts[mode], answers[mode]) for mode in cfg.modes},
        unparseable={mode: unparseable(verdicts[mode]) for mode in cfg.modes},
        discrimination=disc,
        dropped=drop_record,
        failures=ledger.record(),
        notes=notes,
        timings={k: round(v, 2) for k, v in timings.items()},
        cache=dict(getattr(backend, "stats", {})),
        platform={"python": platform.python_version(), "machine": platform.machine()},
    )
    _write_outputs(
        out,
        results,
        answers,
        verdicts,
        pair_lines,
        nll_lines,
        run_charts,
        render_run_report,
        earlier_run=earlier_run,
    )
    return results


def _judge_cache(backends: _Backends, index: int) -> Callable[[Any, str], Any]:
    return lambda backend_cfg, file_name: backends.cached(
        backend_cfg, file_name, f"judges.{index}.backend"
    )


def _local_model(cfg: EvalConfig, backend: Any) -> tuple[Any, Any] | None:
    """`hf_model` for the probe and the NLL; a load failure is an InputError on model.model."""
    from axolotl_mistake.errors import InputError, first_line

    try:
        return hf_model(cfg, backend)
    except (OSError, ValueError, ImportError) as exc:
        first = first_line(exc)
        raise InputError(
            f"cannot load model {cfg.model.model!r}: {first}", field="model.model"
        ) from None


def measurable_sets(
    loaded: LoadedSets, aspects: set[str], local: bool
) -> tuple[list[str], list[str]]:
    """(sets some metric can measure, '<set> needs ...' for the others) among the non-empty
    loaded sets, given the judges' aspects and whether the model's weights are in this process
    (the probe and the reference-answer NLL read token probabilities; endpoints give none)."""
    ok: list[str] = []
    not_ok: list[str] = []
    for name in (*SET_NAMES, "discrimination"):
        size = len(loaded.pairs) if name == "discrimination" else len(loaded.items.get(name, []))
        if not size:
            continue
        specs = [m for m in METRICS if m.prompt_set == name]
        if any(
            m.by == "rule"
            or (m.aspect is not None and m.aspect in aspects)
            or (m.by in ("probe", "likelihood") and local)
            for m in specs
        ):
            ok.append(name)
            continue
        needs = []
        wanted = sorted({m.aspect for m in specs if m.aspect})
        if wanted:
            needs.append(f"a judge that rates {' or '.join(wanted)}")
        if any(m.by in ("probe", "likelihood") for m in specs):
            needs.append("a local model (model.kind transformers or vllm)")
        not_ok.append(f"{name} needs {' or '.join(needs)}")
    return ok, not_ok


def check_measurable(loaded: LoadedSets, aspects: set[str], local: bool) -> None:
    """InputError (field prompt_sets) when no configured prompt set can give a single metric
    with this model and these judges: the run would only spend calls and measure nothing."""
    from axolotl_mistake.errors import InputError

    ok, not_ok = measurable_sets(loaded, aspects, local)
    if ok:
        return
    if not not_ok:
        shown = "; ".join(loaded.notes) or "every configured set is empty"
        raise InputError(f"no prompt set has anything to evaluate ({shown})", field="prompt_sets")
    raise InputError(
        "nothing can be measured with this model and these judges: "
        + "; ".join(not_ok)
        + " (see the metric table in axolotl_mistake/evaluate/README.md)",
        field="prompt_sets",
    )


def _advance(bar: Any, task: Any) -> Callable[[int], None]:
    return lambda n: bar.advance(task, n)


def _check_probe_style(cfg: EvalConfig, tokenizer: Any) -> None:
    """A probe style the model cannot take (a chat style without a chat template) is a config
    error, found before the run folder exists."""
    from axolotl_mistake.errors import InputError
    from axolotl_mistake.generation.common import has_chat_template
    from axolotl_mistake.probe import CHAT_STYLES

    if cfg.style in CHAT_STYLES and not has_chat_template(tokenizer):
        raise InputError(
            f"probe style {cfg.style!r} needs a tokenizer with a chat template; use 'alpaca' or "
            "'analysis' for models trained on Alpaca-format prompts",
            field="probe_style",
        )


def _discrimination(
    cfg: EvalConfig, model: Any, tokenizer: Any, pairs: list, calibration: list
) -> tuple:
    """The probe (its style was checked against the tokenizer before the run folder existed)."""
    return run_discrimination(cfg, model, tokenizer, pairs, calibration)


def _write_outputs(
    out: Path,
    results: Results,
    answers: dict[str, list[Answer]],
    verdicts: dict[str, dict],
    pair_lines: list[str],
    nll_lines: list[str],
    run_charts: Callable,
    render_run_report: Callable,
    *,
    earlier_run: bool,
) -> None:
    """answers.jsonl, the pairs file, the per-item NLL file, charts, then results.json and
    report.md (last: a folder with results.json is a finished run). An earlier run's
    results.json and report.md go first, so a run killed while writing leaves an unfinished
    folder (which a rerun resumes), never an old results.json beside this run's answers; an
    earlier run's pairs and NLL files go when this run wrote none, never to be read as this
    run's. In a folder no run of ours made (`earlier_run` false: --overwrite), nothing is
    deleted."""
    if read_format(out / "results.json") is not None:  # ours: a foreign one is only replaced
        (out / "results.json").unlink()
        (out / "report.md").unlink(missing_ok=True)
    lines = []
    for mode, mode_answers in answers.items():
        for a in mode_answers:
            row = a.to_dict()
            row["verdicts"] = {
                judge: {aspect: t[a.id].to_dict() for aspect, t in tables.items() if a.id in t}
                for judge, tables in verdicts[mode].items()
            }
            lines.append(json.dumps(row, ensure_ascii=False))
    write_atomic(out / "answers.jsonl", "".join(line + "\n" for line in lines))
    for name, per_item in ((PAIRS_FILE, pair_lines), (NLL_FILE, nll_lines)):
        if per_item:
            write_atomic(out / name, "".join(line + "\n" for line in per_item))
        elif earlier_run:
            (out / name).unlink(missing_ok=True)
    results.charts = [p.name for p in run_charts(results, out)]
    write_atomic(out / "results.json", results.to_json())
    write_atomic(out / "report.md", render_run_report(results))
