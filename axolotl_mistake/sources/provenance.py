"""What a build's manifest should record about a source: where it came from, which version.

Local files get their size and sha256 (streamed, so big files cost no memory), also when read
through `hub_id` (local `data_files`, a local folder); Hub sources their id, config, data_dir,
split and revision. Never reads rows and never touches the network.
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
        files = local_data_files(cfg)
        if files:
            out["files"] = [
                {"file": str(f), "bytes": f.stat().st_size, "sha256": file_sha256(f)} for f in files
            ]
    return out


def local_data_files(cfg: SourceBase) -> list[Path]:
    """The local files a `hub_id` source reads: its `data_files` that exist here, or the files
    of a local folder given as `hub_id` (dot-files and dot-folders left out); none for a Hub
    id. Relative `data_files` are found where `load_dataset` looks for them: inside the local
    folder and its `data_dir` (for 'json'/'csv'/'parquet': inside `data_dir`, else the working
    directory); a `data_dir` narrows a local folder to that sub-folder. Globs are not expanded:
    the library resolves them, and the record says what was set."""
    folder = Path(str(cfg.hub_id))
    is_folder = folder.is_dir()
    base = (folder if is_folder else Path()) / (cfg.data_dir or "")
    named = cfg.data_files
    if isinstance(named, dict):
        named = named.get(cfg.split)
    if isinstance(named, str):
        named = [named]
    if named:
        return [base / n for n in named if (base / n).is_file()]
    if is_folder and base.is_dir():
        return [
            f
            for f in sorted(base.rglob("*"))
            if f.is_file() and not any(p.startswith(".") for p in f.relative_to(folder).parts)
        ]
    return []
