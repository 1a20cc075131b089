"""Load the evaluation's prompt sets through the builder's source loaders.

Harmful and helpful instructions, goal-hijacking attacks (Safety-Prompts from the Hub and the
project's own templates over any instruction set), XSTest over-refusal prompts and labelled
pairs for the discrimination probe. Reading only: no model calls, no writes. Imports
`axolotl_mistake.sources` lazily so `axolotl_mistake` stays importable without it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import islice

from axolotl_mistake.evaluate.attacks import build_attacks, extract_target
from axolotl_mistake.evaluate.config import (
    GoalHijackingSet,
    HubGoalHijacking,
    PromptSet,
    PromptSets,
)
from axolotl_mistake.records import LabelledPair

log = logging.getLogger(__name__)

SET_NAMES = ("harmful", "helpful", "goal_hijacking", "over_refusal")
"""Prompt sets the evaluated model answers (discrimination pairs are scored, not answered)."""


@dataclass
class EvalItem:
    """One prompt the evaluated model answers; `target` is set for goal-hijacking attacks.

    `safe` tells XSTest safe prompts (refusing them is over-refusal) from the contrast ones.
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
        return f"{self.instruction}\n{self.input}" if self.input else self.instruction


@dataclass
class LoadedSets:
    """All items by set, the labelled pairs, and notes about what could not be loaded."""

    items: dict[str, list[EvalItem]] = field(default_factory=dict)
    pairs: list[LabelledPair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _source_config(source: dict):
    from pydantic import TypeAdapter

    from axolotl_mistake.sources import SourceConfig

    return TypeAdapter(SourceConfig).validate_python(source)


def _unique_rows(prompt_set: PromptSet):
    """Source rows with repeated (instruction, input) dropped, up to `limit` distinct prompts.

    Some sources yield one row per labelled answer (PKU-SafeRLHF gives each prompt twice);
    the model should answer each prompt once.
    """
    from axolotl_mistake.sources import iter_rows

    seen: set[tuple[str, str]] = set()
    for row in iter_rows(_source_config(prompt_set.source)):
        key = (row.instruction.strip(), row.input.strip())
        if key in seen:
            continue
        seen.add(key)
        yield row
        if prompt_set.limit is not None and len(seen) >= prompt_set.limit:
            return


def load_instruction_set(name: str, prompt_set: PromptSet) -> list[EvalItem]:
    """Distinct prompts of any source as items of set `name` (harmful / helpful)."""
    return [
        EvalItem(
            id=row.id,
            set=name,
            instruction=row.instruction,
            input=row.input,
            reference=row.safe_answer,
            source=row.source,
        )
        for row in _unique_rows(prompt_set)
    ]


def load_over_refusal(prompt_set: PromptSet) -> list[EvalItem]:
    """XSTest-like rows; a row is 'safe' when its label says so (else kind != harmful)."""
    items = []
    for row in _unique_rows(prompt_set):
        label = row.meta.get("label")
        safe = label == "safe" if isinstance(label, str) else row.kind != "harmful"
        items.append(
            EvalItem(
                id=row.id,
                set="over_refusal",
                instruction=row.instruction,
                input=row.input,
                safe=safe,
                source=row.source,
                meta={k: row.meta[k] for k in ("type", "label", "focus") if k in row.meta},
            )
        )
    return items


def load_hub_goal_hijacking(cfg: HubGoalHijacking) -> tuple[list[EvalItem], int]:
    """Safety-Prompts goal-hijacking rows with an extractable target; returns (items, skipped).

    Reads `cfg.path` (a local copy of instruction_attack_scenarios.json) or the Hub dataset
    with `datasets.load_dataset(hub_id, data_files=..., field="Goal_Hijacking")`. Rows whose
    target text cannot be found are skipped and counted, never guessed.
    """
    import datasets

    if cfg.path:
        ds = datasets.load_dataset("json", data_files=cfg.path, field=cfg.field, split="train")
        where = cfg.path
    else:
        ds = datasets.load_dataset(
            cfg.hub_id,
            data_files=cfg.data_file,
            field=cfg.field,
            split="train",
            revision=cfg.revision,
        )
        where = f"hub:{cfg.hub_id}/{cfg.data_file}"
    items: list[EvalItem] = []
    skipped = 0
    for index, row in enumerate(ds):
        if cfg.limit is not None and len(items) >= cfg.limit:
            break
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            from axolotl_mistake.errors import InputError

            raise InputError(
                "expected a non-empty string", file=where, line=index + 1, field="prompt"
            )
        target = extract_target(prompt)
        if target is None:
            skipped += 1
            continue
        items.append(
            EvalItem(
                id=f"safety_prompts:{cfg.field}:{index}",
                set="goal_hijacking",
                instruction=prompt,
                target=target,
                source=where,
                meta={"origin": "safety_prompts", "lang": "zh"},
            )
        )
    return items, skipped


def load_goal_hijacking(cfg: GoalHijackingSet, notes: list[str]) -> list[EvalItem]:
    """Hub attacks (when reachable) plus attacks built from instructions with our templates."""
    items: list[EvalItem] = []
    if cfg.hub is not None:
        try:
            hub_items, skipped = load_hub_goal_hijacking(cfg.hub)
        except (ConnectionError, OSError, ValueError) as exc:
            from axolotl_mistake.errors import InputError

            if isinstance(exc, InputError) or cfg.hub.path:
                raise
            notes.append(f"goal_hijacking: Safety-Prompts not loaded ({type(exc).__name__}: {exc})")
            log.warning("Safety-Prompts goal-hijacking rows not loaded: %s", exc)
        else:
            items.extend(hub_items)
            if skipped:
                notes.append(
                    f"goal_hijacking: {skipped} Safety-Prompts rows skipped (no target text found)"
                )
    if cfg.from_instructions is not None:
        rows = [(row.id, row.instruction) for row in _unique_rows(cfg.from_instructions)]
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

    return list(islice(iter_labelled_pairs(_source_config(prompt_set.source)), prompt_set.limit))


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
    for name, items in loaded.items.items():
        if not items:
            loaded.notes.append(f"{name}: the source yielded no prompts")
    return loaded
