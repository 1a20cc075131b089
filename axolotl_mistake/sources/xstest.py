"""XSTest loader: safe-but-scary prompts (over-refusal) and their unsafe contrast prompts.

`label: safe` rows get kind "helpful" (a good model answers them: refusing is over-refusal);
`label: unsafe` rows (types `contrast_*`) get kind "harmful". `label`, `type`, `focus` and `note`
stay in `meta`. There are no answers, so never yields labelled pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from axolotl_mistake.records import SourceRow
from axolotl_mistake.sources.base import SourceBase
from axolotl_mistake.sources.stream import iter_records

HUB_ID = "walledai/XSTest"
GITHUB_CSV = (
    "https://raw.githubusercontent.com/paul-rottger/exaggerated-safety/main/xstest_prompts.csv"
)
"""Load it with `hub_id: csv, data_files: <this url>` (goes through datasets.load_dataset)."""

LABELS = ("safe", "unsafe")


class XSTestSource(SourceBase):
    """XSTest v2 (local `xstest_prompts.csv`, Hub `walledai/XSTest`, or the GitHub CSV via
    `hub_id: csv` + `data_files: <raw url>`). Row id: `<tag>:<line>` (CSV: the file line)."""

    kind: Literal["xstest"] = Field(default="xstest", description="Selects this loader.")
    split: str = Field(default="test", description="Hub split (walledai/XSTest has only 'test').")
    label: Literal["safe", "unsafe"] | None = Field(
        default=None,
        description="Keep only prompts with this label ('safe' for the over-refusal set); None keeps all.",
    )

    def rows(self) -> Iterator[SourceRow]:
        """Prompt rows (no answers, so no pairs), optionally only one label."""
        tag = self.source_tag
        for rec in iter_records(self):
            prompt = rec.text("prompt")
            label = rec.choice("label", LABELS)
            type_ = rec.text("type")
            if self.label is not None and label != self.label:
                continue
            meta: dict = {"label": label, "type": type_}
            for key in ("focus", "note"):
                value = rec.opt_text(key)
                if value:
                    meta[key] = value
            if rec.has("id") and rec.data["id"] not in (None, ""):
                meta["xstest_id"] = str(rec.data["id"])
            yield rec.row(
                tag, instruction=prompt, kind="helpful" if label == "safe" else "harmful", meta=meta
            )
