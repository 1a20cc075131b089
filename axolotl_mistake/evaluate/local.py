"""Measurements that read the evaluated model's token probabilities instead of its answers:
the discrimination probe (accuracy, balanced accuracy, ROC AUC) and the reference-answer NLL.

Both need the model's weights in this process (a local `transformers` or `vllm` config); for an
endpoint they are noted as not measured. They never sample and never train.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from axolotl_mistake.evaluate.config import EvalConfig
from axolotl_mistake.evaluate.inference import Mode
from axolotl_mistake.evaluate.metrics import auc_estimate, balanced_accuracy_estimate, estimate
from axolotl_mistake.evaluate.prompt_sets import EvalItem
from axolotl_mistake.evaluate.results import Calibration, Discrimination, Estimate
from axolotl_mistake.records import LabelledPair

PAIRS_FILE = "discrimination_pairs.jsonl"
"""Per-pair margins and labels of the probe, in the run folder (to recompute or compare AUCs)."""
NLL_FILE = "helpful_nll.jsonl"
"""Per item and mode, the NLL of its reference answer: what a paired comparison of two runs reads."""

LOCAL_KINDS = ("transformers", "vllm")


def hf_model(cfg: EvalConfig, backend: Any) -> tuple[Any, Any] | None:
    """(model, tokenizer) with the adapter applied: the backend's own if it holds a torch model,
    else loaded for a local kind; None for an endpoint."""
    inner = getattr(backend, "backend", backend)
    model, tok = getattr(inner, "model", None), getattr(inner, "tokenizer", None)
    if model is not None and tok is not None and hasattr(model, "parameters"):
        return model, tok
    if cfg.model.kind not in LOCAL_KINDS:
        return None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axolotl_mistake.models import ensure_embedded_model

    name = str(ensure_embedded_model()) if cfg.model.model == "embedded" else cfg.model.model
    revision = getattr(cfg.model, "revision", None)
    tok = AutoTokenizer.from_pretrained(name, revision=revision)
    model = AutoModelForCausalLM.from_pretrained(name, revision=revision)
    adapter = getattr(cfg.model, "adapter", None)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return model, tok


def context_of(backend: Any, model: Any, tokenizer: Any) -> int | None:
    """The most tokens the model takes: the backend's limit, else the model's own."""
    from axolotl_mistake.generation.common import model_context_limit

    limit = getattr(backend, "max_context", None)
    return limit if isinstance(limit, int) else model_context_limit(model.config, tokenizer)


def pair_key(pair: LabelledPair) -> str:
    """A stable id of a pair's text, to match pairs across runs whatever their order."""
    blob = f"{pair.question}\x1f{pair.answer}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(blob).hexdigest()[:16]


def calibrate_threshold(
    cfg: EvalConfig, model: Any, tokenizer: Any, pairs: Sequence[LabelledPair]
) -> tuple[float, Calibration]:
    """The cut with the best balanced accuracy on training-side pairs (probe.best_threshold),
    fitted before any scored pair is probed, and the record of how it was fitted."""
    from axolotl_mistake.probe import DiscriminationProbe, best_threshold

    probe = DiscriminationProbe(pairs, style=cfg.style)  # type: ignore[arg-type]
    raw = probe.evaluate(model, tokenizer, batch_size=cfg.probe_batch_size)
    cut = best_threshold(raw.labels, raw.margins)
    fit = raw.at(cut)
    record = Calibration(
        n=fit.n,
        harmful=sum(fit.labels),
        auc=fit.auc,
        balanced_accuracy=fit.balanced_accuracy,
        seconds=round(fit.seconds, 2),
    )
    return cut, record


def run_discrimination(
    cfg: EvalConfig,
    model: Any,
    tokenizer: Any,
    pairs: Sequence[LabelledPair],
    calibration: Sequence[LabelledPair] = (),
) -> tuple[Discrimination, list[str]]:
    """The probe on every pair at the configured style and threshold (fixed, or calibrated
    first on `calibration`), with bootstrap intervals; and the JSONL lines (key, source,
    label, margin, prediction) of the pairs file."""
    from axolotl_mistake.probe import DiscriminationProbe

    record = None
    threshold = cfg.probe_threshold
    if threshold == "calibrated":
        threshold, record = calibrate_threshold(cfg, model, tokenizer, calibration)
    probe = DiscriminationProbe(pairs, style=cfg.style, threshold=float(threshold))  # type: ignore[arg-type]
    result = probe.evaluate(model, tokenizer, batch_size=cfg.probe_batch_size)
    boot = boot_args(cfg)
    correct = [p == y for p, y in zip(result.predictions, result.labels)]
    disc = Discrimination(
        style=result.style,
        threshold=result.threshold,
        n=result.n,
        accuracy=estimate(correct, unit="rate", **boot),
        balanced_accuracy=balanced_accuracy_estimate(result.labels, result.predictions, **boot),
        auc=auc_estimate(result.labels, result.margins, **boot),
        harmful_recall=result.harmful_recall,
        harmless_recall=result.harmless_recall,
        predicted_harmful_share=sum(result.predictions) / result.n if result.n else None,
        seconds=round(result.seconds, 2),
        pairs_file=PAIRS_FILE,
        calibration=record,
    )
    lines = [
        json.dumps(
            {
                "key": pair_key(pair),
                "source": pair.source,
                "harmful": label,
                "margin": margin,
                "predicted_harmful": predicted,
            },
            ensure_ascii=False,
        )
        for pair, label, margin, predicted in zip(
            pairs, result.labels, result.margins, result.predictions
        )
    ]
    return disc, lines


def discrimination_metrics(disc: Discrimination) -> dict[str, Estimate]:
    """The probe's numbers under their metric-table names."""
    return {
        "discrimination": disc.accuracy,
        "discrimination_balanced": disc.balanced_accuracy,
        "discrimination_auc": disc.auc,
    }


def run_helpful_nll(
    cfg: EvalConfig,
    model: Any,
    tokenizer: Any,
    items: Sequence[EvalItem],
    mode: Mode,
    max_context: int | None,
) -> tuple[Estimate, list[str], list[str]]:
    """Mean per-token NLL of the helpful set's reference answers in one mode, with its
    interval; items without a reference count as missing. Also the ids dropped for length,
    and one JSON line per item scored ({id, mode, nll}), so two runs can be compared item by
    item (`NLL_FILE`)."""
    from axolotl_mistake.evaluate.likelihood import reference_nll

    values, dropped = reference_nll(
        model,
        tokenizer,
        items,
        mode,
        cfg.prompt_format,
        chat=getattr(cfg.model, "chat", "auto"),
        max_context=max_context,
        batch_size=cfg.probe_batch_size,
    )
    too_long = set(dropped)
    scored = [(item.id, v) for v, item in zip(values, items) if item.id not in too_long]
    lines = [
        json.dumps({"id": item_id, "mode": mode, "nll": v})
        for item_id, v in scored
        if v is not None
    ]
    return estimate([v for _, v in scored], unit="nll", **boot_args(cfg)), dropped, lines


def boot_args(cfg: EvalConfig) -> dict:
    """The bootstrap settings as keyword arguments of the metric functions."""
    return {
        "samples": cfg.bootstrap.samples,
        "confidence": cfg.bootstrap.confidence,
        "seed": cfg.bootstrap.seed,
    }
