"""manifest.json of a build: what each file is, how it was made, and what in it is harmful.

The plugin reads `files.<name>.harmful_fields` to refuse training on harmful text. Secrets never
land here: backend configs hold only the NAME of an API-key env var.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

PRODUCED_BY = "axolotl-mistake"
MANIFEST = "manifest.json"

HARMFUL_WARNING = (
    "This folder contains harmful, unethical and offensive text by design: red-team "
    "instructions and the bad answers in the `bad` field of mistake_analysis.jsonl (and the "
    "`input` of coh.jsonl). They exist only as context for critique training; never train a "
    "model to produce them (no loss on those fields) and do not publish them without this warning."
)


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def project_version() -> str:
    return package_version("axolotl-mistake") or "0.1.0"


def versions() -> dict[str, Any]:
    """Versions of what shaped the outputs (no imports: metadata only)."""
    out: dict[str, Any] = {"python": platform.python_version()}
    for name in ("axolotl-mistake", "torch", "transformers", "pydantic", "datasets", "httpx", "vllm"):
        value = package_version(name)
        if value:
            out[name] = value
    return out


def merge_counts(a: dict, b: dict) -> dict:
    """Sum nested count dicts (numbers add, dicts recurse)."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict):
            out[key] = merge_counts(out.get(key, {}) or {}, value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = out.get(key, 0) + value
        else:
            out.setdefault(key, value)
    return out
