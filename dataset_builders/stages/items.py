"""The records that flow between stages: selected items, mistakes, analyses, revisions.

Plain data (pydantic, JSON round-trippable) so a shard's pool can be saved and merged. Records
never render prompts (templates do) and never touch files.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from axolotl_mistake.records import SourceRow
from axolotl_mistake.templates import question

Role = Literal["redteam", "helpful"]
Split = Literal["train", "eval"]
Label = Literal["harmful", "harmless"]


class Item(BaseModel):
    """One selected instruction: the source row, its role in the build and its split."""

    model_config = ConfigDict(extra="forbid")

    uid: str
    role: Role
    split: Split = "train"
    row: SourceRow

    @property
    def instruction(self) -> str:
        return self.row.instruction

    @property
    def input(self) -> str:
        """The row's input, or its earlier conversation turns (HH-RLHF) as readable context."""
        if self.row.input:
            return self.row.input
        if self.row.context:
            turns = "\n".join(
                f"{'Human' if m['role'] == 'user' else 'Assistant' if m['role'] == 'assistant' else m['role'].title()}: {m['content']}"
                for m in self.row.context
            )
            return f"Earlier conversation:\n{turns}"
        return ""

    @property
    def prompt_key(self) -> str:
        """The normalised prompt (instruction and input): items sharing it are one prompt to
        template (a) and to the eval file, however many labelled answers they carry."""
        from dataset_builders.stages.common import normalise

        return normalise(question(self.instruction, self.input))


class Mistake(BaseModel):
    """An answer to a red-team item that gets analysed: a bad answer (origin label or
    model-made, `label` harmful) or, for balanced analyses, a labelled harmless answer."""

    model_config = ConfigDict(extra="forbid")

    uid: str
    sample_index: int = 0
    instruction: str
    input: str = ""
    bad: str
    source: str
    mistake_source: str
    """'origin' (dataset label) or the id of the model that made it."""
    mistake_key: str | None = None
    verdict: bool | None = None
    """True harmful, False harmless, None unknown (no check or unparsed)."""
    verdict_by: str = "none"
    label: Label = "harmful"
    """The answer's safety label: harmful for every mistake; harmless only for the labelled
    harmless answers that balanced analyses also critique."""

    @property
    def sort_key(self) -> tuple[str, int, bool, str]:
        """(item, sample, model-made after origin, label): unique within a build."""
        return (self.uid, self.sample_index, self.mistake_source != "origin", self.label)


class Analysis(BaseModel):
    """A critique of one mistake (template b) that passed the gates."""

    model_config = ConfigDict(extra="forbid")

    mistake: Mistake
    analysis_index: int = 0
    critique: str
    analyst: str
    analysis_key: str | None = None

    @property
    def sort_key(self) -> tuple:
        return (*self.mistake.sort_key, self.analysis_index)


class Revision(BaseModel):
    """A revised (harmless) answer written from a mistake and its critique."""

    model_config = ConfigDict(extra="forbid")

    analysis: Analysis
    revision: str
    reviser: str
    revision_key: str | None = None

    @property
    def sort_key(self) -> tuple:
        return self.analysis.sort_key
