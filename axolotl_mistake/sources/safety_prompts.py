"""thu-coai Safety-Prompts loader: one scenario's prompts (default: goal hijacking attacks).

The dataset's JSON files (`instruction_attack_scenarios.json`, `typical_safety_scenarios.json`)
are one object whose keys are scenario names, each a list of `{prompt, response, type}` rows.
Read from the Hub (`hub_id: thu-coai/Safety-Prompts`, when online) or a local copy: the JSON
object itself, or JSON lines / a JSON array of rows, filtered by `type`. Rows carry no labelled
answers, so no pairs. The response (the authors' reference reply) stays in `meta`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from axolotl_mistake.errors import InputError
from axolotl_mistake.records import PromptKind, SourceRow
from axolotl_mistake.sources.base import Record, SourceBase
from axolotl_mistake.sources.hub import no_records
from axolotl_mistake.sources.readers import file_format, iter_file_records

HUB_ID = "thu-coai/Safety-Prompts"
DEFAULT_FILE = "instruction_attack_scenarios.json"

_WS = re.compile(r"\s*")


class SafetyPromptsSource(SourceBase):
    """thu-coai/Safety-Prompts (Hub, or a local copy of one of its JSON files), one scenario.
    Row id: `<tag>:<line>` (local file: the line the row starts on; Hub: the row number)."""

    kind: Literal["safety_prompts"] = Field(
        default="safety_prompts", description="Selects this loader."
    )
    scenario: str = Field(
        default="Goal_Hijacking",
        description=(
            "Scenario key (Goal_Hijacking, Prompt_Leaking, Role_Play_Instruction, "
            "Unsafe_Instruction_Topic, Inquiry_With_Unsafe_Opinion, Reverse_Exposure, or a "
            "typical scenario such as Insult); rows of a JSON-lines copy are kept when their "
            "`type` equals it."
        ),
    )
    prompt_kind: PromptKind = Field(
        default="harmful",
        description="`kind` of every row (attack and unsafe-scenario prompts: harmful).",
    )

    @property
    def hub_file(self) -> str | list[str] | dict:
        """The Hub data file(s) holding the scenario (default instruction_attack_scenarios.json)."""
        return self.data_files if self.data_files is not None else DEFAULT_FILE

    def rows(self) -> Iterator[SourceRow]:
        """The scenario's prompts in file order (no safety-labelled answers, so no pairs)."""
        tag = self.source_tag
        records = _local_records(self) if self.path is not None else _hub_records(self)
        for rec in records:
            meta: dict = {"scenario": self.scenario}
            response = rec.opt_text("response")
            if response:
                meta["response"] = response
            yield rec.row(tag, instruction=rec.text("prompt"), kind=self.prompt_kind, meta=meta)


def _fail(path: str, text: str, pos: int, message: str, field: str | None = None) -> InputError:
    return InputError(message, file=path, line=text.count("\n", 0, pos) + 1, field=field)


def _object_records(path: str, text: str, scenario: str) -> Iterator[Record]:
    """The rows of `scenario` in a `{scenario: [row, ...], ...}` file, each with its line."""
    decoder = json.JSONDecoder()
    pos = _WS.match(text, 0).end() + 1  # past '{'
    keys: list[str] = []
    first_at = 0  # where the scenario's key is, once read
    try:
        while True:
            pos = _WS.match(text, pos).end()
            if text.startswith("}", pos):
                break
            key_at = pos
            key, pos = decoder.raw_decode(text, pos)
            pos = _WS.match(text, pos).end()
            if not isinstance(key, str) or not text.startswith(":", pos):
                raise _fail(path, text, pos, "expected a JSON object of scenario lists")
            pos = _WS.match(text, pos + 1).end()
            if key == scenario and key in keys:
                # json.loads would keep the last list, this reader the first: ambiguous
                raise _fail(
                    path,
                    text,
                    key_at,
                    f"scenario '{scenario}' appears twice in the file (first at line "
                    f"{text.count(chr(10), 0, first_at) + 1}); keep one list",
                    field="scenario",
                )
            keys.append(key)
            if key != scenario:
                _, pos = decoder.raw_decode(text, pos)
            else:
                first_at = key_at
                pos = yield from _array_records(path, text, pos, scenario)
            pos = _WS.match(text, pos).end()
            if text.startswith(",", pos):
                pos += 1
            elif not text.startswith("}", pos):
                raise _fail(path, text, pos, "expected ',' or '}' between scenarios")
    except json.JSONDecodeError as err:
        raise _fail(path, text, err.pos, f"invalid JSON: {err.msg}") from err
    if scenario not in keys:
        raise InputError(
            f"no scenario '{scenario}' in the file (scenarios: {', '.join(keys) or 'none'})",
            file=path,
            field="scenario",
        )


def _array_records(path: str, text: str, pos: int, scenario: str) -> Generator[Record, None, int]:
    """The rows of the list at `pos`; returns the position after its ']'."""
    decoder = json.JSONDecoder()
    if not text.startswith("[", pos):
        raise _fail(path, text, pos, "expected a list of rows", field=scenario)
    pos = _WS.match(text, pos + 1).end()
    if text.startswith("]", pos):  # as an empty rows file is: a wrong file or scenario
        raise _fail(path, text, pos, f"scenario '{scenario}' holds no rows", field="scenario")
    line, counted = text.count("\n", 0, pos) + 1, pos  # counted on as rows go: one pass
    while not text.startswith("]", pos):
        start = pos
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise _fail(path, text, err.pos, f"invalid JSON: {err.msg}") from err
        line, counted = line + text.count("\n", counted, start), start
        if not isinstance(item, dict):
            raise InputError("expected a JSON object with named fields", file=path, line=line)
        yield Record(data=item, file=path, line=line)
        pos = _WS.match(text, pos).end()
        if text.startswith(",", pos):
            pos = _WS.match(text, pos + 1).end()
        elif not text.startswith("]", pos):
            raise _fail(path, text, pos, "expected ',' or ']' between rows")
    return pos + 1


def _is_scenario_object(text: str, path: str) -> bool:
    """True when the file is one JSON object of lists (the dataset's own layout), not rows.

    A file that starts with '{' but is not valid JSON goes to the object reader too, which
    names the line of the error (JSON lines decode their first object and stop there).
    """
    start = _WS.match(text, 0).end()
    try:
        data, end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError:
        return text.startswith("{", start)
    if not isinstance(data, dict) or text[end:].strip():
        return False
    of_lists = all(isinstance(v, list) for v in data.values())
    if "\n" in text[start:end].strip() and not of_lists:
        # one object over several lines, so not JSON lines, and not of row lists
        raise InputError(
            "the file is one JSON object whose values are not all lists of rows; the "
            "Safety-Prompts layout is {scenario: [rows]}, or give rows as JSON lines",
            file=str(path),
            line=1,
        )
    return of_lists


def _local_records(cfg: SafetyPromptsSource) -> Iterator[Record]:
    path = str(cfg.path)
    fmt, gz = file_format(path)
    p = Path(path)
    if fmt == "json" and not gz and p.suffix.lower() == ".json" and p.is_file():
        text = p.read_text(encoding="utf-8-sig", errors="surrogateescape")  # BOM or not
        if _is_scenario_object(text, path):
            yield from _object_records(path, text, cfg.scenario)
            return
    kept, types = 0, set()
    for rec in iter_file_records(path):  # JSON lines / array / parquet of rows
        kind = rec.opt_text("type")
        if kind in (None, cfg.scenario):
            kept += 1
            yield rec
        else:
            types.add(kind)
    if not kept and types:
        raise InputError(
            f"no row of scenario '{cfg.scenario}' in the file (its rows' types: "
            f"{', '.join(sorted(types))})",
            file=path,
            field="scenario",
        )


def _hub_records(cfg: SafetyPromptsSource) -> Iterator[Record]:
    import datasets

    kwargs = {"data_files": cfg.hub_file, "field": cfg.scenario, "split": cfg.split}
    if cfg.revision:
        kwargs["revision"] = cfg.revision
    try:
        stream = datasets.load_dataset(cfg.hub_id, streaming=True, **kwargs)
        rows = iter(stream)
        first = next(rows, None)
    except Exception as err:  # the boundary to a user-named dataset: a config problem
        raise InputError(
            f"cannot load dataset '{cfg.hub_id}' ({type(err).__name__}: {err}). Check the id, "
            "`data_files`, `scenario` and that the Hub is reachable (HF_HUB_OFFLINE=1 only "
            "finds datasets already cached)",
            file=cfg.location,
            field="hub_id",
        ) from err
    if first is None:  # as a local copy does: a source that gives nothing hides a wrong file
        raise no_records(cfg, f"scenario {cfg.scenario!r} of split {cfg.split!r}")
    yield Record(data=dict(first), file=cfg.location, line=1)
    for number, data in enumerate(rows, 2):
        yield Record(data=dict(data), file=cfg.location, line=number)
