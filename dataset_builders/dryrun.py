"""`--dry-run`: instructions, model calls, prompt tokens (real tokenizer) and an upper bound of
generated tokens per stage, without generating or writing anything.

Prompts that depend on generated text (analyses of guided mistakes, revisions) are counted
with that text at its token budget, so their numbers are upper bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from axolotl_mistake.generation.config import BackendConfig
from dataset_builders.config import BuildConfig
from dataset_builders.chat_prefill import ChatRenderer
from dataset_builders.stages import analyses as analyses_stage
from dataset_builders.stages import harmless as harmless_stage
from dataset_builders.stages import mistakes as mistakes_stage
from dataset_builders.stages import revise as revise_stage
from dataset_builders.stages import verify as verify_stage
from dataset_builders.stages.items import Analysis, Item, Mistake


@dataclass
class StagePlan:
    """One stage's numbers in a dry run."""

    stage: str
    instructions: int
    calls: int
    prompt_tokens: int
    max_new_tokens: int
    """Upper bound of generated tokens: calls x the stage's max_new_tokens."""
    exact: bool = True
    """False when prompt_tokens is an upper bound (depends on text not generated yet)."""

    def to_dict(self) -> dict:
        return {
            "stage": self.stage,
            "instructions": self.instructions,
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "max_new_tokens": self.max_new_tokens,
            "prompt_tokens_exact": self.exact,
        }


def load_tokenizer(bcfg: BackendConfig) -> tuple[Any, str]:
    """The model's real tokenizer; for a served model whose tokenizer is not available locally,
    the embedded model's (noted in the returned label)."""
    from transformers import AutoTokenizer

    from axolotl_mistake.models import ensure_embedded_model

    if bcfg.model == "embedded":
        return AutoTokenizer.from_pretrained(ensure_embedded_model()), "embedded"
    try:
        return AutoTokenizer.from_pretrained(bcfg.model, revision=bcfg.revision), bcfg.model
    except (OSError, ValueError):
        if bcfg.kind != "openai":
            raise
        return (
            AutoTokenizer.from_pretrained(ensure_embedded_model()),
            f"embedded (stand-in: no local tokenizer for {bcfg.model})",
        )


class TokenCounter:
    """Counts prompt tokens of requests the way a local backend would render them."""

    def __init__(self, tokenizer: Any):
        self.tok = tokenizer

    def __call__(self, requests: Sequence) -> int:
        total = 0
        for r in requests:
            if r.prompt is not None:
                total += len(self.tok(r.prompt, add_special_tokens=False)["input_ids"])
            elif getattr(self.tok, "chat_template", None):
                ids = self.tok.apply_chat_template(
                    [dict(m) for m in r.messages], add_generation_prompt=True, tokenize=True
                )
                if isinstance(ids, dict) or hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                total += len(ids)
            else:
                text = "\n".join(m["content"] for m in r.messages)
                total += len(self.tok(text, add_special_tokens=False)["input_ids"])
        return total


def plan(
    cfg: BuildConfig, items: list[Item], tokenizer: Any, render_chat: ChatRenderer | None = None
) -> list[StagePlan]:
    """Per-stage plan of the calls the build would make on `items` (the shard's items)."""
    count = TokenCounter(tokenizer)
    fmt = cfg.prompt_format
    train = [it for it in items if it.role == "redteam" and it.split == "train"]
    m_cfg, a_cfg = cfg.mistakes, cfg.analyses
    plans: list[StagePlan] = []
    placeholder = ""  # generated text is unknown: counted at its token budget instead
    mistakes: list[Mistake] = []
    bad_budget, exact = 0, True
    if m_cfg.mode in ("guided", "both"):
        reqs = [r for _, r in mistakes_stage.guided_requests(train, m_cfg, fmt)]
        plans.append(StagePlan("mistakes", len(train), len(reqs), count(reqs),
                               len(reqs) * m_cfg.max_new_tokens))
        # a bad answer is at most max_new_tokens long: stand-in text of that many tokens
        bad_budget = m_cfg.max_new_tokens
        mistakes += [
            Mistake(uid=r.uid, sample_index=j, instruction=r.instruction, input=r.input,
                    bad=placeholder, source=r.row.source, mistake_source="guided")
            for r in train for j in range(m_cfg.k)
        ]
        exact = False
    else:
        plans.append(StagePlan("mistakes", len(train), 0, 0, 0))
    if m_cfg.mode in ("origin", "both"):
        mistakes += [
            Mistake(uid=r.uid, instruction=r.instruction, input=r.input,
                    bad=(r.row.unsafe_answer or "").strip(), source=r.row.source,
                    mistake_source="origin")
            for r in train if (r.row.unsafe_answer or "").strip()
        ]
    if m_cfg.refusal_judge is not None:
        reqs = mistakes_stage.refusal_requests(mistakes, fmt)
        plans.append(StagePlan("refusal judge", len(mistakes), len(reqs),
                               count(reqs) + bad_budget * len(reqs), len(reqs) * 4, exact))
    if cfg.verify.mode in ("self_check", "judge"):
        reqs = verify_stage.verify_requests(mistakes, fmt)
        plans.append(StagePlan("verify", len(mistakes), len(reqs),
                               count(reqs) + bad_budget * len(reqs),
                               len(reqs) * cfg.verify.max_new_tokens, exact))
    answers = list(mistakes)
    if a_cfg.balanced:
        answers += harmless_stage.harmless_answers(train).records
    pairs = analyses_stage.analysis_requests(answers, a_cfg, fmt, render_chat)
    reqs = [r for _, r in pairs]
    plans.append(StagePlan("analyses", len(answers), len(reqs), count(reqs) + bad_budget * len(reqs),
                           len(reqs) * a_cfg.max_new_tokens, exact))
    if cfg.emit.critique_revise:
        analyses = [Analysis(mistake=m, analysis_index=j, critique=placeholder, analyst="?")
                    for m, (_, r) in zip([p[0] for p in pairs], pairs) for j in [r.sample_index]]
        reqs = revise_stage.revise_requests(analyses, fmt)
        plans.append(StagePlan("revise", len(mistakes), len(reqs),
                               count(reqs) + (bad_budget + a_cfg.max_new_tokens) * len(reqs),
                               len(reqs) * cfg.revise.max_new_tokens, False))
    return plans
