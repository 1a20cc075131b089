"""BeaverTails loader: (prompt, response, is_safe) QA pairs with harm categories.

An unsafe response becomes an origin mistake (`unsafe_answer`), a safe one a harmless answer
(`safe_answer`); every row is also a labelled pair for the discrimination probe. Never relabels.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from axolotl_mistake.records import LabelledPair, PromptKind, SourceRow
from axolotl_mistake.sources.base import Record, SourceBase
from axolotl_mistake.sources.stream import iter_records

HUB_ID = "PKU-Alignment/BeaverTails"


class BeaverTailsSource(SourceBase):
    """BeaverTails (Hub `PKU-Alignment/BeaverTails`, or a local json/jsonl/parquet copy).

    One row per record, id `<tag>:<line>`. `kind` is "harmful" when the response is unsafe,
    otherwise `safe_prompt_kind`. `meta["harm_categories"]` lists the categories marked true.
    """

    kind: Literal["beavertails"] = Field(default="beavertails", description="Selects this loader.")
    split: str = Field(
        default="30k_train",
        description="Hub split: '30k_train', '30k_test', '330k_train' or '330k_test'.",
    )
    safe_prompt_kind: PromptKind = Field(
        default="unknown",
        description="`kind` for rows whose response is safe (the label is on the answer, not the prompt).",
    )

    def rows(self) -> Iterator[SourceRow]:
        """One row per QA pair, in file order."""
        tag = self.source_tag
        for rec in iter_records(self):
            prompt, response, is_safe, meta = _parse(rec)
            yield rec.row(
                tag,
                instruction=prompt,
                kind=self.safe_prompt_kind if is_safe else "harmful",
                safe_answer=response if is_safe else None,
                unsafe_answer=None if is_safe else response,
                meta={**meta, "is_safe": is_safe},
            )

    def pairs(self) -> Iterator[LabelledPair]:
        """Every QA pair with harmful = not is_safe."""
        tag = self.source_tag
        for rec in iter_records(self):
            prompt, response, is_safe, _ = _parse(rec)
            yield LabelledPair(
                question=prompt, answer=response, harmful=not is_safe, source=f"{tag}:{rec.line}"
            )


def _parse(rec: Record) -> tuple[str, str, bool, dict]:
    prompt = rec.text("prompt")
    response = rec.text("response")
    is_safe = rec.flag("is_safe")
    cats = rec.opt_dict("category")
    meta = {"harm_categories": sorted(k for k, v in cats.items() if v)} if cats is not None else {}
    return prompt, response, is_safe, meta
