"""Generic JSONL / CSV loader: any file whose columns map onto SourceRow fields via `fields`.

`fields` maps a SourceRow field name to a column name, e.g. {"instruction": "prompt",
"unsafe_answer": "response"}. A mapped column missing from the file is a bad mapping and an
InputError naming the column and the file. Never guesses a mapping.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, get_args

from pydantic import Field, field_validator, model_validator

from axolotl_mistake.errors import InputError
from axolotl_mistake.records import LabelledPair, PromptKind, SourceRow
from axolotl_mistake.sources.base import Record, SourceBase
from axolotl_mistake.sources.stream import iter_records

TARGETS = ("id", "instruction", "input", "context", "kind", "safe_answer", "unsafe_answer")
"""SourceRow fields a column may be mapped to."""

KINDS = get_args(PromptKind)
ROLES = ("system", "user", "assistant")


class _MappedSource(SourceBase):
    fields: dict[str, str] = Field(
        description=(
            "Map from SourceRow field to column name. Keys: 'instruction' (required), 'input', "
            "'safe_answer', 'unsafe_answer', 'kind' (values harmful/helpful/unknown), 'context' "
            "(JSON only: a list of {role, content}), 'id' (row id becomes '<tag>:<value>'; "
            "default '<tag>:<line>'). Mapped columns must exist in every record; null or empty "
            "values of optional fields count as absent."
        ),
    )
    prompt_kind: PromptKind = Field(
        default="unknown", description="`kind` of every row when no 'kind' column is mapped."
    )
    answers_are_safety_labels: bool = Field(
        default=True,
        description=(
            "Let iter_labelled_pairs emit (instruction, unsafe_answer, harmful) and "
            "(instruction, safe_answer, harmless) pairs. Turn off when the mapped answers are "
            "preferences rather than safety judgements."
        ),
    )

    @field_validator("fields")
    @classmethod
    def _check_mapping(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(TARGETS))
        if unknown:
            raise ValueError(
                f"unknown SourceRow field(s) {', '.join(map(repr, unknown))} as keys of `fields`; "
                f"allowed: {', '.join(TARGETS)}"
            )
        if "instruction" not in value:
            raise ValueError("`fields` must map 'instruction' to a column")
        empty = [k for k, v in value.items() if not v.strip()]
        if empty:
            raise ValueError(f"`fields.{empty[0]}` must name a column, got an empty string")
        return value

    def rows(self) -> Iterator[SourceRow]:
        """One row per record, mapped through `fields`, in file order."""
        tag = self.source_tag
        delimiter = self.delimiter if isinstance(self, CsvSource) else None
        for rec in iter_records(self, delimiter=delimiter):
            yield _row(self, tag, rec)

    def pairs(self) -> Iterator[LabelledPair]:
        """Pairs from mapped answers: unsafe_answer -> harmful, safe_answer -> harmless."""
        if not self.answers_are_safety_labels:
            return
        for row in self.rows():
            if row.unsafe_answer:
                yield LabelledPair(
                    question=row.instruction, answer=row.unsafe_answer, harmful=True, source=row.id
                )
            if row.safe_answer:
                yield LabelledPair(
                    question=row.instruction, answer=row.safe_answer, harmful=False, source=row.id
                )


class JsonlSource(_MappedSource):
    """Any JSON lines / JSON array / Parquet file (or Hub dataset) with a `fields` mapping."""

    kind: Literal["jsonl"] = Field(default="jsonl", description="Selects this loader.")


class CsvSource(_MappedSource):
    """Any CSV/TSV file with a header line (or a Hub dataset) with a `fields` mapping."""

    kind: Literal["csv"] = Field(default="csv", description="Selects this loader.")
    delimiter: str | None = Field(
        default=None,
        min_length=1,
        max_length=1,
        description=(
            "Column separator of a local `path` file; default ',' (or a tab for .tsv files). "
            "Not with `hub_id` (the `datasets` csv builder would not get it)."
        ),
    )

    @model_validator(mode="after")
    def _delimiter_needs_path(self) -> CsvSource:
        if self.delimiter is not None and self.path is None:
            raise ValueError(
                "`delimiter` only applies to a local file given with `path`; with `hub_id` it "
                "would be ignored and every line read as one column: read the file with `path`"
            )
        return self

    @field_validator("fields")
    @classmethod
    def _no_context(cls, value: dict[str, str]) -> dict[str, str]:
        if "context" in value:
            raise ValueError("'context' cannot be read from CSV (use a jsonl source)")
        return value


def _missing_column(rec: Record, target: str, column: str) -> InputError:
    present = ", ".join(sorted(map(str, rec.data))) or "none"
    return rec.error(
        column,
        f"column '{column}' (mapped to '{target}' by `fields`) is missing; columns present: {present}",
    )


def _context(rec: Record, column: str) -> list[dict]:
    value = rec.data[column]
    if value is None:
        return []
    if not isinstance(value, list):
        raise rec.error(column, "expected a list of {role, content} messages")
    out = []
    for i, msg in enumerate(value):
        where = f"{column}[{i}]"
        if not isinstance(msg, dict) or set(msg) != {"role", "content"}:
            raise rec.error(
                where, "each message must be an object with exactly 'role' and 'content'"
            )
        if msg["role"] not in ROLES:
            raise rec.error(
                f"{where}.role", f"expected one of {', '.join(ROLES)}, got {msg['role']!r:.40}"
            )
        if not isinstance(msg["content"], str):
            raise rec.error(f"{where}.content", "expected a string")
        out.append({"role": msg["role"], "content": msg["content"]})
    return out


def _row(cfg: _MappedSource, tag: str, rec: Record) -> SourceRow:
    cols = cfg.fields
    for target, column in cols.items():
        if column not in rec.data:
            raise _missing_column(rec, target, column)
    values: dict = {"instruction": rec.text(cols["instruction"])}
    for target in ("input", "safe_answer", "unsafe_answer"):
        if target in cols:
            text = rec.opt_text(cols[target])
            if text and text.strip():  # blank is no answer, as empty is
                values[target] = text
    kind: str = cfg.prompt_kind
    if "kind" in cols:
        raw_kind = rec.opt_text(cols["kind"])
        if raw_kind is not None and raw_kind.strip():  # null or blank: absent, as documented
            kind = rec.choice(cols["kind"], KINDS)
    if "context" in cols:
        values["context"] = _context(rec, cols["context"])
    row_id = None
    if "id" in cols:
        raw = rec.data[cols["id"]]
        if isinstance(raw, bool) or not isinstance(raw, (str, int)) or str(raw).strip() == "":
            raise rec.error(cols["id"], "row id must be a non-empty string or an integer")
        row_id = f"{tag}:{raw}"
    return rec.row(tag, row_id, kind=kind, **values)
