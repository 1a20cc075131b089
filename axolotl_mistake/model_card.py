"""The model card section that records where the mistake-analysis data came from.

Renders the builder's manifest.json (mistake source, analyst, counts, files, harmful-content
note) as markdown and merges it into the README.md Axolotl writes in `output_dir`, between
markers so reruns replace it. Must never drop what Axolotl wrote, nor write half a file.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from axolotl_mistake.fileio import write_atomic

LOG = logging.getLogger(__name__)

BEGIN = "<!-- axolotl-mistake:begin -->"
END = "<!-- axolotl-mistake:end -->"
HEADING = "## Mistake-analysis training data"

HARMFUL_NOTE = (
    "**Harmful-content note.** The mistake-analysis rows quote harmful answers (the model's own "
    "or a dataset's unsafe responses) as *context* for a critique. They were trained with "
    "`train_on_inputs: false`: only the critique carries loss, never the harmful answer. The "
    "data files themselves contain harmful text; handle and share them accordingly."
)


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        model = value.get("model") or value.get("name")
        kind = value.get("kind")
        if model and kind:
            return f"{model} ({kind})"
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def render_section(
    manifest: dict[str, Any],
    manifest_path: str | None = None,
    training: dict[str, Any] | None = None,
) -> str:
    """Markdown for the card, from a builder manifest plus the training run's own settings."""
    lines = [BEGIN, HEADING, ""]
    lines.append(
        "Aligned by *mistake analysis* (Chen et al., ICLR 2024) with "
        "the axolotl-mistake plugin: the model was fine-tuned to critique harmful "
        "answers, mixed with ordinary SFT data."
    )
    lines.append("")
    rows = []
    for key, label in (
        ("mistake_source", "Mistake source"),
        ("analyst", "Analyst (critique writer)"),
        ("model", "Model being aligned"),
        ("prompt_format", "Prompt format"),
        ("version", "Builder version"),
        ("config_hash", "Build config hash"),
        ("created", "Built at"),
    ):
        if manifest.get(key) not in (None, "", {}):
            rows.append(f"| {label} | {_fmt(manifest[key])} |")
    counts = manifest.get("counts")
    if isinstance(counts, dict):
        for key, value in counts.items():
            rows.append(f"| count: {key} | {_fmt(value)} |")
    for key, value in (training or {}).items():
        if value not in (None, "", [], {}):
            rows.append(f"| {key} | {_fmt(value)} |")
    if rows:
        lines += ["| | |", "|---|---|", *rows, ""]
    files = manifest.get("files")
    if isinstance(files, dict) and files:
        lines += ["| file | role | rows | harmful fields |", "|---|---|---|---|"]
        for name, entry in files.items():
            entry = entry if isinstance(entry, dict) else {}
            harmful = ", ".join(entry.get("harmful_fields") or []) or "none"
            lines.append(
                f"| {name} | {entry.get('role', '')} | {entry.get('rows', '')} | {harmful} |"
            )
        lines.append("")
    lines.append(HARMFUL_NOTE)
    if manifest_path:
        lines += ["", f"Manifest: `{manifest_path}`"]
    lines.append(END)
    return "\n".join(lines) + "\n"


_SECTION = re.compile(f"{re.escape(BEGIN)}(?:(?!{re.escape(BEGIN)}).)*?{re.escape(END)}", re.DOTALL)
"""Our section: a begin marker and the first end marker after it, with no begin between (a
marker the user's own text mentions, or one left without its partner, is text, not ours)."""


def merge_section(card: str, section: str) -> str:
    """Replace our last section in an existing card text, or append it."""
    found = list(_SECTION.finditer(card))
    if found:
        last = found[-1]
        return card[: last.start()] + section.rstrip("\n") + card[last.end() :]
    sep = "" if not card or card.endswith("\n\n") else ("\n" if card.endswith("\n") else "\n\n")
    return card + sep + section


def write_card_section(
    output_dir: str | Path, manifest_path: str | Path, training: dict[str, Any] | None = None
) -> Path | None:
    """Add (or refresh) the manifest section in `output_dir/README.md`.

    Returns the card path when it was written, None when the card already held this very
    section (Axolotl reaches the plugin's card hooks up to three times per run).
    """
    manifest_path = Path(manifest_path)
    card = Path(output_dir) / "README.md"
    if card.is_symlink():  # the user's link stays a link: its target gets the section
        card = card.resolve()
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        existing = card.read_text(encoding="utf-8") if card.is_file() else None
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or not JSON
        # runs after training: a card left as it is beats a crash that hides the saved model
        LOG.warning("mistake analysis: model card left as is (%s: %s)", type(exc).__name__, exc)
        return None
    card.parent.mkdir(parents=True, exist_ok=True)
    merged = merge_section(existing or "", render_section(manifest, manifest_path.name, training))
    if merged == existing:
        return None
    write_atomic(card, merged)
    return card
