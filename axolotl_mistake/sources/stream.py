"""One entry point for raw records: a local file (`readers`) or a streamed dataset (`hub`).

Loaders call `iter_records(cfg)` and never care where the rows live. Never interprets fields.
"""

from __future__ import annotations

from collections.abc import Iterator

from axolotl_mistake.sources.base import Record, SourceBase
from axolotl_mistake.sources.hub import iter_hub_records
from axolotl_mistake.sources.readers import iter_file_records


def iter_records(cfg: SourceBase, *, delimiter: str | None = None) -> Iterator[Record]:
    """Raw records of the source in file/split order, each with its file and 1-based line."""
    if cfg.path is not None:
        return iter_file_records(cfg.path, delimiter=delimiter)
    return iter_hub_records(cfg)
