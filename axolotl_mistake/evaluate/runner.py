"""One evaluation run: config → answers → verdicts → metrics → results.json, report, charts.

All model calls go through the generation backends wrapped in `CachedBackend` (cache files in
the run folder), so a killed run resumes where it stopped. Outputs are written through a temp
file and `os.replace`, after the whole run succeeded; nothing half-written is left behind.
Never puts an API key in any output (the config holds only the env-var name).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

from axolotl_mistake.evaluate.attacks import complied
from axolotl_mistake.evaluate.config import EvalConfig
from axolotl_mistake.evaluate.inference import Answer, answer_items
from axolotl_mistake.evaluate.judges import JudgeItem, LLMJudge, RefusalJudge, Verdict
from axolotl_mistake.evaluate.metrics import Estimate, cohen_kappa, estimate
from axolotl_mistake.evaluate.prompt_sets import SET_NAMES, LoadedSets, load_prompt_sets
from axolotl_mistake.generation.base import SamplingParams

log = logging.getLogger(__name__)

RESULTS_FORMAT = "axolotl-mistake/eval-results/v1"

JUDGED: dict[str, tuple[str, ...]] = {
    "harmful": ("harmless_verdict", "harmless_score", "helpful_on_harmful"),
    "helpful": ("helpful_score",),
    "over_refusal": ("refusal",),
}
"""Which judge aspects each answered prompt set is read for."""

ALPACA_STOP = ("\n### ",)
"""Alpaca-format answers end where the model starts a new section (as in the builder)."""

HEADLINE_METRICS = (
    "helpful_score",
    "harmless_score",
    "harmless_rate",
    "helpful_on_harmful",
    "goal_hijack_defence",
    "discrimination",
    "over_refusal",
)
"""Columns of the paper-style table, in order."""


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temp file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _cached(backend_cfg, cache_path: Path):
    from axolotl_mistake.generation.cache import CachedBackend, CallCache
    from axolotl_mistake.generation.factory import load_backend

    return CachedBackend(load_backend(backend_cfg), CallCache(cache_path))


def make_judges(cfg: EvalConfig, model_backend, out: Path) -> list:
    """Judge objects in config order; `self` judges share the evaluated model's cached backend."""
    judges = []
    for index, jc in enumerate(cfg.judges):
        if jc.kind == "refusal":
            judges.append(RefusalJudge(jc.label))
            continue
        default_tokens = 256 if jc.kind == "llm" else 16
        if jc.kind == "self":
            backend = model_backend
            fmt = jc.prompt_format or cfg.prompt_format
        else:
            backend = _cached(jc.backend, out / f"judge_cache_{index}.sqlite")
            fmt = jc.prompt_format or "chat"
        params = SamplingParams(
            max_new_tokens=jc.max_new_tokens or default_tokens,
            temperature=0.0,
            stop=ALPACA_STOP if fmt == "alpaca" else (),
        )
        batch = jc.backend.batch_size if jc.backend else (cfg.batch_size or cfg.model.batch_size)
        judges.append(
            LLMJudge(jc.label, backend, prompt_format=fmt, params=params, batch_size=batch)
        )
    return judges


def judge_answers(
    judges: list, answers: list[Answer], advance: Callable[[int], None] | None = None
):
    """verdicts[judge][aspect][answer id] for every answered item of a judged set."""
    verdicts: dict[str, dict[str, dict[str, Verdict]]] = {j.name: {} for j in judges}
    for judge in judges:
        for set_name, aspects in JUDGED.items():
            subset = [a for a in answers if a.set == set_name and a.error is None]
            if not subset:
                continue
            items = [JudgeItem(a.question, a.answer) for a in subset]
            for aspect in aspects:
                got = judge.judge(aspect, items)
                verdicts[judge.name].setdefault(aspect, {}).update(
                    {a.id: v for a, v in zip(subset, got)}
                )
                if advance is not None:
                    advance(len(items))
    return verdicts


def _values(
    answers: list[Answer], table: dict[str, Verdict] | None, invert: bool = False
) -> list | None:
    """Verdict values aligned with answers (None = missing); None when the judge cannot rate."""
    if table is None:
        return None
    got = [table.get(a.id) for a in answers]
    if got and all(v is not None and v.status == "unsupported" for v in got):
        return None
    out = []
    for v in got:
        if v is None or v.status != "ok":
            out.append(None)
        else:
            out.append((not v.value) if invert else v.value)
    return out


def mode_metrics(
    cfg: EvalConfig, answers: list[Answer], verdicts
) -> dict[str, dict[str, Estimate]]:
    """metrics[name][judge] for one mode (goal hijacking is judged by rule: judge 'rule')."""
    boot = {
        "samples": cfg.bootstrap.samples,
        "confidence": cfg.bootstrap.confidence,
        "seed": cfg.bootstrap.seed,
    }
    by_set: dict[str, list[Answer]] = {}
    for a in answers:
        by_set.setdefault(a.set, []).append(a)
    metrics: dict[str, dict[str, Estimate]] = {}

    def put(name: str, judge: str, values: list | None, unit: str) -> None:
        if values is not None and len(values):
            metrics.setdefault(name, {})[judge] = estimate(values, unit=unit, **boot)

    harmful = by_set.get("harmful", [])
    helpful = by_set.get("helpful", [])
    safe_xs = [a for a in by_set.get("over_refusal", []) if a.safe]
    unsafe_xs = [a for a in by_set.get("over_refusal", []) if a.safe is False]
    for judge, tables in verdicts.items():
        put("harmless_rate", judge, _values(harmful, tables.get("harmless_verdict")), "rate")
        put("harmless_score", judge, _values(harmful, tables.get("harmless_score")), "score")
        put(
            "helpful_on_harmful", judge, _values(harmful, tables.get("helpful_on_harmful")), "score"
        )
        put("helpful_score", judge, _values(helpful, tables.get("helpful_score")), "score")
        put("over_refusal", judge, _values(safe_xs, tables.get("refusal")), "rate")
        put("contrast_refusal", judge, _values(unsafe_xs, tables.get("refusal")), "rate")
    attacks = [a for a in by_set.get("goal_hijacking", []) if a.target]
    if attacks:
        defended = [None if a.error else not complied(a.answer, a.target) for a in attacks]
        put("goal_hijack_defence", "rule", defended, "rate")
    return metrics


def agreement(verdicts, answers: list[Answer]) -> dict[str, dict[str, dict]]:
    """Cohen's kappa for every pair of judges on each binary aspect they both rated."""
    out: dict[str, dict[str, dict]] = {}
    ids = [a.id for a in answers]
    for aspect in ("harmless_verdict", "refusal"):
        judged = {
            j: t[aspect]
            for j, t in verdicts.items()
            if aspect in t and any(v.status != "unsupported" for v in t[aspect].values())
        }
        for ja, jb in combinations(sorted(judged), 2):
            keys = [i for i in ids if i in judged[ja] and i in judged[jb]]

            def val(v: Verdict):
                return v.value if v.status == "ok" else None

            k = cohen_kappa([val(judged[ja][i]) for i in keys], [val(judged[jb][i]) for i in keys])
            out.setdefault(aspect, {})[f"{ja} vs {jb}"] = k
    return out


def headline(
    metrics: dict[str, dict[str, Estimate]], discrimination: Estimate | None, primary: str
) -> dict:
    """The table row: each column from the primary judge, else the first judge with a usable value.

    The row names the judge behind every column, so a fallback is never hidden.
    """
    row: dict[str, Any] = {}
    for name in HEADLINE_METRICS:
        if name == "discrimination":
            row[name] = {"judge": "probe", **discrimination.to_dict()} if discrimination else None
            continue
        per_judge = {j: e for j, e in metrics.get(name, {}).items() if e.value is not None}
        judge = primary if primary in per_judge else next(iter(per_judge), None)
        row[name] = {"judge": judge, **per_judge[judge].to_dict()} if judge else None
    return row


def _hf_model(cfg: EvalConfig, backend) -> tuple[Any, Any] | None:
    """(model, tokenizer) for the probe: the backend's own if it exposes them, else loaded."""
    inner = getattr(backend, "backend", backend)
    model, tok = getattr(inner, "model", None), getattr(inner, "tokenizer", None)
    if model is not None and tok is not None and hasattr(model, "parameters"):
        return model, tok
    if cfg.model.kind != "transformers":
        return None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axolotl_mistake.models import ensure_embedded_model

    name = str(ensure_embedded_model()) if cfg.model.model == "embedded" else cfg.model.model
    tok = AutoTokenizer.from_pretrained(name, revision=cfg.model.revision)
    model = AutoModelForCausalLM.from_pretrained(name, revision=cfg.model.revision)
    if cfg.model.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.model.adapter)
    return model, tok


def run_discrimination(
    cfg: EvalConfig, backend, loaded: LoadedSets, notes: list[str]
) -> tuple[Estimate | None, dict]:
    """Discrimination accuracy with the shared probe (local models only; endpoints give no logprobs)."""
    if not loaded.pairs:
        return None, {}
    pair = _hf_model(cfg, backend)
    if pair is None:
        notes.append(
            "discrimination: not measured (needs a local model; endpoints give no verdict likelihoods)"
        )
        return None, {}
    from axolotl_mistake.probe import DiscriminationProbe

    model, tok = pair
    result = DiscriminationProbe(loaded.pairs, style=cfg.prompt_format).evaluate(
        model, tok, batch_size=cfg.probe_batch_size
    )
    correct = [p == y for p, y in zip(result.predictions, result.labels)]
    est = estimate(
        correct,
        unit="rate",
        samples=cfg.bootstrap.samples,
        confidence=cfg.bootstrap.confidence,
        seed=cfg.bootstrap.seed,
    )
    detail = {
        "balanced_accuracy": result.balanced_accuracy,
        "harmful_recall": result.harmful_recall,
        "harmless_recall": result.harmless_recall,
        "predicted_harmful_share": sum(result.predictions) / len(result.predictions),
        "seconds": result.seconds,
        "style": result.style,
    }
    return est, detail


def _public_config(cfg: EvalConfig) -> dict:
    """The config as recorded in results.json (holds env-var names, never key values)."""
    return json.loads(cfg.model_dump_json())


def run(cfg: EvalConfig, progress: bool = True) -> dict:
    """Run the whole evaluation; return the results dict (also written to the run folder)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from axolotl_mistake.evaluate.charts import run_charts
    from axolotl_mistake.evaluate.report import render_run_report

    started = time.time()
    loaded = load_prompt_sets(cfg.prompt_sets)  # InputError here: nothing written yet
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    notes = list(loaded.notes)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    backend = _cached(cfg.model, out / "cache.sqlite")
    judges = make_judges(cfg, backend, out)
    timings["load_s"] = time.perf_counter() - t0
    params = SamplingParams(
        max_new_tokens=cfg.sampling.max_new_tokens,
        temperature=cfg.sampling.temperature,
        top_p=cfg.sampling.top_p,
        stop=ALPACA_STOP if cfg.prompt_format == "alpaca" else (),
        seed=cfg.sampling.seed,
    )
    batch = cfg.batch_size or cfg.model.batch_size
    items = [it for name in SET_NAMES for it in loaded.items.get(name, [])]
    n_judged = sum(len(loaded.items.get(s, [])) * len(a) for s, a in JUDGED.items()) * len(judges)

    answers: dict[str, list[Answer]] = {}
    verdicts: dict[str, dict] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
        transient=False,
    ) as bar:
        for mode in cfg.modes:
            task = bar.add_task(f"answer ({mode})", total=len(items))
            t0 = time.perf_counter()
            answers[mode] = answer_items(
                backend,
                items,
                mode,
                cfg.prompt_format,
                params,
                batch,
                advance=lambda n, t=task: bar.advance(t, n),
            )
            timings[f"answer_{mode}_s"] = time.perf_counter() - t0
            task = bar.add_task(f"judge ({mode})", total=n_judged)
            t0 = time.perf_counter()
            verdicts[mode] = judge_answers(
                judges, answers[mode], advance=lambda n, t=task: bar.advance(t, n)
            )
            timings[f"judge_{mode}_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    disc, disc_detail = run_discrimination(cfg, backend, loaded, notes)
    timings["discrimination_s"] = time.perf_counter() - t0

    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "produced_by": "axolotl-mistake",
        "name": cfg.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": _public_config(cfg),
        "primary_judge": cfg.primary,
        "judges": [j.name for j in judges],
        "modes": list(cfg.modes),
        "counts": {name: len(v) for name, v in loaded.items.items()}
        | {"discrimination_pairs": len(loaded.pairs)},
        "metrics": {},
        "headline": {},
        "agreement": {},
        "unparseable": {},
        "discrimination": ({**disc.to_dict(), **disc_detail} if disc else None),
        "notes": notes,
        "timings": {},
        "cache": dict(getattr(backend, "stats", {})),
        "platform": {"python": platform.python_version(), "machine": platform.machine()},
    }
    for mode in cfg.modes:
        metrics = mode_metrics(cfg, answers[mode], verdicts[mode])
        results["metrics"][mode] = {
            k: {j: e.to_dict() for j, e in v.items()} for k, v in metrics.items()
        }
        results["headline"][mode] = headline(metrics, disc, cfg.primary)
        results["agreement"][mode] = agreement(verdicts[mode], answers[mode])
        results["unparseable"][mode] = {
            judge: {
                aspect: sum(v.status == "unparseable" for v in table.values())
                for aspect, table in tables.items()
            }
            for judge, tables in verdicts[mode].items()
        }
    timings["total_s"] = time.time() - started
    results["timings"] = {k: round(v, 2) for k, v in timings.items()}

    lines = []
    for mode in cfg.modes:
        for a in answers[mode]:
            row = a.to_dict()
            row["verdicts"] = {
                judge: {
                    aspect: table[a.id].to_dict()
                    for aspect, table in tables.items()
                    if a.id in table
                }
                for judge, tables in verdicts[mode].items()
            }
            lines.append(json.dumps(row, ensure_ascii=False))
    write_atomic(out / "answers.jsonl", "\n".join(lines) + ("\n" if lines else ""))
    charts = run_charts(results, out)
    results["charts"] = [p.name for p in charts]
    write_atomic(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_atomic(out / "report.md", render_run_report(results))
    return results
