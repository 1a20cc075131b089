"""PKU-SafeRLHF loader: red-team prompts with two answers, each carrying a safety label.

An unsafe answer (`is_response_i_safe: false`) becomes an "origin" mistake (`unsafe_answer`); a safe
one a harmless SFT answer (`safe_answer`). Harm categories and severities stay in `meta`. Never
drops or relabels an answer: every response of the file lands in exactly one row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from axolotl_mistake.records import LabelledPair, PromptKind, SourceRow
from axolotl_mistake.sources.base import Record, SourceBase, split_field
from axolotl_mistake.sources.stream import iter_records

HUB_ID = "PKU-Alignment/PKU-SafeRLHF"


class PkuSafeRlhfSource(SourceBase):
    """PKU-SafeRLHF (Hub `PKU-Alignment/PKU-SafeRLHF`, or a local json/jsonl/parquet copy).

    Rows per prompt (ids are `<tag>:<line>` or `<tag>:<line>:<i>`, `i` the response index):
    one safe and one unsafe answer -> one row holding both (id `<tag>:<line>`); two unsafe answers
    -> two rows with `unsafe_answer`; two safe answers -> two rows with `safe_answer`. So the counts
    of `unsafe_answer`/`safe_answer` equal the dataset's unsafe/safe response counts.
    `kind` is "harmful" when any answer of the prompt is unsafe (the prompt did elicit harm),
    otherwise `safe_prompt_kind` (the labels are on answers, not prompts).
    """

    kind: Literal["pku_saferlhf"] = Field(
        default="pku_saferlhf", description="Selects this loader."
    )
    split: str = split_field("'train' or 'test'")
    safe_prompt_kind: PromptKind = Field(
        default="unknown",
        description=(
            "`kind` for prompts whose two answers are both safe. 'unknown' by default: PKU prompts "
            "are red-team prompts, but two safe answers do not prove the prompt harmful."
        ),
    )

    def rows(self) -> Iterator[SourceRow]:
        """Instruction rows with origin mistakes / harmless answers (see the class docstring)."""
        tag = self.source_tag
        for rec in iter_records(self):
            prompt, answers = _answers(rec)
            base = _row_meta(rec)
            unsafe = [a for a in answers if not a[2]]
            safe = [a for a in answers if a[2]]
            kind: PromptKind = "harmful" if unsafe else self.safe_prompt_kind
            if len(unsafe) == 1 and len(safe) == 1:
                (ui, utext, _), (si, stext, _) = unsafe[0], safe[0]
                meta = {**base, "unsafe": _meta(rec, ui), "safe": _meta(rec, si)}
                yield rec.row(
                    tag,
                    instruction=prompt,
                    kind=kind,
                    unsafe_answer=utext,
                    safe_answer=stext,
                    meta=meta,
                )
                continue
            for i, text, is_safe in answers:
                label = "safe" if is_safe else "unsafe"
                yield rec.row(
                    tag,
                    f"{tag}:{rec.line}:{i}",
                    instruction=prompt,
                    kind=kind,
                    safe_answer=text if is_safe else None,
                    unsafe_answer=None if is_safe else text,
                    meta={**base, label: _meta(rec, i)},
                )

    def pairs(self) -> Iterator[LabelledPair]:
        """Every response as a labelled pair, in file order (response_0 then response_1)."""
        tag = self.source_tag
        for rec in iter_records(self):
            prompt, answers = _answers(rec)
            for i, text, is_safe in answers:
                yield LabelledPair(
                    question=prompt,
                    answer=text,
                    harmful=not is_safe,
                    source=f"{tag}:{rec.line}:{i}",
                )


def _meta(rec: Record, i: int) -> dict:
    """Per-answer provenance: source model, harm categories that are true, severity."""
    out: dict = {"response": i}
    src = rec.opt_text(f"response_{i}_source")
    if src is not None:
        out["source"] = src
    cats = rec.opt_dict(f"response_{i}_harm_category")
    if cats is not None:
        out["harm_categories"] = sorted(k for k, v in cats.items() if v)
    sev = rec.opt_int(f"response_{i}_severity_level")
    if sev is not None:
        out["severity_level"] = sev
    return out


def _row_meta(rec: Record) -> dict:
    meta: dict = {}
    ps = rec.opt_text("prompt_source")
    if ps is not None:
        meta["prompt_source"] = ps
    for key in ("better_response_id", "safer_response_id"):
        value = rec.opt_int(key)
        if value is not None:
            meta[key] = value
    return meta


def _answers(rec: Record) -> tuple[str, list[tuple[int, str, bool]]]:
    """(prompt, [(index, response, is_safe), ...]) validated."""
    prompt = rec.text("prompt")
    return prompt, [
        (i, rec.text(f"response_{i}"), rec.flag(f"is_response_{i}_safe")) for i in (0, 1)
    ]
