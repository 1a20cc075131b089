"""What a build's manifest should record about a source: where it came from, which version.

Local files get their size and sha256 (streamed, so big files cost no memory); Hub sources their
id, config, data_dir, split and revision. Never reads rows and never touches the network.
"""

from __future__ import annotations

from pathlib import Path

from axolotl_mistake.fileio import file_sha256
from axolotl_mistake.sources.base import SourceBase
from axolotl_mistake.sources.builtin import BuiltinSource


def describe_source(cfg: SourceBase | BuiltinSource) -> dict:
    """A JSON-ready record of the source config plus file hash or Hub revision (None = unpinned)."""
    out: dict = {"kind": cfg.kind, "tag": cfg.source_tag, "location": cfg.location}
    if isinstance(cfg, BuiltinSource):
        path = cfg.file
        out.update(
            name=cfg.name, file=path.name, bytes=path.stat().st_size, sha256=file_sha256(path)
        )
        return out
    out["config"] = cfg.model_dump(exclude_none=True)
    if cfg.path is not None:
        path = Path(cfg.path)
        if path.is_file():
            out.update(bytes=path.stat().st_size, sha256=file_sha256(path))
    else:
        out.update(hub_id=cfg.hub_id, revision=cfg.revision)
    return out
