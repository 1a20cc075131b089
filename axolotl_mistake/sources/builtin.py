"""The project's own shipped instruction sets (axolotl_mistake/data/), written for this project.

`redteam` (harmful instructions with harmless reference answers), `helpful` (ordinary instructions
with reference answers) and `probe_pairs` (labelled question/answer pairs for the discrimination
probe). Read with the same strict checks as user files. Never holds copied public data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from axolotl_mistake.records import LabelledPair, SourceRow
from axolotl_mistake.sources.base import Record, limited
from axolotl_mistake.sources.readers import iter_file_records

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
NAMES = ("redteam", "helpful", "probe_pairs")


class BuiltinSource(BaseModel):
    """One of the shipped sets. Row ids: `builtin:<name>:<line>`."""

    model_config = ConfigDict(extra="forbid")

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


def _records(cfg: BuiltinSource) -> Iterator[Record]:
    return iter_file_records(str(cfg.file))


def _rows(cfg: BuiltinSource) -> Iterator[SourceRow]:
    tag = cfg.source_tag
    for rec in _records(cfg):
        common = {"id": f"{tag}:{rec.line}", "source": tag, "file": rec.file, "line": rec.line}
        if cfg.name == "probe_pairs":
            question, answer, harmful = (
                rec.text("question"),
                rec.text("answer"),
                rec.flag("harmful"),
            )
            yield SourceRow(
                instruction=question,
                kind="harmful" if harmful else "unknown",
                unsafe_answer=answer if harmful else None,
                safe_answer=None if harmful else answer,
                **common,
            )
            continue
        instruction, input_, output = (
            rec.text("instruction"),
            rec.opt_text("input") or "",
            rec.text("output"),
        )
        if cfg.name == "redteam":
            yield SourceRow(
                instruction=instruction,
                input=input_,
                kind="harmful",
                safe_answer=output,
                meta={"category": rec.text("category")},
                **common,
            )
        else:
            yield SourceRow(
                instruction=instruction, input=input_, kind="helpful", safe_answer=output, **common
            )


def iter_rows(cfg: BuiltinSource) -> Iterator[SourceRow]:
    """Rows of the chosen shipped set, in file order."""
    return limited(_rows(cfg), cfg.limit)


def _pairs(cfg: BuiltinSource) -> Iterator[LabelledPair]:
    for row in _rows(cfg):
        question = f"{row.instruction}\n{row.input}" if row.input else row.instruction
        if row.unsafe_answer is not None:
            yield LabelledPair(
                question=question, answer=row.unsafe_answer, harmful=True, source=row.id
            )
        if row.safe_answer is not None:
            yield LabelledPair(
                question=question, answer=row.safe_answer, harmful=False, source=row.id
            )


def iter_pairs(cfg: BuiltinSource) -> Iterator[LabelledPair]:
    """probe_pairs as written; redteam/helpful reference answers as harmless pairs."""
    return limited(_pairs(cfg), cfg.limit)
