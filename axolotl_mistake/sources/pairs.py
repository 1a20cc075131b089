"""Labelled pairs loader: `{question, answer, harmful}` records, the format the plugin's
`mistake_probe_pairs` reads, usable wherever a source is.

Each record is validated against `records.LabelledPair` (the one definition of a pair; strict
types, no unknown fields), errors naming file, line and field. As rows for the builder, a
harmful answer becomes an origin mistake (`unsafe_answer`) and a harmless one a harmless answer
(`safe_answer`); as pairs they are yielded as written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from axolotl_mistake.records import LabelledPair, SourceRow
from axolotl_mistake.sources.base import Record, SourceBase
from axolotl_mistake.sources.readers import file_format
from axolotl_mistake.sources.stream import iter_records


class PairsSource(SourceBase):
    """JSONL/JSON/Parquet (or a Hub dataset) of `{question, answer, harmful}` labelled pairs,
    with an optional `source` string per pair (null counts as absent). Row id: `<tag>:<line>`."""

    kind: Literal["pairs"] = Field(default="pairs", description="Selects this loader.")

    @model_validator(mode="after")
    def _typed_file(self) -> PairsSource:
        if self.path is not None and file_format(self.path)[0] == "csv":
            raise ValueError(
                "labelled pairs need typed values (`harmful: true`): use a .jsonl, .json or "
                ".parquet file, not CSV"
            )
        return self

    def rows(self) -> Iterator[SourceRow]:
        """One row per pair: harmful answers as `unsafe_answer` (kind harmful), harmless ones as
        `safe_answer` (kind unknown: a harmless answer says nothing about the question)."""
        tag = self.source_tag
        for rec, pair in _records(self):
            yield rec.row(
                tag,
                instruction=pair.question,
                kind="harmful" if pair.harmful else "unknown",
                unsafe_answer=pair.answer if pair.harmful else None,
                safe_answer=None if pair.harmful else pair.answer,
                meta={"pair_source": pair.source} if pair.source else {},
            )

    def pairs(self) -> Iterator[LabelledPair]:
        """The pairs as written; a pair without its own `source` gets its row id."""
        tag = self.source_tag
        for rec, pair in _records(self):
            yield pair if pair.source else pair.model_copy(update={"source": f"{tag}:{rec.line}"})


def _pair(rec: Record) -> LabelledPair:
    """The record as a LabelledPair, or an InputError naming its first bad field."""
    data = rec.data
    if "source" in data and data["source"] is None:  # the `datasets` library fills absent keys
        data = {k: v for k, v in data.items() if k != "source"}  # with null: absent, as documented
    try:
        pair = LabelledPair.model_validate(data, strict=True)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        if first["type"] == "missing":
            present = ", ".join(sorted(map(str, rec.data))) or "none"
            message = f"required field '{field}' is missing (fields present: {present})"
        elif first["type"] == "extra_forbidden":
            message = "unknown field; a labelled pair has question, answer, harmful, source"
        else:
            message = f"{first['msg']} (got {first['input']!r:.60})"
        raise rec.error(field, message) from None
    for key in ("question", "answer"):  # a blank one leaves nothing to judge
        rec.text(key)
    return pair


def _records(cfg: PairsSource) -> Iterator[tuple[Record, LabelledPair]]:
    for rec in iter_records(cfg):
        yield rec, _pair(rec)
