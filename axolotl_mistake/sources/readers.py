"""Stream raw records out of local files (JSONL[.gz], JSON array, Parquet, CSV/TSV) with locations.

Each record comes back as a `Record` carrying its file and 1-based line (JSONL, CSV: the line the
record starts on; JSON array: the line its element starts on; Parquet: the row number), so every
later error can point at it. JSONL, CSV and Parquet are read incrementally (memory stays flat);
only a JSON *array* is parsed whole. Never interprets fields: that is each loader's job.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from axolotl_mistake.errors import InputError
from axolotl_mistake.sources.base import BAD_UTF8, Record, first_bad_utf8_field

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv", ".tsv")
SUPPORTED = ".jsonl, .ndjson, .json (each optionally .gz), .parquet, .csv, .tsv (optionally .gz)"

_KEY_BEFORE = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')
_LAST_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"\s*$')


def file_format(path: str) -> tuple[str, bool]:
    """(format, gzipped) from the file name: format is 'json', 'parquet' or 'csv'."""
    name = Path(path).name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    if name.endswith(JSON_SUFFIXES):
        return "json", gz
    if name.endswith(".parquet") and not gz:
        return "parquet", False
    if name.endswith(CSV_SUFFIXES):
        return "csv", gz
    raise InputError(
        f"unsupported file type '{Path(path).name}'; use one of {SUPPORTED}",
        file=path,
        field="path",
    )


def iter_file_records(path: str, *, delimiter: str | None = None) -> Iterator[Record]:
    """Yield every record of a local file, streaming where the format allows.

    A file without a single record (empty, blank lines only, `[]`, a CSV header alone) is an
    InputError naming the file: a source that silently gives nothing hides a wrong path.
    """
    fmt, gz = file_format(path)
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=path, field="path")
    if not p.is_file():
        raise InputError("is not a file", file=path, field="path")
    if fmt == "parquet":
        records = _iter_parquet(path)
    elif fmt == "csv":
        if delimiter is None:
            delimiter = "\t" if p.name.lower().removesuffix(".gz").endswith(".tsv") else ","
        records = _iter_csv(path, gz, delimiter)
    else:
        records = _iter_json(path, gz)
    empty = True
    for record in records:
        empty = False
        yield record
    if empty:
        raise InputError("the file holds no records (it is empty)", file=path, field="path")


# UTF-32 little-endian's mark begins with UTF-16 little-endian's
_WIDE_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)


def _byte_lines(path: str, gz: bool) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw bytes) for each line; corrupt gzip becomes an InputError."""
    lineno = 0
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if lineno == 1 and (raw.startswith(_WIDE_BOMS) or b"\0" in raw):
                    why = (
                        "starts with that byte-order mark"
                        if raw.startswith(_WIDE_BOMS)
                        else "its first line holds NUL bytes"
                    )
                    raise InputError(
                        f"the file is not UTF-8 text: UTF-16 or UTF-32 ({why}) or binary; "
                        "re-encode it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)",
                        file=path,
                        line=1,
                    )
                yield lineno, raw
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise InputError(
            f"cannot decompress gzip data after line {lineno} ({err}); is the file truncated?",
            file=path,
            line=lineno + 1,
            field=None,
        ) from err


def _decode(raw: bytes, lineno: int) -> tuple[str, bool]:
    """Decode one line; undecodable bytes are kept as surrogates and flagged for locating."""
    try:
        text = raw.decode("utf-8")
        bad = False
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="surrogateescape")
        bad = True
    if lineno == 1 and text.startswith("\ufeff"):
        text = text[1:]
    return text, bad


_PLAIN_JSON_MESSAGES = {
    # json's messages that end in "at", written to be followed by its position
    "Unterminated string starting at": "a string starts here and is not closed",
    "Invalid control character at": (
        "a control character (tab, line break) inside a string; write it escaped (\\t, \\n)"
    ),
}


def _json_error(
    path: str, lineno: int, text: str, err: json.JSONDecodeError, hint: str = ""
) -> InputError:
    """Bad JSON, naming the field at fault: the key whose colon is missing, else the last key
    before the error (the field being written, or, for a missing comma or an unquoted key,
    the field just finished)."""
    before = text[: err.pos]
    if err.msg.startswith("Expecting ':'") and (key := _LAST_STRING.search(before)):
        field: str | None = key.group(1)
        where = f"near field '{field}' "
    else:
        keys = _KEY_BEFORE.findall(before)
        field = keys[-1] if keys else None
        after = err.msg.startswith(("Expecting ',' delimiter", "Expecting property name"))
        where = f"{'after' if after else 'near'} field '{field}' " if field else ""
    return InputError(
        f"invalid JSON {where}at column {err.colno}: {_PLAIN_JSON_MESSAGES.get(err.msg, err.msg)}"
        f"{hint}",
        file=path,
        line=lineno,
        field=field,
    )


def _bad_utf8_error(path: str, lineno: int, data: object) -> InputError:
    """`data`: the parsed value (its first field with bad bytes is named), or the line's text
    when it did not parse (no field to name)."""
    field = None if isinstance(data, str) else first_bad_utf8_field(data)
    return InputError(
        "text is not valid UTF-8 (undecodable bytes); re-encode the file as UTF-8",
        file=path,
        line=lineno,
        field=field,
    )


def _as_record(path: str, lineno: int, data: object) -> Record:
    if not isinstance(data, dict):
        kind = type(data).__name__.replace("dict", "object")
        raise InputError(
            f"expected a JSON object with named fields, got a {kind}", file=path, line=lineno
        )
    return Record(data=data, file=path, line=lineno)


def _iter_json(path: str, gz: bool) -> Iterator[Record]:
    """JSON lines, or a JSON array when the first non-blank character is '['."""
    lines = _byte_lines(path, gz)
    for lineno, raw in lines:
        text, bad = _decode(raw, lineno)
        stripped = text.strip()
        if not stripped:
            continue
        if stripped.startswith("["):
            yield from _iter_json_array(path, lineno, text, lines)
            return
        try:
            record = _parse_json_line(path, lineno, text, bad)
        except InputError:
            if stripped.startswith("{") and not bad:  # bad UTF-8 has its own, exact error
                _refuse_one_object(path, lineno, text, lines)
            raise
        yield record
        break
    for lineno, raw in lines:
        text, bad = _decode(raw, lineno)
        if not text.strip():
            continue
        yield _parse_json_line(path, lineno, text, bad)


def _refuse_one_object(
    path: str, first_line: int, first_text: str, rest: Iterable[tuple[int, bytes]]
) -> None:
    """Raise a clear error when the whole file is one JSON object spanning lines (e.g.
    `{"train": [rows]}` written with indent=): neither JSON lines nor an array of rows, which a
    line-by-line parse reports as bad JSON at column 1. Returns when it is not one."""
    text = first_text + "".join(_decode(raw, n)[0] for n, raw in rest)
    try:
        data = json.loads(text)
    except ValueError:
        return
    if isinstance(data, dict):
        lists = [k for k, v in data.items() if isinstance(v, list)]
        hint = f" (the rows may be its list under {', '.join(map(repr, lists))})" if lists else ""
        raise InputError(
            "the file is one JSON object spanning several lines, not JSON lines (one object "
            f"per line) or an array of rows{hint}; write the rows as JSON lines or an array",
            file=path,
            line=first_line,
        )


def _parse_json_line(path: str, lineno: int, text: str, bad_utf8: bool) -> Record:
    # without its line break: an error at the end of the line is then reported there (with
    # it, json puts it at column 1 of the next line, and a string left open at the end of
    # the line reads as an invalid control character)
    text = text.rstrip("\r\n")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if bad_utf8:
            raise _bad_utf8_error(path, lineno, text) from err
        cut = err.msg.startswith("Unterminated string") or (
            err.pos >= len(text.rstrip()) and not err.msg.startswith("Extra data")
        )
        hint = (
            " (the line ends before its JSON value does: each row of a JSON-lines file is one "
            "whole object on one line)"
        )
        raise _json_error(path, lineno, text, err, hint if cut else "") from err
    if bad_utf8:
        raise _bad_utf8_error(path, lineno, data)
    return _as_record(path, lineno, data)


def _iter_json_array(
    path: str, first_line: int, first_text: str, rest: Iterable[tuple[int, bytes]]
) -> Iterator[Record]:
    """A JSON array read whole (arrays cannot be streamed line by line); elements keep lines."""
    parts = [first_text]
    for lineno, raw in rest:
        parts.append(_decode(raw, lineno)[0])
    text = "".join(parts)
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line = first_line
    counted = 0

    def line_at(offset: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, offset)
        counted = offset
        return line

    def fail(offset: int, message: str) -> InputError:
        return InputError(message, file=path, line=line_at(offset))

    ws = re.compile(r"\s*")
    pos = ws.match(text, pos).end()
    if text.startswith("]", pos):
        return
    while True:
        start = pos
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            lineno = line_at(err.pos)
            line_start = text.rfind("\n", 0, err.pos) + 1
            raise _json_error(path, lineno, text[line_start:], _shift(err, line_start)) from err
        lineno = line_at(start)
        if BAD_UTF8.search(text, start, pos):
            raise _bad_utf8_error(path, lineno, item)
        yield _as_record(path, lineno, item)
        pos = ws.match(text, pos).end()
        if text.startswith(",", pos):
            pos = ws.match(text, pos + 1).end()
            continue
        if text.startswith("]", pos):
            tail = text[pos + 1 :].strip()
            if tail:
                raise fail(pos + 1, "unexpected text after the end of the JSON array")
            return
        raise fail(pos, "expected ',' or ']' between JSON array elements")


def _shift(err: json.JSONDecodeError, offset: int) -> json.JSONDecodeError:
    """Re-base a decode error on the text of its own line (for the 'near field' lookup)."""
    return json.JSONDecodeError(err.msg, err.doc[offset:], err.pos - offset)


def _iter_parquet(path: str) -> Iterator[Record]:
    """Parquet in record batches, so memory is bounded by the batch, not the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise InputError(f"not a readable Parquet file ({err})", file=path, field="path") from err
    row = 0
    batches = pf.iter_batches(batch_size=512)
    while True:
        try:  # a damaged row group fails when its batch is read (the footer read fine)
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as err:
            raise InputError(
                f"cannot read the Parquet rows after row {row} ({err}); is the file damaged?",
                file=path,
                line=row + 1,
            ) from err
        for data in batch.to_pylist():
            row += 1
            yield Record(data=data, file=path, line=row)


def _iter_csv(path: str, gz: bool, delimiter: str) -> Iterator[Record]:
    """CSV with a header line; quoted values may span lines (the record's first line is used)."""
    bad_lines: set[int] = set()

    def text_lines() -> Iterator[str]:
        for lineno, raw in _byte_lines(path, gz):
            text, bad = _decode(raw, lineno)
            if bad:
                bad_lines.add(lineno)
            yield text

    # the csv module stops at 131,072 characters a field; JSON lines have no such limit
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(text_lines(), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    last = 0
    try:
        for values in reader:
            start, last = last + 1, reader.line_num
            if not values or (values == [""] and (header is None or len(header) > 1)):
                continue  # a blank line; `""` under a one-column header is an empty value
            if header is None:
                header = [h.strip() for h in values]
                for i, name in enumerate(header):
                    if not name:
                        raise InputError(
                            f"column {i + 1} of the header has no name",
                            file=path,
                            line=start,
                            field=f"column {i + 1}",
                        )
                    if BAD_UTF8.search(name):
                        raise InputError(
                            "header is not valid UTF-8",
                            file=path,
                            line=start,
                            field=f"column {i + 1}",
                        )
                dupes = sorted({h for h in header if header.count(h) > 1})
                if dupes:
                    raise InputError(
                        "duplicate column name in the header", file=path, line=start, field=dupes[0]
                    )
                continue
            if len(values) != len(header):
                field = (
                    header[len(values)]
                    if len(values) < len(header)
                    else f"column {len(header) + 1}"
                )
                raise InputError(
                    f"has {len(values)} values but the header has {len(header)} columns",
                    file=path,
                    line=start,
                    field=field,
                )
            data = dict(zip(header, values, strict=True))
            if bad_lines.intersection(range(start, last + 1)):
                raise _bad_utf8_error(path, start, data)
            yield Record(data=data, file=path, line=start)
    except csv.Error as err:
        raise InputError(f"malformed CSV ({err})", file=path, line=reader.line_num) from err
    if header is None:
        raise InputError(
            "the CSV file is empty (no header line)", file=path, line=1, field="header"
        )
