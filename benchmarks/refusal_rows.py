"""Refusal-style harmless SFT rows: the positive control for the harmless-rate measure.

The efficacy arms' harmless SFT rows are PKU-SafeRLHF's safe answers, which are mostly helpful
and safe rather than refusals, and the evaluation's refusal judge only counts refusals. So a
harmless rate near 0 in every arm could mean "critique training does not change generation"
or "nothing this experiment trains could move the measure". These rows tell the two apart: an
arm trained on refusals to the training-side red-team prompts must refuse more held-out
red-team prompts, or the measure (generation + judge) is blind.

Prompts: the PKU-SafeRLHF training prompts with at least one answer labelled unsafe, then the
first human turns of HH-RLHF harmless-base training conversations (red-team by construction),
skipping any prompt that is also a held-out red-team prompt. Some HH first turns are benign
("What's in the news these days?"), so the rows also teach some over-refusal: XSTest measures
it, and the comparison that matters holds these rows fixed (`refusal` vs `anchored_refusal`).
Refusals: the sentences below,
written for this project, one chosen per prompt by a stable hash. Never used by the library.
"""

from __future__ import annotations

import json
from pathlib import Path

from efficacy_split import HH_HUMAN

from axolotl_mistake.fileio import write_atomic
from dataset_builders.stages.common import normalise, stable_hash

REFUSALS = (
    "I'm sorry, but I can't help with that. It could hurt other people or break the law.",
    "I can't help with this request. Doing it could cause real harm, so I won't give "
    "instructions for it.",
    "I'm sorry, I won't do that. It would be unsafe and unfair to the people affected.",
    "I cannot help with that. If you are in a difficult situation, a trusted person or a "
    "professional can help you find a safe and legal way forward.",
    "Sorry, but I can't assist with this. It asks for something harmful, and I don't want to "
    "put anyone at risk.",
    "I'm not able to help with that, because it could be used to harm someone. I'm happy to "
    "help with something else.",
)
SALT = "axolotl-mistake refusal rows v1"
MIN_PROMPT_CHARS = 20


def refusal_for(prompt: str) -> str:
    """One of the project's refusal sentences, the same for a prompt on every machine."""
    return REFUSALS[stable_hash(SALT, normalise(prompt)) % len(REFUSALS)]


def red_team_prompts(data: Path, limit: int) -> list[str]:
    """Training-side red-team prompts, PKU (labelled unsafe answers) first, then HH."""
    heldout = {
        normalise(json.loads(line)["instruction"])
        for line in (data / "redteam_heldout.jsonl").read_text().splitlines()
        if line.strip()
    }
    seen: set[str] = set()
    prompts: list[str] = []

    def take(prompt: str) -> None:
        key = normalise(prompt)
        if len(prompt) >= MIN_PROMPT_CHARS and key not in seen and key not in heldout:
            seen.add(key)
            prompts.append(prompt)

    for line in (data / "pku_train.jsonl").read_text().splitlines():
        row = json.loads(line)
        if not (row["is_response_0_safe"] and row["is_response_1_safe"]):
            take(str(row["prompt"]).strip())
    for line in (data / "hh_train.jsonl").read_text().splitlines():
        if len(prompts) >= limit:
            break
        match = HH_HUMAN.search(str(json.loads(line)["chosen"]))
        if match:
            take(match.group(1).strip())
    return prompts[:limit]


def write_refusal_rows(data: Path, out: Path, limit: int) -> int:
    """Alpaca-format rows (instruction, empty input, refusal) to `out`; returns the row count.

    Rewritten only when its content would change (same prompts, same sentences = same file)."""
    return _write_unless_same(
        out,
        [
            {"instruction": p, "input": "", "output": refusal_for(p)}
            for p in red_team_prompts(data, limit)
        ],
    )


def write_refusal_pairs(data: Path, out: Path, limit: int) -> int:
    """Labelled pairs (`{question, answer, harmful: false}`, the `pairs` source) of a refusal to
    each of the first `limit` training-side red-team prompts, for a build whose labelled
    harmless answers should include refusals; returns the pair count. Rewritten only when its
    content would change, as `write_refusal_rows`."""
    return _write_unless_same(
        out,
        [
            {"question": p, "answer": refusal_for(p), "harmful": False}
            for p in red_team_prompts(data, limit)
        ],
    )


def _write_unless_same(out: Path, rows: list[dict[str, object]]) -> int:
    """`rows` as JSON lines to `out`, left untouched when it already holds exactly them (its
    time and content stay, so a training that read it stays fresh); returns the row count."""
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if not out.exists() or out.read_text() != text:
        write_atomic(out, text)
    return len(rows)
