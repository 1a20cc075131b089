"""From answers and verdicts to metrics, driven by the metric table: judge the answers, average
each metric per judge, pick the headline cell, and compute Cohen's kappa between judges.

Pure bookkeeping over in-memory answers and verdicts (the judges themselves make the calls);
nothing here reads or writes files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations

from axolotl_mistake.evaluate.attacks import complied
from axolotl_mistake.evaluate.inference import Answer
from axolotl_mistake.evaluate.judges import Judge, JudgeItem, Verdict
from axolotl_mistake.evaluate.metric_table import (
    BINARY_ASPECTS,
    METRICS,
    TABLE_COLUMNS,
    MetricSpec,
    judged_aspects,
)
from axolotl_mistake.evaluate.metrics import cohen_kappa, estimate
from axolotl_mistake.evaluate.results import Cell, Estimate, Kappa

Verdicts = dict[str, dict[str, dict[str, Verdict]]]
"""judge label -> aspect -> answer id -> verdict."""

RULES: dict[str, Callable[[Answer], bool]] = {
    "goal_hijack_defence": lambda a: not complied(a.answer, a.target or ""),
}
"""Metrics measured by a rule on the answer itself (`MetricSpec.by == 'rule'`)."""


def judge_answers(
    judges: Sequence[Judge],
    answers: Sequence[Answer],
    advance: Callable[[int], None] | None = None,
) -> Verdicts:
    """Every judge's verdicts on the answered items of each judged set, for the aspects the
    metric table reads and the judge supports. Failed answers are not judged."""
    verdicts: Verdicts = {j.name: {} for j in judges}
    for judge in judges:
        for set_name, aspects in judged_aspects().items():
            subset = [a for a in answers if a.set == set_name and a.error is None]
            if not subset:
                continue
            items = [JudgeItem(a.question, a.answer) for a in subset]
            for aspect in aspects:
                if aspect not in judge.aspects:
                    continue
                got = judge.judge(aspect, items)
                verdicts[judge.name].setdefault(aspect, {}).update(
                    {a.id: v for a, v in zip(subset, got)}
                )
                if advance is not None:
                    advance(len(items))
    return verdicts


def judged_calls(judges: Sequence[Judge], counts: dict[str, int]) -> int:
    """How many verdicts `judge_answers` will ask for, given item counts per set (progress)."""
    return sum(
        counts.get(set_name, 0)
        for judge in judges
        for set_name, aspects in judged_aspects().items()
        for aspect in aspects
        if aspect in judge.aspects
    )


def _value(table: dict[str, Verdict], answer: Answer) -> bool | int | None:
    verdict = table.get(answer.id)
    return verdict.value if verdict is not None and verdict.status == "ok" else None


def metric_values(
    spec: MetricSpec, answers: Sequence[Answer], table: dict[str, Verdict] | None = None
) -> list[tuple[str, bool | int | None]]:
    """(answer id, value) of every answer a judged or rule metric averages: the answers of its
    prompt set (XSTest's restricted by `safe`), valued by the judge's verdict `table` (an
    unparseable verdict or a failed, unjudged answer is None) or, for a rule metric, by the rule
    on each answer with a target. The run's own metric and a paired comparison of two runs
    (`paired.py`) both read answers through this."""
    subset = [
        a
        for a in answers
        if a.set == spec.prompt_set and (spec.safe is None or a.safe is spec.safe)
    ]
    if spec.aspect:
        return [(a.id, _value(table or {}, a)) for a in subset]
    if spec.by == "rule":
        return [(a.id, None if a.error else RULES[spec.name](a)) for a in subset if a.target]
    return []


def mode_metrics(
    answers: Sequence[Answer],
    verdicts: Verdicts,
    boot: dict,
    measured: dict[str, Estimate] | None = None,
) -> dict[str, dict[str, Estimate]]:
    """metric -> judge (or 'rule', 'probe', 'likelihood') -> estimate, for one mode.

    Judged metrics average the verdicts of their set's answers (a failed answer or an
    unparseable verdict counts as missing); `measured` holds the probe and likelihood metrics,
    computed elsewhere and filed under their `by`.
    """
    metrics: dict[str, dict[str, Estimate]] = {}
    for spec in METRICS:
        if spec.aspect:
            for judge, tables in verdicts.items():
                table = tables.get(spec.aspect)
                values = (
                    [] if table is None else [v for _, v in metric_values(spec, answers, table)]
                )
                if values:
                    metrics.setdefault(spec.name, {})[judge] = estimate(
                        values, unit=spec.unit, **boot
                    )
        elif spec.by == "rule":
            values = [v for _, v in metric_values(spec, answers)]
            if values:
                metrics.setdefault(spec.name, {})["rule"] = estimate(values, unit=spec.unit, **boot)
        elif measured and spec.name in measured:
            metrics.setdefault(spec.name, {})[spec.by or "measured"] = measured[spec.name]
    return metrics


def agreement(verdicts: Verdicts, answers: Sequence[Answer]) -> dict[str, dict[str, Kappa]]:
    """Cohen's kappa for every pair of judges on each binary aspect they both rated."""
    out: dict[str, dict[str, Kappa]] = {}
    ids = list(dict.fromkeys(a.id for a in answers))  # sets may share row ids: count once
    for aspect in BINARY_ASPECTS:
        judged = {j: t[aspect] for j, t in verdicts.items() if aspect in t}
        for ja, jb in combinations(sorted(judged), 2):
            keys = [i for i in ids if i in judged[ja] and i in judged[jb]]

            def val(v: Verdict) -> bool | int | None:
                return v.value if v.status == "ok" else None

            out.setdefault(aspect, {})[f"{ja} vs {jb}"] = cohen_kappa(
                [val(judged[ja][i]) for i in keys], [val(judged[jb][i]) for i in keys]
            )
    return out


def unparseable(verdicts: Verdicts) -> dict[str, dict[str, int]]:
    """judge -> aspect -> number of replies that held no well-formed verdict."""
    return {
        judge: {
            aspect: sum(v.status == "unparseable" for v in table.values())
            for aspect, table in tables.items()
        }
        for judge, tables in verdicts.items()
    }


def headline(metrics: dict[str, dict[str, Estimate]], primary: str) -> dict[str, Cell | None]:
    """The table row: each column from the primary judge, else the first with a usable value.

    The row names who measured every column, so a fallback is never hidden.
    """
    row: dict[str, Cell | None] = {}
    for name in TABLE_COLUMNS:
        per_judge = {j: e for j, e in metrics.get(name, {}).items() if e.value is not None}
        judge = primary if primary in per_judge else next(iter(per_judge), None)
        row[name] = Cell(judge=judge, **per_judge[judge].model_dump()) if judge else None
    return row
