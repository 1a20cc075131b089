"""manifest.json of a built dataset: its typed schema, its name and the mark of this tool.

The builder writes a `BuildManifest`; the plugin reads it (`read_manifest`) to find which files
the builder made (by name and sha256) and which of their fields hold harmful text. One
definition of `PRODUCED_BY` and the file name. Holds only the NAME of an API-key env var, never
a secret; never reads data files or loads models.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from axolotl_mistake.errors import InputError

PRODUCED_BY = "axolotl-mistake"
"""The `produced_by` of every manifest this tool writes (how a folder is recognised as ours)."""

MANIFEST_NAME = "manifest.json"

REBUILD = "rebuild the dataset with `python -m dataset_builders.build` or remove the broken file"
"""The fix an unreadable manifest's error names."""

HARMFUL_WARNING = (
    "This folder contains harmful, unethical and offensive text by design: red-team "
    "instructions and the bad answers in the `bad` field of mistake_analysis.jsonl (and the "
    "`input` of coh.jsonl), and red-team context, such as the earlier turns of a red-team "
    "conversation, wherever a file shows it (each file's `harmful_fields`). They exist only as "
    "context for critique training; never train a model to produce them (no loss on those "
    "fields) and do not publish them without this warning."
)


class FileEntry(BaseModel):
    """One written file: its role, size, the fields that hold harmful text, how to train on it."""

    model_config = ConfigDict(extra="forbid")

    role: str
    rows: int
    harmful_fields: list[str] = Field(default_factory=list)
    """Columns holding harmful text; in a chat file, `messages` means its prompt turns (the
    assistant turns are the answers it trains on)."""
    recommended_type: str | None = None
    sha256: str | None = None
    """sha256 of the file's bytes (lets the plugin recognise a built file by content)."""


class BuildManifest(BaseModel):
    """Everything a build records about its outputs; `manifest.json` is this, as JSON."""

    model_config = ConfigDict(extra="allow")

    produced_by: Literal["axolotl-mistake"] = PRODUCED_BY
    version: str
    harmful_content_warning: str = HARMFUL_WARNING
    files: dict[str, FileEntry] = Field(default_factory=dict)
    mistake_source: str
    analyst: str
    anchored: bool = False
    balanced: bool = False
    analysis_classes: dict[str, int] = Field(default_factory=dict)
    prompt_format: str
    seed: int
    shard: dict[str, Any] = Field(default_factory=dict)
    pool_sha256: str | None = None
    """sha256 of `state/pool.jsonl`, what `merge` emits from (None in manifests made before
    it was recorded): a pool that does not match belongs to another run."""
    config_file: str | None = None
    config_hash: str
    config: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    data: list[dict[str, Any]] = Field(default_factory=list)
    counts: dict[str, Any] = Field(default_factory=dict)
    calls: dict[str, Any] = Field(default_factory=dict)
    failed_calls: list[dict[str, Any]] = Field(default_factory=list)
    timings_s: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> dict:
        """The JSON-ready dict, keys in schema order."""
        return self.model_dump(mode="json")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(folder: str | Path) -> BuildManifest | None:
    """The manifest in `folder`; None when there is none or another tool wrote it.

    InputError (naming the file) when a manifest that says it is ours cannot be read.
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(
            f"not a readable manifest ({exc}); {REBUILD}", file=str(path), line=line
        ) from None
    if not isinstance(data, dict) or data.get("produced_by") != PRODUCED_BY:
        return None
    try:
        return BuildManifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InputError(
            f"not a valid build manifest: {err['msg']}; {REBUILD}",
            file=str(path),
            field=field or None,
        ) from None


def package_version(name: str) -> str | None:
    """An installed distribution's version, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def project_version() -> str:
    return package_version("axolotl-mistake") or "0.1.0"


def versions() -> dict[str, Any]:
    """Versions of what shaped the outputs (package metadata only, no imports)."""
    out: dict[str, Any] = {"python": platform.python_version()}
    for name in (
        "axolotl-mistake",
        "torch",
        "transformers",
        "pydantic",
        "datasets",
        "httpx",
        "vllm",
    ):
        value = package_version(name)
        if value:
            out[name] = value
    return out
