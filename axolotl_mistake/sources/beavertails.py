"""BeaverTails loader: (prompt, response, is_safe) QA pairs with harm categories.

An unsafe response becomes an origin mistake (`unsafe_answer`), a safe one a harmless answer
(`safe_answer`); every row is also a labelled pair for the discrimination probe. Never relabels.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from axolotl_mistake.records import LabelledPair, PromptKind, SourceRow
from axolotl_mistake.sources.base import Record, SourceBase, limited
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


def _parse(rec: Record) -> tuple[str, str, bool, dict]:
    prompt = rec.text("prompt")
    response = rec.text("response")
    is_safe = rec.flag("is_safe")
    cats = rec.opt_dict("category")
    meta = {"harm_categories": sorted(k for k, v in cats.items() if v)} if cats is not None else {}
    return prompt, response, is_safe, meta


def _rows(cfg: BeaverTailsSource) -> Iterator[SourceRow]:
    tag = cfg.source_tag
    for rec in iter_records(cfg):
        prompt, response, is_safe, meta = _parse(rec)
        yield SourceRow(
            id=f"{tag}:{rec.line}",
            instruction=prompt,
            kind=cfg.safe_prompt_kind if is_safe else "harmful",
            safe_answer=response if is_safe else None,
            unsafe_answer=None if is_safe else response,
            source=tag,
            file=rec.file,
            line=rec.line,
            meta={**meta, "is_safe": is_safe},
        )


def iter_rows(cfg: BeaverTailsSource) -> Iterator[SourceRow]:
    """One row per QA pair, in file order."""
    return limited(_rows(cfg), cfg.limit)


def _pairs(cfg: BeaverTailsSource) -> Iterator[LabelledPair]:
    tag = cfg.source_tag
    for rec in iter_records(cfg):
        prompt, response, is_safe, _ = _parse(rec)
        yield LabelledPair(
            question=prompt, answer=response, harmful=not is_safe, source=f"{tag}:{rec.line}"
        )


def iter_pairs(cfg: BeaverTailsSource) -> Iterator[LabelledPair]:
    """Every QA pair with harmful = not is_safe."""
    return limited(_pairs(cfg), cfg.limit)
