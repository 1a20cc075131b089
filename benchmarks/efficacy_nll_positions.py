"""Where in an answer does the mistake-analysis arms' NLL cost fall? Exploratory; run after
`efficacy_smollm2.py`, never part of its goals.

    python benchmarks/efficacy_nll_positions.py [--work outputs/efficacy_smollm2] [--arms ...]

Every arm scores the same held-out Alpaca reference answers as its evaluation's `helpful_nll`
(its `analysis` evaluation config: prompts, format, limit; plain mode), token by token. The
answer is cut into segments by token position (the opening tokens, the middle, the rest), and
each arm's mean NLL per segment is compared with SFT-only's *paired* over items (the same
reference tokens under both models), with a bootstrap interval. A cost in the opening tokens
only would mean critique training moved how answers start (its verdict sentence leaking into
answers); a cost spread through the answer is a general one. Each arm's whole-answer mean is
checked against its results.json before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from efficacy_smollm2 import (
    LABELS,
    add_run_arguments,
    eval_paths,
    evaluated_run,
    write_diagnostic,
)

from axolotl_mistake.evaluate.metrics import estimate

SEGMENTS = ((0, 4), (4, 16), (16, None))
"""Token positions [start, end) of the answer; None = to its end."""
TOLERANCE = 1e-3
"""Largest accepted gap between the recomputed whole-answer mean and the evaluation's."""


def segment_name(start: int, end: int | None) -> str:
    return f"tokens {start + 1}-{end}" if end else f"tokens {start + 1}+"


def segment_means(tokens: list[float] | None) -> dict[str, float | None]:
    """An item's mean NLL over the whole answer and over each segment (None where empty), and
    each segment's share of the answer's tokens (`<segment> weight`): the whole-answer mean is
    the weighted sum of the segment means, so a gap splits exactly into segment contributions."""
    out: dict[str, float | None] = {"whole": None if not tokens else sum(tokens) / len(tokens)}
    for start, end in SEGMENTS:
        part = (tokens or [])[start:end]
        name = segment_name(start, end)
        out[name] = sum(part) / len(part) if part else None
        out[f"{name} weight"] = len(part) / len(tokens) if tokens else None
    return out


def score_arm(config: Path) -> tuple[list[dict[str, float | None]], float | None, list[str]]:
    """Per helpful item its segment means, the evaluation's recorded helpful_nll, and the
    items' ids (pairing arms needs the same items in the same order)."""
    from axolotl_mistake.evaluate.inputs import load_config
    from axolotl_mistake.evaluate.likelihood import reference_token_nll
    from axolotl_mistake.evaluate.local import context_of, hf_model
    from axolotl_mistake.evaluate.prompt_sets import load_prompt_sets

    cfg = load_config(config)
    items = load_prompt_sets(cfg.prompt_sets).items.get("helpful") or []
    if not items:
        raise SystemExit(f"error: {config}: prompt_sets.helpful is empty")
    loaded = hf_model(cfg, backend=None)
    if loaded is None:
        raise SystemExit(f"error: {config}: token NLLs need a local model")
    model, tokenizer = loaded
    tokens, _ = reference_token_nll(
        model,
        tokenizer,
        items,
        "plain",
        cfg.prompt_format,
        chat=getattr(cfg.model, "chat", "auto"),
        max_context=context_of(None, model, tokenizer),
        batch_size=cfg.probe_batch_size,
    )
    results = json.loads((Path(cfg.output_dir) / "results.json").read_text())
    nll = results.get("metrics", {}).get("plain", {}).get("helpful_nll", {})
    recorded = nll.get("likelihood", {}).get("value")  # the metric's one "judge": the likelihood
    return [segment_means(t) for t in tokens], recorded, [item.id for item in items]


def check_same_items(ids: dict[str, list[str]], reference: str = "sft") -> None:
    """Stop unless every arm scored the reference arm's helpful items, in its order: a paired
    gap over items matched by position alone would compare different answers."""
    for arm, arm_ids in ids.items():
        if arm_ids != ids[reference]:
            raise SystemExit(
                f"error: {arm}: its {len(arm_ids)} helpful items are not {reference}'s "
                f"{len(ids[reference])}; evaluate both with the same prompt_sets.helpful"
            )


def paired(arm: list[dict[str, float | None]], sft: list[dict[str, float | None]], key: str):
    """Mean of the per-item differences (arm − SFT-only) over items both score."""
    pairs = zip(arm, sft, strict=True)  # the same items, in order (check_same_items)
    diffs = [a[key] - s[key] for a, s in pairs if a[key] is not None and s[key] is not None]
    return estimate(diffs, unit="nats")


def contribution(arm: list[dict[str, float | None]], sft: list[dict[str, float | None]], key: str):
    """The segment's part of the whole-answer gap: per item, its token share times its gap
    (an item without the segment adds 0), averaged over the items; the parts sum to the gap."""
    parts = []
    for a, s in zip(arm, sft, strict=True):
        if a["whole"] is None or s["whole"] is None:
            continue
        weight = a[f"{key} weight"] or 0.0
        parts.append(0.0 if not weight else weight * (a[key] - s[key]))
    return estimate(parts, unit="nats")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(
        ap,
        reads="evaluated arms are",
        arms="arms to score, each evaluated under --work; sft is the paired reference",
        default="base,sft,paper,origin,anchored",
    )
    args = ap.parse_args(argv)
    work, arms = evaluated_run(ap, args)
    if "sft" not in arms:
        ap.error("--arms must include sft (the paired reference)")
    segments = [segment_name(s, e) for s, e in SEGMENTS]
    per_arm: dict[str, list[dict[str, float | None]]] = {}
    arm_means: dict[str, dict[str, Any]] = {}
    item_ids: dict[str, list[str]] = {}
    for arm in arms:
        per_arm[arm], recorded, item_ids[arm] = score_arm(eval_paths(work, arm)[0])
        arm_means[arm] = {
            k: estimate([m[k] for m in per_arm[arm]], unit="nats") for k in ["whole", *segments]
        }
        whole = arm_means[arm]["whole"].value
        if recorded is None or whole is None or abs(whole - recorded) > TOLERANCE:
            raise SystemExit(
                f"error: {arm}: recomputed NLL {whole} differs from results.json {recorded}"
            )
        print(f"{arm}: whole-answer NLL {whole:.4f} (results.json {recorded:.4f})")
    check_same_items(item_ids)
    records: dict[str, Any] = {}
    lines = [
        "| arm | NLL (n) | paired gap to SFT-only | "
        + " | ".join(f"{k}: gap per token / part of the gap" for k in segments)
        + " |",
        "|---|---|---|" + "---|" * len(segments),
    ]
    for arm in arms:
        means = arm_means[arm]
        record: dict[str, Any] = {"mean": {k: e.to_dict() for k, e in means.items()}}
        cells = [f"{means['whole'].value:.3f} ({means['whole'].n})"]
        if arm == "sft":
            cells += ["-"] * (1 + len(segments))
        else:
            sft = per_arm["sft"]
            gap = paired(per_arm[arm], sft, "whole")
            seg_gaps = {k: paired(per_arm[arm], sft, k) for k in segments}
            parts = {k: contribution(per_arm[arm], sft, k) for k in segments}
            record["paired_gap_to_sft"] = {"whole": gap.to_dict()} | {
                k: e.to_dict() for k, e in seg_gaps.items()
            }
            record["part_of_gap"] = {k: e.to_dict() for k, e in parts.items()}
            cells.append(f"{gap.value:+.3f} [{gap.low:+.3f}, {gap.high:+.3f}]")
            cells += [
                f"{seg_gaps[k].value:+.3f} [{seg_gaps[k].low:+.3f}, {seg_gaps[k].high:+.3f}] / "
                f"{parts[k].value:+.3f} [{parts[k].low:+.3f}, {parts[k].high:+.3f}]"
                for k in segments
            ]
        records[arm] = record
        lines.append(f"| {LABELS[arm]} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    write_diagnostic(work, "nll_positions", table, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
