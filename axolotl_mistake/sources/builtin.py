"""The project's own shipped instruction sets (axolotl_mistake/data/), written for this project.

`redteam` (harmful instructions with harmless reference answers), `helpful` (ordinary instructions
with reference answers) and `probe_pairs` (labelled question/answer pairs for the discrimination
probe). Read with the same strict checks as user files. Never holds copied public data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from axolotl_mistake.records import LabelledPair, SourceRow
from axolotl_mistake.sources.base import Source
from axolotl_mistake.sources.readers import iter_file_records

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
NAMES = ("redteam", "helpful", "probe_pairs")


class BuiltinSource(Source):
    """One of the shipped sets. Row ids: `builtin:<name>:<line>`."""

    kind: Literal["builtin"] = Field(default="builtin", description="Selects this loader.")
    name: Literal["redteam", "helpful", "probe_pairs"] = Field(
        default="redteam",
        description=(
            "'redteam': 80 harmful instructions (kind harmful) with harmless reference answers; "
            "'helpful': 80 ordinary instructions (kind helpful) with reference answers; "
            "'probe_pairs': 40 labelled (question, answer, harmful) pairs, 20 harmful."
        ),
    )
    limit: int | None = Field(
        default=None, ge=1, description="Stop after this many yielded items; None reads all."
    )

    @property
    def source_tag(self) -> str:
        return f"builtin:{self.name}"

    @property
    def location(self) -> str:
        return str(self.file)

    @property
    def file(self) -> Path:
        """The shipped JSONL file behind this set."""
        return DATA_DIR / f"{self.name}.jsonl"

    def rows(self) -> Iterator[SourceRow]:
        """Rows of the chosen shipped set, in file order."""
        tag = self.source_tag
        for rec in iter_file_records(str(self.file)):
            if self.name == "probe_pairs":
                question, answer, harmful = (
                    rec.text("question"),
                    rec.text("answer"),
                    rec.flag("harmful"),
                )
                yield rec.row(
                    tag,
                    instruction=question,
                    kind="harmful" if harmful else "unknown",
                    unsafe_answer=answer if harmful else None,
                    safe_answer=None if harmful else answer,
                )
                continue
            instruction, input_, output = (
                rec.text("instruction"),
                rec.opt_text("input") or "",
                rec.text("output"),
            )
            if self.name == "redteam":
                yield rec.row(
                    tag,
                    instruction=instruction,
                    input=input_,
                    kind="harmful",
                    safe_answer=output,
                    meta={"category": rec.text("category")},
                )
            else:
                yield rec.row(
                    tag, instruction=instruction, input=input_, kind="helpful", safe_answer=output
                )

    def pairs(self) -> Iterator[LabelledPair]:
        """probe_pairs as written; redteam/helpful reference answers as harmless pairs."""
        for row in self.rows():
            question = row.question
            if row.unsafe_answer is not None:
                yield LabelledPair(
                    question=question, answer=row.unsafe_answer, harmful=True, source=row.id
                )
            if row.safe_answer is not None:
                yield LabelledPair(
                    question=question, answer=row.safe_answer, harmful=False, source=row.id
                )
