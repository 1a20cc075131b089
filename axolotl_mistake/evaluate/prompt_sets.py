"""Load the evaluation's prompt sets through the shared source loaders.

Harmful and helpful instructions, goal-hijacking attacks (ready-made ones such as Safety-Prompts,
and the project's own templates over any instruction set), XSTest over-refusal prompts and
labelled pairs for the discrimination probe. Reading only: no model calls, no writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from axolotl_mistake import templates
from axolotl_mistake.evaluate.attacks import build_attacks, extract_target
from axolotl_mistake.evaluate.config import GoalHijackingSet, PromptSet, PromptSets
from axolotl_mistake.records import LabelledPair, SourceRow

log = logging.getLogger(__name__)

SET_NAMES = ("harmful", "helpful", "goal_hijacking", "over_refusal")
"""Prompt sets the evaluated model answers (discrimination pairs are scored, not answered)."""


@dataclass
class EvalItem:
    """One prompt the evaluated model answers; `target` is set for goal-hijacking attacks.

    `safe` tells XSTest safe prompts (refusing them is over-refusal) from the contrast ones;
    `reference` is the source's reference answer (helpful set: the NLL metric reads it).
    """

    id: str
    set: str
    instruction: str
    input: str = ""
    reference: str | None = None
    target: str | None = None
    safe: bool | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def question(self) -> str:
        """The request as the user posed it (what judges read)."""
        return templates.question(self.instruction, self.input)


@dataclass
class LoadedSets:
    """All items by set, the labelled pairs, and notes about what could not be loaded."""

    items: dict[str, list[EvalItem]] = field(default_factory=dict)
    pairs: list[LabelledPair] = field(default_factory=list)
    calibration: list[LabelledPair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def digests(self) -> dict[str, str]:
        """sha256 of each set's items as the model is asked them (id, text, reference, target,
        safety flag) and of the labelled pairs, in order. Two runs with the same digests were
        evaluated on the same items wherever their files lay: their `prompt_sets` configs name
        paths, so the same files copied elsewhere read as other items there."""
        sets: dict[str, list[Any]] = {
            name: [
                [it.id, it.instruction, it.input, it.reference, it.target, it.safe] for it in items
            ]
            for name, items in self.items.items()
        }
        sets["discrimination_pairs"] = [[p.question, p.answer, p.harmful] for p in self.pairs]
        return {
            name: hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()
            for name, rows in sets.items()
        }


def _unique_rows(prompt_set: PromptSet) -> Iterator[SourceRow]:
    """Source rows with repeated (instruction, input) dropped, up to `limit` distinct prompts.

    Some sources yield one row per labelled answer (PKU-SafeRLHF gives each prompt twice);
    the model should answer each prompt once.
    """
    from axolotl_mistake.sources import iter_rows

    seen: set[tuple[str, str]] = set()
    for row in iter_rows(prompt_set.source):
        key = (row.instruction.strip(), row.input.strip())
        if key in seen:
            continue
        seen.add(key)
        yield row
        if prompt_set.limit is not None and len(seen) >= prompt_set.limit:
            return


def _item(name: str, row: SourceRow, **extra) -> EvalItem:
    return EvalItem(
        id=row.id,
        set=name,
        instruction=row.instruction,
        input=row.input,
        source=row.source,
        **extra,
    )


def load_instruction_set(name: str, prompt_set: PromptSet) -> list[EvalItem]:
    """Distinct prompts of any source as items of set `name` (harmful / helpful)."""
    return [_item(name, row, reference=row.safe_answer) for row in _unique_rows(prompt_set)]


def load_over_refusal(prompt_set: PromptSet) -> list[EvalItem]:
    """XSTest-like rows; a row is 'safe' when its label says so (else kind != harmful)."""
    items = []
    for row in _unique_rows(prompt_set):
        label = row.meta.get("label")
        safe = label == "safe" if isinstance(label, str) else row.kind != "harmful"
        meta = {k: row.meta[k] for k in ("type", "label", "focus") if k in row.meta}
        items.append(_item("over_refusal", row, safe=safe, meta=meta))
    return items


def load_attacks(prompt_set: PromptSet) -> tuple[list[EvalItem], int]:
    """Ready-made goal-hijacking prompts with an extractable target; returns (items, skipped).

    The target text is found in the prompt (`attacks.extract_target`); rows where it cannot be
    found are skipped and counted, never guessed.
    """
    items: list[EvalItem] = []
    skipped = 0
    meta = {"origin": prompt_set.source.kind}
    if prompt_set.source.kind == "safety_prompts":
        meta["lang"] = "zh"  # the dataset is Chinese
    for row in _unique_rows(prompt_set):
        item = _item("goal_hijacking", row, meta=dict(meta))
        item.target = extract_target(item.question)
        if item.target is None:
            skipped += 1
            continue
        items.append(item)
    return items, skipped


def _hub_unreachable(prompt_set: PromptSet, exc: Exception) -> bool:
    """A Hub source that could not be opened (offline): noted, not fatal. Local files and
    bad rows stay errors."""
    from axolotl_mistake.errors import InputError

    return (
        isinstance(exc, InputError)
        and exc.field == "hub_id"
        and getattr(prompt_set.source, "hub_id", None) is not None
    )


def load_goal_hijacking(cfg: GoalHijackingSet, notes: list[str]) -> list[EvalItem]:
    """Ready-made attacks (when reachable) plus attacks built from instructions with templates."""
    items: list[EvalItem] = []
    attacks = cfg.attack_set
    if attacks is not None:
        try:
            found, skipped = load_attacks(attacks)
        except Exception as exc:
            if not _hub_unreachable(attacks, exc):
                raise
            notes.append(f"goal_hijacking: attack prompts not loaded ({exc})")
            log.warning("goal-hijacking attack prompts not loaded: %s", exc)
        else:
            items.extend(found)
            if skipped:
                notes.append(
                    f"goal_hijacking: {skipped} attack rows skipped (no target text found)"
                )
    if cfg.from_instructions is not None:
        rows = [  # the whole task, input included: the attack hijacks what the row asks
            (row.id, row.question) for row in _unique_rows(cfg.from_instructions)
        ]
        for attack in build_attacks(rows, languages=cfg.languages):
            items.append(
                EvalItem(
                    id=attack.id,
                    set="goal_hijacking",
                    instruction=attack.prompt,
                    target=attack.target,
                    source=attack.source,
                    meta={
                        "origin": "templates",
                        "lang": attack.lang,
                        "injection": attack.injection_id,
                    },
                )
            )
    return items


def load_pairs(prompt_set: PromptSet) -> list[LabelledPair]:
    """Labelled (question, answer, harmful) pairs for the discrimination probe."""
    from axolotl_mistake.sources import iter_labelled_pairs

    return list(islice(iter_labelled_pairs(prompt_set.source), prompt_set.limit))


def load_calibration(prompt_set: PromptSet, scored: list[LabelledPair]) -> list[LabelledPair]:
    """The training-side pairs that fix the probe threshold.

    A threshold fitted on the pairs it is then scored on would inflate the accuracy, so a
    calibration pair that is also a discrimination pair is refused, as is a set that lacks
    one of the two labels (no cut can be fitted to one class).
    """
    from axolotl_mistake.errors import InputError

    pairs = load_pairs(prompt_set)
    field_name = "prompt_sets.calibration"
    scored_keys = {(p.question, p.answer) for p in scored}
    shared = [p for p in pairs if (p.question, p.answer) in scored_keys]
    if shared:
        raise InputError(
            f"{len(shared)} calibration pair(s) are also discrimination pairs (first: "
            f"{shared[0].question[:60]!r}); calibrate on training-side pairs only",
            field=field_name,
        )
    if len({p.harmful for p in pairs}) < 2:
        raise InputError(
            f"the calibration set has {len(pairs)} pair(s) and not both labels; a threshold "
            "needs harmful and harmless answers",
            field=field_name,
        )
    return pairs


def load_prompt_sets(sets: PromptSets) -> LoadedSets:
    """Load every configured set (raises InputError on bad input before anything is written)."""
    loaded = LoadedSets()
    if sets.harmful:
        loaded.items["harmful"] = load_instruction_set("harmful", sets.harmful)
    if sets.helpful:
        loaded.items["helpful"] = load_instruction_set("helpful", sets.helpful)
    if sets.goal_hijacking:
        loaded.items["goal_hijacking"] = load_goal_hijacking(sets.goal_hijacking, loaded.notes)
    if sets.over_refusal:
        loaded.items["over_refusal"] = load_over_refusal(sets.over_refusal)
    if sets.discrimination:
        loaded.pairs = load_pairs(sets.discrimination)
        if not loaded.pairs:
            loaded.notes.append("discrimination: the source yielded no labelled pairs")
    if sets.calibration:
        loaded.calibration = load_calibration(sets.calibration, loaded.pairs)
    for name, items in loaded.items.items():
        if not items:
            loaded.notes.append(f"{name}: the source yielded no prompts")
    return loaded
