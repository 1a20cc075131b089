"""Anthropic HH-RLHF loader (harmless-base): multi-turn transcripts -> instruction, context, answers.

Each row holds `chosen` and `rejected`, two full "\\n\\nHuman: ...\\n\\nAssistant: ..." transcripts
that share every turn but the last Assistant one. The last Human turn becomes the instruction,
earlier turns the context, the rejected last answer an origin mistake (`unsafe_answer`), the
chosen one the harmless reference (`safe_answer`). Chosen/rejected is a *preference*, not a safety
label (chosen is the *less* harmful turn, relative to rejected): never emit labelled pairs from
it unless the config asks for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from pydantic import Field, model_validator

from axolotl_mistake.records import LabelledPair, PromptKind, SourceRow
from axolotl_mistake.sources.base import Record, SourceBase, split_field
from axolotl_mistake.sources.stream import iter_records
from axolotl_mistake.templates import ChatMessage

HUB_ID = "Anthropic/hh-rlhf"
DEFAULT_DATA_DIR = "harmless-base"

_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


class HhRlhfSource(SourceBase):
    """HH-RLHF (Hub `Anthropic/hh-rlhf` with `data_dir`, or a local .jsonl.gz such as test.jsonl.gz).

    Turn parsing: the transcript is split at "\\n\\nHuman:" / "\\n\\nAssistant:"; one space after
    the colon and surrounding whitespace are dropped; consecutive turns of the same speaker (a few
    upstream rows have them) are joined with a blank line. An empty last answer gives `None` for
    that answer and `meta["empty_chosen"/"empty_rejected"] = True`; joined turns set
    `meta["merged_turns"] = True`. Row id: `<tag>:<line>`.
    """

    kind: Literal["hh_rlhf"] = Field(default="hh_rlhf", description="Selects this loader.")
    split: str = split_field("'train' or 'test'")
    prompt_kind: PromptKind = Field(
        default="harmful",
        description=(
            "`kind` given to every row. 'harmful' suits harmless-base and red-team data (the "
            "conversations are red-team attempts); use 'helpful' for helpful-base."
        ),
    )
    preference_as_safety_label: bool = Field(
        default=False,
        description=(
            "Let iter_labelled_pairs treat rejected answers as harmful and chosen ones as harmless. "
            "Off by default: HH preferences say which answer is better, not that one is unsafe."
        ),
    )

    @model_validator(mode="after")
    def _default_data_dir(self) -> HhRlhfSource:
        if self.hub_id == HUB_ID and self.data_dir is None:
            self.data_dir = DEFAULT_DATA_DIR
        return self

    def rows(self) -> Iterator[SourceRow]:
        """One row per chosen/rejected pair, in file order."""
        tag = self.source_tag
        for rec in iter_records(self):
            context, instruction, good, bad, merged = split_pair(rec)
            meta: dict = {"turns": len(context) + 2}
            if merged:
                meta["merged_turns"] = True
            if not good:
                meta["empty_chosen"] = True
            if not bad:
                meta["empty_rejected"] = True
            if good and good == bad:
                meta["identical_answers"] = True
            yield rec.row(
                tag,
                instruction=instruction,
                context=context,
                kind=self.prompt_kind,
                safe_answer=good or None,
                unsafe_answer=bad or None,
                meta=meta,
            )

    def pairs(self) -> Iterator[LabelledPair]:
        """None unless `preference_as_safety_label` (then rejected=harmful, chosen=harmless)."""
        if not self.preference_as_safety_label:
            return
        for row in self.rows():
            for answer, harmful, turn in (
                (row.unsafe_answer, True, "rejected"),
                (row.safe_answer, False, "chosen"),
            ):
                if answer:
                    yield LabelledPair(
                        question=row.instruction,
                        answer=answer,
                        harmful=harmful,
                        source=f"{row.id}:{turn}",
                    )


def parse_transcript(rec: Record, field: str) -> tuple[list[ChatMessage], bool]:
    """Alternating user/assistant turns (and whether same-speaker turns were joined), or raise."""
    text = rec.text(field)
    if text.startswith(("Human:", "Assistant:")):  # some copies drop the leading blank line
        text = "\n\n" + text
    parts = _TURN.split(text)
    if len(parts) == 1:
        raise rec.error(
            field, "no '\\n\\nHuman:' / '\\n\\nAssistant:' turns found in the transcript"
        )
    if parts[0].strip():
        raise rec.error(
            field, f"text before the first '\\n\\nHuman:' turn: {parts[0].strip()[:60]!r}"
        )
    turns: list[ChatMessage] = []
    merged = False
    for speaker, body in zip(parts[1::2], parts[2::2], strict=True):
        role = _ROLES[speaker]
        content = body.strip()
        if turns and turns[-1]["role"] == role:
            joined = "\n\n".join(p for p in (turns[-1]["content"], content) if p)
            turns[-1] = {"role": role, "content": joined}
            merged = True
        else:
            turns.append({"role": role, "content": content})
    if turns[0]["role"] != "user":
        raise rec.error(field, "the transcript must start with a Human turn")
    if turns[-1]["role"] != "assistant":
        raise rec.error(field, "the transcript must end with an Assistant turn")
    if not turns[-2]["content"]:
        raise rec.error(field, "the last Human turn (the instruction) is empty")
    return turns, merged


def split_pair(rec: Record) -> tuple[list[ChatMessage], str, str, str, bool]:
    """(context, instruction, chosen, rejected, merged) of one chosen/rejected row."""
    chosen, merged_c = parse_transcript(rec, "chosen")
    rejected, merged_r = parse_transcript(rec, "rejected")
    if chosen[:-1] != rejected[:-1]:
        at = next(
            (i for i, (a, b) in enumerate(zip(chosen, rejected)) if a != b),
            min(len(chosen), len(rejected)) - 1,
        )
        raise rec.error(
            "rejected",
            f"chosen and rejected differ before their last Assistant turn (first at turn {at + 1} "
            f"of {len(chosen)}/{len(rejected)}); they must share the conversation",
        )
    return (
        chosen[:-2],
        chosen[-2]["content"],
        chosen[-1]["content"],
        rejected[-1]["content"],
        merged_c or merged_r,
    )
