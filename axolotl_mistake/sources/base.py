"""Shared pieces of every source kind: the `Source` contract, the common config fields of
file- and Hub-backed kinds, and strict field readers.

A kind is a `Source` subclass that reads itself (`rows()`, and `pairs()` when its answers carry
safety labels); loaders validate each raw record through `Record` so a bad value is reported
with its file, line and field. Nothing here opens files or talks to the Hub (see `readers`, `hub`).
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from axolotl_mistake.errors import InputError
from axolotl_mistake.records import LabelledPair, SourceRow
from axolotl_mistake.redact import redact_url

BAD_UTF8 = re.compile("[\udc80-\udcff]")
"""Characters `errors="surrogateescape"` maps undecodable bytes to; one means bad UTF-8."""


def split_field(choices: str) -> Any:
    """The `split` key of a source whose Hub dataset has the named splits (default 'train')."""
    return Field(default="train", description=f"Hub split: {choices}.")


class Source(BaseModel):
    """One source kind: its config keys (pydantic fields, `kind: Literal["name"]` first among
    its own) and how it reads itself. `iter_rows`/`iter_labelled_pairs` apply `limit`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    if TYPE_CHECKING:  # every kind declares these as fields, each with its own description
        kind: str
        limit: int | None

    @property
    @abstractmethod
    def source_tag(self) -> str:
        """The id prefix of this source's rows."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Human-readable place errors point at."""

    @abstractmethod
    def rows(self) -> Iterator[SourceRow]:
        """Every row, in file order (instructions with optional unsafe/safe answers)."""

    def pairs(self) -> Iterator[LabelledPair]:
        """Safety-labelled (question, answer, harmful) pairs; none unless the kind has labels."""
        return iter(())


class SourceBase(Source):
    """Fields every file- or Hub-backed source has. Subclasses add `kind` and their own keys."""

    path: str | None = Field(
        default=None,
        description=(
            "Local file to read: .jsonl/.ndjson (optionally .gz, read line by line), .json (a JSON "
            "array, parsed whole; or JSON lines), .parquet (read in batches) or .csv/.tsv. "
            "Give either `path` or `hub_id`."
        ),
    )
    hub_id: str | None = Field(
        default=None,
        description=(
            "Dataset to stream with `datasets.load_dataset(..., streaming=True)`: a Hugging Face "
            "Hub id (e.g. 'PKU-Alignment/PKU-SafeRLHF'), a local folder laid out like a Hub "
            "repo, or a packaged builder name ('json', 'csv', 'parquet') together with "
            "`data_files`. Give either `path` or `hub_id`."
        ),
    )
    config: str | None = Field(
        default=None, description="Hub dataset configuration name (`name=` of load_dataset)."
    )
    data_dir: str | None = Field(
        default=None,
        description="Sub-folder of the Hub repo to load (e.g. 'harmless-base' for Anthropic/hh-rlhf).",
    )
    data_files: str | list[str] | dict[str, str | list[str]] | None = Field(
        default=None,
        description=(
            "Explicit data files (paths or URLs) for load_dataset; needed with 'json'/'csv'/"
            "'parquet'. A single file or list is offered as the split named by `split`."
        ),
    )
    split: str = Field(default="train", description="Split to stream from the Hub dataset.")
    revision: str | None = Field(
        default=None,
        description="Hub git revision (branch, tag or commit) to pin; recorded in provenance.",
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        description="Stop after this many yielded items (rows or pairs); None reads everything.",
    )
    tag: str | None = Field(
        default=None,
        description=(
            "Name used in row ids ('<tag>:<line>') and provenance. Default: '<kind>:<file name>' "
            "for a local file, '<kind>:<hub_id>[/<config>][/<data_dir>][/<data file name>]:<split>' "
            "for the Hub. Set it to keep ids stable when a file is moved or renamed."
        ),
    )

    @model_validator(mode="after")
    def _one_location(self) -> SourceBase:
        if (self.path is None) == (self.hub_id is None):
            raise ValueError("give exactly one of `path` (a local file) or `hub_id` (Hub dataset)")
        if self.path is not None and (
            self.config or self.data_dir or self.data_files or self.revision
        ):
            raise ValueError(
                "`config`, `data_dir`, `data_files` and `revision` only apply with `hub_id`, not `path`"
            )
        return self

    @property
    def source_tag(self) -> str:
        """The id prefix of this source's rows (see `tag`)."""
        if self.tag:
            return self.tag
        kind = getattr(self, "kind", "source")
        if self.path is not None:
            return f"{kind}:{Path(self.path).name}"
        where = self.hub_id or ""
        for part in (self.config, self.data_dir, self._data_file_name()):
            if part:
                where += f"/{part}"
        return f"{kind}:{where}:{self.split}"

    def _data_file_name(self) -> str | None:
        """The file name of a single `data_files` entry (for 'json'/'csv' builder sources)."""
        files = self.data_files
        if isinstance(files, dict):
            files = files.get(self.split)
        if isinstance(files, list) and len(files) == 1:
            files = files[0]
        if not isinstance(files, str):
            return None
        # a URL's name without its query and fragment (a presigned URL's signature would
        # otherwise be in every row id, hence in the training data)
        return Path(urlsplit(files).path if "://" in files else files).name

    @property
    def location(self) -> str:
        """Human-readable place errors point at: the file path or the Hub dataset and split."""
        if self.path is not None:
            return self.path
        rev = f"@{self.revision}" if self.revision else ""
        files = self.data_files
        if isinstance(files, list):
            files = files[0] if len(files) == 1 else f"{len(files)} files"
        elif isinstance(files, dict):
            files = files.get(self.split, f"{len(files)} splits")
        if isinstance(files, str):
            files = redact_url(files)
        details = [
            f"{k}={v}"
            for k, v in (
                ("config", self.config),
                ("data_dir", self.data_dir),
                ("data_files", files),
            )
            if v
        ]
        details.append(f"split={self.split}")
        return f"hf:{self.hub_id}{rev} ({', '.join(details)})"


@dataclass(frozen=True)
class Record:
    """One raw record plus where it came from; typed getters raise located InputErrors."""

    data: dict[str, Any]
    file: str
    line: int

    def error(self, field: str | None, message: str) -> InputError:
        return InputError(message, file=self.file, line=self.line, field=field)

    def row(self, tag: str, row_id: str | None = None, **fields: Any) -> SourceRow:
        """A SourceRow read from this record: id `<tag>:<line>` unless given, with its source,
        file and line (the provenance every kind records the same way)."""
        return SourceRow(
            id=row_id or f"{tag}:{self.line}", source=tag, file=self.file, line=self.line, **fields
        )

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str) -> Any:
        if key not in self.data:
            present = ", ".join(sorted(map(str, self.data))) or "none"
            raise self.error(key, f"required field '{key}' is missing (fields present: {present})")
        return self.data[key]

    def text(self, key: str, *, allow_empty: bool = False) -> str:
        """A required string; empty or whitespace-only is an error unless allowed."""
        value = self._get(key)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_type_name(value)}")
        _check_utf8(self, key, value)
        if not allow_empty and not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def _optional(self, key: str, expected: str, fits: Callable[[Any], bool]) -> Any:
        """`data[key]`, None when absent or null; a present value must `fit` the type."""
        value = self.data.get(key)
        if value is not None and not fits(value):
            raise self.error(key, f"expected {expected} or null, got {_type_name(value)}")
        return value

    def opt_text(self, key: str) -> str | None:
        """An optional string: absent or null -> None; present must be a string."""
        value = self._optional(key, "a string", lambda v: isinstance(v, str))
        if value is not None:
            _check_utf8(self, key, value)
        return value

    def flag(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_type_name(value)} {value!r:.40}")
        return value

    def opt_int(self, key: str) -> int | None:
        """An optional whole number (a boolean is not one)."""
        return self._optional(key, "an integer", lambda v: type(v) is int)

    def opt_dict(self, key: str) -> dict | None:
        """An optional JSON object."""
        return self._optional(key, "an object", lambda v: isinstance(v, dict))

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in allowed:
            raise self.error(key, f"expected one of {', '.join(allowed)}, got {value!r:.60}")
        return value


def _type_name(value: Any) -> str:
    return {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
        str: "a string",
    }.get(type(value), type(value).__name__)


def _check_utf8(rec: Record, key: str, value: str) -> None:
    """Strings decoded with surrogateescape carry lone surrogates where bytes were not UTF-8."""
    found = BAD_UTF8.search(value)
    if found:
        raise rec.error(
            key,
            f"text is not valid UTF-8 (undecodable byte 0x{ord(found.group()) - 0xDC00:02x} at "
            f"character {found.start()}); re-encode the file as UTF-8",
        )


def local_source_paths(node: Any) -> list[str]:
    """The local `path` of every source in a config tree (pydantic models, lists, dicts): the
    data files a tool reads, which it must never write over."""
    if isinstance(node, Source):
        path = getattr(node, "path", None)
        return [str(path)] if path else []
    if isinstance(node, BaseModel):
        return [
            p for name in type(node).model_fields for p in local_source_paths(getattr(node, name))
        ]
    if isinstance(node, (list, tuple)):
        return [p for item in node for p in local_source_paths(item)]
    if isinstance(node, dict):
        return [p for item in node.values() for p in local_source_paths(item)]
    return []


def first_bad_utf8_field(data: Any, prefix: str = "") -> str | None:
    """Name the first (nested) field whose key or string value holds undecodable bytes."""
    if isinstance(data, str):
        return (prefix or "?") if BAD_UTF8.search(data) else None
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if BAD_UTF8.search(str(key)) or first_bad_utf8_field(value, name):
                return name
    if isinstance(data, list):
        for i, value in enumerate(data):
            found = first_bad_utf8_field(value, f"{prefix}[{i}]")
            if found:
                return found
    return None


def limited(items: Iterator, limit: int | None) -> Iterator:
    """Yield at most `limit` items, stopping the (streaming) producer early."""
    if limit is None:
        yield from items
        return
    if limit <= 0:
        return
    for n, item in enumerate(items, 1):
        yield item
        if n >= limit:
            return
