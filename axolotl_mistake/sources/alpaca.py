"""Alpaca loader: helpful (instruction, input, output) rows for the SFT share of the mix.

Rows get kind "helpful" and `safe_answer = output`. Alpaca answers carry no safety label, so this
source never yields labelled pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from axolotl_mistake.records import SourceRow
from axolotl_mistake.sources.base import SourceBase
from axolotl_mistake.sources.stream import iter_records

HUB_ID = "tatsu-lab/alpaca"


class AlpacaSource(SourceBase):
    """Alpaca (Hub `tatsu-lab/alpaca`, or local alpaca_data.json / JSONL / parquet).

    `instruction` must be a non-empty string; `input` may be absent, null or empty. `output` must
    be a string; the upstream data has a few empty outputs (2 of the 5,000-row sample): such rows
    keep `safe_answer=None` and `meta["empty_output"]=True`, so SFT stages can skip them and count
    them. Row id: `<tag>:<line>`.
    """

    kind: Literal["alpaca"] = Field(default="alpaca", description="Selects this loader.")
    split: str = Field(
        default="train", description="Hub split (tatsu-lab/alpaca has only 'train')."
    )

    def rows(self) -> Iterator[SourceRow]:
        """One helpful row per record, in file order (no pairs: Alpaca has no safety labels)."""
        tag = self.source_tag
        for rec in iter_records(self):
            instruction = rec.text("instruction")
            input_ = rec.opt_text("input") or ""
            output = rec.text("output", allow_empty=True)
            yield rec.row(
                tag,
                instruction=instruction,
                input=input_,
                kind="helpful",
                safe_answer=output if output.strip() else None,
                meta={} if output.strip() else {"empty_output": True},
            )
