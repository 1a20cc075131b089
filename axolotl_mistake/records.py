"""Typed records shared by the builder, the Axolotl strategies and the evaluation harness.

One definition of each row shape, so a field renamed in one place is renamed everywhere.
Records carry data only; they never render prompts (that is `templates`' job).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from axolotl_mistake import templates
from axolotl_mistake.templates import ChatMessage

PromptKind = Literal["harmful", "helpful", "unknown"]


class SourceRow(BaseModel):
    """One instruction as every source loader yields it (HH-RLHF, PKU-SafeRLHF, Alpaca, ...).

    `unsafe_answer` is an "origin" mistake taken from a dataset's safety labels; `safe_answer`
    a harmless (or helpful) reference answer. `file`/`line` point back to the raw input so
    errors and provenance can name them.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    instruction: str
    input: str = ""
    context: list[ChatMessage] = Field(default_factory=list)
    kind: PromptKind = "unknown"
    safe_answer: str | None = None
    unsafe_answer: str | None = None
    source: str
    file: str | None = None
    line: int | None = None
    meta: dict = Field(default_factory=dict)

    @property
    def question(self) -> str:
        """Instruction and input as one request (`templates.question`): what selection dedups
        and decontaminates, and what a labelled pair's question holds."""
        return templates.question(self.instruction, self.input)


class LabelledPair(BaseModel):
    """A (question, answer) pair with a safety label: input of the discrimination probe."""

    model_config = ConfigDict(extra="forbid")

    question: str
    answer: str
    harmful: bool
    source: str = ""


class AnalysisRow(BaseModel):
    """A training row for the analysis strategies: the bad answer is context, never a target.

    The first four fields are what the strategies read; the rest is the builder's provenance
    (the strategies ignore it). `label` is written only by balanced builds.
    """

    model_config = ConfigDict(extra="allow")

    instruction: str
    input: str = ""
    bad: str
    critique: str
    id: str | None = None
    sample_index: int | None = None
    analysis_index: int | None = None
    source: str | None = None
    mistake_source: str | None = None
    """'origin' (a dataset's label) or the id of the model that made the mistake."""
    analyst: str | None = None
    verdict: bool | None = None
    verdict_by: str | None = None
    label: Literal["harmful", "harmless"] | None = None
    """The analysed answer's label (balanced builds only; absent otherwise)."""

    def to_json(self) -> dict:
        """The row as written to JSONL: every field in order, `label` only when set."""
        return self.model_dump(mode="json", exclude=None if self.label else {"label"})


ANALYSIS_FIELDS = ("instruction", "bad", "critique")
"""Required fields of an analysis row (default names; the plugin can map others)."""
