"""Source loaders: every dataset the builder and the evaluation read, as one common row type.

`SourceConfig` is a pydantic union discriminated on `kind`; `iter_rows(cfg)` streams
`SourceRow`s and `iter_labelled_pairs(cfg)` streams safety-labelled `LabelledPair`s. Loaders
stream (memory flat) and raise `axolotl_mistake.errors.InputError` naming file, line and field.
They never render prompts, call models or write files.

Row ids are `<tag>:<line>` (1-based line or Hub row number; PKU rows that split a prompt's two
answers add `:<response index>`), where `tag` defaults to `<kind>:<file name>` or
`<kind>:<hub id>[/config][/data_dir]:<split>`; `builtin:<name>` for the shipped sets. They are
stable for a given file and config: the builder dedups and shards on them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from axolotl_mistake.configio import validation_error
from axolotl_mistake.records import LabelledPair, SourceRow
from axolotl_mistake.errors import InputError
from axolotl_mistake.sources import (
    alpaca,
    beavertails,
    builtin,
    generic,
    hh_rlhf,
    pairs,
    pku_saferlhf,
    safety_prompts,
    xstest,
)
from axolotl_mistake.sources.alpaca import AlpacaSource
from axolotl_mistake.sources.beavertails import BeaverTailsSource
from axolotl_mistake.sources.builtin import BuiltinSource
from axolotl_mistake.sources.generic import CsvSource, JsonlSource
from axolotl_mistake.sources.hh_rlhf import HhRlhfSource
from axolotl_mistake.sources.pairs import PairsSource
from axolotl_mistake.sources.pku_saferlhf import PkuSafeRlhfSource
from axolotl_mistake.sources.safety_prompts import SafetyPromptsSource
from axolotl_mistake.sources.xstest import XSTestSource

SourceConfig = Annotated[
    BuiltinSource
    | PkuSafeRlhfSource
    | HhRlhfSource
    | BeaverTailsSource
    | AlpacaSource
    | JsonlSource
    | CsvSource
    | XSTestSource
    | PairsSource
    | SafetyPromptsSource,
    Field(discriminator="kind"),
]
"""One source of rows; `kind` picks the loader (see each class for its keys)."""

_LOADERS = {
    "builtin": builtin,
    "pku_saferlhf": pku_saferlhf,
    "hh_rlhf": hh_rlhf,
    "beavertails": beavertails,
    "alpaca": alpaca,
    "jsonl": generic,
    "csv": generic,
    "xstest": xstest,
    "pairs": pairs,
    "safety_prompts": safety_prompts,
}
KINDS = tuple(_LOADERS)

_ADAPTER: TypeAdapter = TypeAdapter(SourceConfig)

SOURCE_CLASSES = (
    BuiltinSource,
    PkuSafeRlhfSource,
    HhRlhfSource,
    BeaverTailsSource,
    AlpacaSource,
    JsonlSource,
    CsvSource,
    XSTestSource,
    PairsSource,
    SafetyPromptsSource,
)
"""The concrete config classes (members of the SourceConfig union)."""


def parse_source_config(
    data: Mapping[str, Any] | Any, *, file: str | None = None, prefix: str = ""
) -> SourceConfig:
    """Validate a raw mapping (e.g. from YAML) into a SourceConfig; errors name the bad key.

    `prefix` is prepended to field names in messages (e.g. "sources[2]").
    """
    if not isinstance(data, SOURCE_CLASSES):
        try:
            return _ADAPTER.validate_python(data)
        except ValidationError as err:
            raise validation_to_input_error(err, data, file=file, prefix=prefix) from err
    return data


def validation_to_input_error(
    err: ValidationError, data: Any = None, *, file: str | None = None, prefix: str = ""
) -> InputError:
    """Turn a pydantic error on source mapping `data` into one readable InputError naming the
    first bad field (through the project's one config loader, `axolotl_mistake.configio`)."""
    return validation_error(err, data, None, file, prefix=prefix, tag_noun="source")


def iter_rows(cfg: SourceConfig) -> Iterator[SourceRow]:
    """Stream the source's rows (instructions with optional unsafe/safe answers), in file order."""
    return _LOADERS[cfg.kind].iter_rows(cfg)


def iter_labelled_pairs(cfg: SourceConfig) -> Iterator[LabelledPair]:
    """Stream (question, answer, harmful) pairs from sources whose answers carry safety labels.

    PKU-SafeRLHF: every response (harmful = not is_response_i_safe). BeaverTails: every row.
    builtin: probe_pairs as written, redteam/helpful reference answers as harmless.
    jsonl/csv: mapped unsafe_answer -> harmful, safe_answer -> harmless (unless
    answers_are_safety_labels is off). HH-RLHF: none unless preference_as_safety_label.
    Alpaca, XSTest: none (no labelled answers).
    """
    return _LOADERS[cfg.kind].iter_pairs(cfg)


__all__ = [
    "KINDS",
    "SOURCE_CLASSES",
    "AlpacaSource",
    "BeaverTailsSource",
    "BuiltinSource",
    "CsvSource",
    "HhRlhfSource",
    "JsonlSource",
    "PkuSafeRlhfSource",
    "SourceConfig",
    "XSTestSource",
    "iter_labelled_pairs",
    "iter_rows",
    "parse_source_config",
    "validation_to_input_error",
]
