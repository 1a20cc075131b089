"""Plain-text reference of every source kind and its keys, generated from the pydantic fields.

For `--help` texts and docs (`python -m axolotl_mistake.sources.describe`). Never hand-written:
the descriptions live on the config classes only.
"""

from __future__ import annotations

from axolotl_mistake.configio import describe_model
from axolotl_mistake.sources import SOURCE_CLASSES


def source_help_lines(width: int = 96) -> list[str]:
    """One block per kind: its docstring's first line, then `key (default): description`."""
    out: list[str] = []
    for cls in SOURCE_CLASSES:
        kind = cls.model_fields["kind"].default
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        out.append(f"kind: {kind} -- {doc}")
        out.extend(describe_model(cls, skip=("kind",), width=width))
        out.append("")
    return out


def kinds_and_keys() -> dict[str, list[str]]:
    """{kind: [keys]} for quick checks and docs."""
    return {cls.model_fields["kind"].default: list(cls.model_fields) for cls in SOURCE_CLASSES}


if __name__ == "__main__":
    print("\n".join(source_help_lines()))
