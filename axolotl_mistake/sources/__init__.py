"""Source loaders: every dataset the builder and the evaluation read, as one common row type.

`SourceConfig` is a pydantic union, discriminated on `kind`, of the classes registered in
`SOURCES`; `iter_rows(cfg)` streams `SourceRow`s and `iter_labelled_pairs(cfg)` streams
safety-labelled `LabelledPair`s. Loaders stream (memory flat) and raise
`axolotl_mistake.errors.InputError` naming file, line and field. They never render prompts,
call models or write files. Adding a kind is one new module (a `Source` subclass with
`kind: Literal["name"]` and `rows()`) plus one line in `SOURCES`.

Row ids are `<tag>:<line>` (1-based line or Hub row number; PKU rows that split a prompt's two
answers add `:<response index>`), where `tag` defaults to `<kind>:<file name>` or
`<kind>:<hub id>[/config][/data_dir]:<split>`; `builtin:<name>` for the shipped sets. They are
stable for a given file and config: the builder dedups and shards on them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

from axolotl_mistake.configio import validation_error
from axolotl_mistake.errors import InputError
from axolotl_mistake.records import LabelledPair, SourceRow
from axolotl_mistake.registry import registered_classes
from axolotl_mistake.sources.base import Source, limited

SOURCES: dict[str, str] = {
    "builtin": "axolotl_mistake.sources.builtin:BuiltinSource",
    "pku_saferlhf": "axolotl_mistake.sources.pku_saferlhf:PkuSafeRlhfSource",
    "hh_rlhf": "axolotl_mistake.sources.hh_rlhf:HhRlhfSource",
    "beavertails": "axolotl_mistake.sources.beavertails:BeaverTailsSource",
    "alpaca": "axolotl_mistake.sources.alpaca:AlpacaSource",
    "jsonl": "axolotl_mistake.sources.generic:JsonlSource",
    "csv": "axolotl_mistake.sources.generic:CsvSource",
    "xstest": "axolotl_mistake.sources.xstest:XSTestSource",
    "pairs": "axolotl_mistake.sources.pairs:PairsSource",
    "safety_prompts": "axolotl_mistake.sources.safety_prompts:SafetyPromptsSource",
}
"""kind -> "module:ConfigClass"; a class reads its own rows (`Source.rows`/`Source.pairs`)."""

KINDS = tuple(SOURCES)
"""The registered kinds, in registration order (the order errors and `--help` list them)."""


@cache
def source_classes() -> dict[str, type[Source]]:
    """kind -> config class, checked to declare the kind it is registered under."""
    return registered_classes(SOURCES, Source)


SOURCE_CLASSES: tuple[type[Source], ...] = tuple(source_classes().values())
"""The concrete config classes (members of the SourceConfig union)."""

SourceConfig = Annotated[
    Union[SOURCE_CLASSES],  # type: ignore[valid-type]  # noqa: UP007
    Field(discriminator="kind"),
]
"""One source of rows; `kind` picks the class (see each class for its keys)."""

_ADAPTER: TypeAdapter = TypeAdapter(SourceConfig)


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


def iter_rows(cfg: Source) -> Iterator[SourceRow]:
    """Stream the source's rows (instructions with optional unsafe/safe answers), in file order,
    at most `limit` of them."""
    return limited(cfg.rows(), cfg.limit)


def iter_labelled_pairs(cfg: Source) -> Iterator[LabelledPair]:
    """Stream (question, answer, harmful) pairs from sources whose answers carry safety labels.

    PKU-SafeRLHF: every response (harmful = not is_response_i_safe). BeaverTails: every row.
    builtin: probe_pairs as written, redteam/helpful reference answers as harmless.
    jsonl/csv: mapped unsafe_answer -> harmful, safe_answer -> harmless (unless
    answers_are_safety_labels is off). HH-RLHF: none unless preference_as_safety_label.
    Alpaca, XSTest, Safety-Prompts: none (no labelled answers).
    """
    return limited(cfg.pairs(), cfg.limit)


__all__ = [
    "KINDS",
    "SOURCES",
    "SOURCE_CLASSES",
    "Source",
    "SourceConfig",
    "iter_labelled_pairs",
    "iter_rows",
    "parse_source_config",
    "source_classes",
    "validation_to_input_error",
]
