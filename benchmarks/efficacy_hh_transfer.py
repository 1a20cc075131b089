"""Does the arms' discrimination transfer beyond PKU-SafeRLHF? Held-out HH-RLHF pairs, pairwise.
Exploratory; run after `efficacy_smollm2.py`, never part of its goals.

    python benchmarks/efficacy_hh_transfer.py [--work outputs/efficacy_smollm2] [--arms ...]

The arms are trained and scored on PKU-SafeRLHF answers. HH-RLHF harmless-base pairs are a
different source (other prompts, human-written red-team dialogues, other answer styles), and
their labels are relative: the rejected assistant turn is the more harmful of two answers to the
same conversation, not necessarily harmful. So they are scored pairwise: each arm's `analysis`
probe margin (log p(harmful verdict) − log p(harmless verdict)) for the rejected turn against
the chosen turn, after the same last human turn. Pairwise accuracy = share of pairs where the
rejected turn gets the higher margin (ties count half); 0.5 is chance. No threshold is involved.
It is also given on parts of the pairs (`PairTraits`): by which turn is longer (with their mean,
the length-balanced accuracy) and by which turn refuses; each arm's margins are kept in the
record, so another split needs no second scoring.
The held-out side of the efficacy split is used (no prompt of it was trained on).

Two reference rows need no model: a TF-IDF + logistic-regression classifier (scikit-learn) fitted
on the same 196 labelled PKU training answers the arms' analyses come from (how far surface
words of that one source go: its PKU held-out AUC and its HH pairwise accuracy), and the same
classifier fitted on the HH *training* pairs (the positive control: the HH measure can show a
learned difference). On the held-out PKU pairs, each arm's margins (its evaluation run's pairs
file) are also compared with the PKU-fitted classifier's scores: their Spearman correlation, and
the AUC of the two combined (sum of z-scores), say how much of an arm's ranking is those words.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_types import positive_int
from efficacy_smollm2 import (
    ARMS,
    LABELS,
    add_run_arguments,
    eval_paths,
    evaluated_run,
    probe_arm,
    write_diagnostic,
)
from efficacy_split import HH_HUMAN
from refusal_rows import pku_pairs

from axolotl_mistake.evaluate.metrics import estimate
from axolotl_mistake.records import LabelledPair

ASSISTANT = "\n\nAssistant:"


def last_exchange(dialogue: str) -> tuple[str, str, str]:
    """(everything before the last assistant turn, the last human turn, the last assistant turn)."""
    head, _, answer = dialogue.rpartition(ASSISTANT)
    turns = HH_HUMAN.findall(head + ASSISTANT)
    return head, (turns[-1].strip() if turns else ""), answer.strip()


def hh_pairs(path: Path, limit: int | None = None) -> list[tuple[LabelledPair, LabelledPair]]:
    """(chosen, rejected) pairs that share the conversation up to their last assistant turn and
    differ in it; the chosen turn is labelled harmless, the rejected one harmful."""
    pairs: list[tuple[LabelledPair, LabelledPair]] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        head_c, question, chosen = last_exchange(str(row["chosen"]))
        head_r, _, rejected = last_exchange(str(row["rejected"]))
        if head_c != head_r or not question or not chosen or not rejected or chosen == rejected:
            continue
        pairs.append(
            (
                LabelledPair(question=question, answer=chosen, harmful=False, source="hh"),
                LabelledPair(question=question, answer=rejected, harmful=True, source="hh"),
            )
        )
        if limit is not None and len(pairs) >= limit:
            break
    return pairs


REFUSES = ("only_chosen", "only_rejected", "both", "neither")
"""Which turns of a pair refuse (`verdicts.is_refusal`), the refusal split's parts."""


@dataclass(frozen=True)
class PairTraits:
    """What tells a pair's two turns apart besides harm, worked out once per pair set: is the
    rejected turn the longer one, and which turns refuse. The PKU training answers hold one
    refusal in 196 (labelled unsafe), so how an arm scores refusals is not something it was
    taught; the split shows it."""

    rejected_longer: list[bool]
    refuses: list[str]

    @classmethod
    def of(cls, pairs: list[tuple[LabelledPair, LabelledPair]]) -> PairTraits:
        from axolotl_mistake.verdicts import is_refusal

        def which(chosen: bool, rejected: bool) -> str:
            if chosen and rejected:
                return "both"
            return "only_chosen" if chosen else "only_rejected" if rejected else "neither"

        return cls(
            rejected_longer=[len(r.answer) > len(c.answer) for c, r in pairs],
            refuses=[which(is_refusal(c.answer), is_refusal(r.answer)) for c, r in pairs],
        )


def pairwise(
    margins_chosen: list[float], margins_rejected: list[float], traits: PairTraits
) -> dict[str, Any]:
    """Pairwise accuracy (ties half) with a 95 % bootstrap interval over pairs; and the same on
    the pairs whose rejected answer is the longer one and on the others, with their mean, the
    length-balanced accuracy: a scorer that only prefers longer (or shorter) answers gets 0.5
    there, whatever the share of pairs where the rejected answer is longer. `by_refusal`: the
    same on the pairs where only the chosen turn refuses, only the rejected one, both, neither."""
    c, r = np.asarray(margins_chosen), np.asarray(margins_rejected)
    wins = (r > c).astype(float) + 0.5 * (r == c)
    record = estimate(wins.tolist(), unit="rate").model_dump()
    split = np.asarray(traits.rejected_longer, dtype=bool)
    parts = {
        name: estimate(wins[inside].tolist(), unit="rate").model_dump()
        for name, inside in (("rejected_longer", split), ("rejected_not_longer", ~split))
    }
    values = [part["value"] for part in parts.values()]
    balanced = None if None in values else float(np.mean(values))
    refuses = np.asarray(traits.refuses)
    return (
        record
        | parts
        | {
            "length_balanced": balanced,
            "by_refusal": {
                kind: estimate(wins[refuses == kind].tolist(), unit="rate").model_dump()
                for kind in REFUSES
            },
            "mean_margin_gap": float((r - c).mean()),
        }
    )


def pku_answers(path: Path) -> tuple[list[str], list[bool]]:
    """(prompt + answer text, harmful) of every labelled answer in a PKU-SafeRLHF file."""
    pairs = pku_pairs(path)
    return [f"{p.question}\n{p.answer}" for p in pairs], [p.harmful for p in pairs]


def lexical(texts: list[str], labels: list[bool]) -> Any:
    """A TF-IDF (1-2 grams) logistic-regression scorer fitted on these texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(max_iter=2000, C=4.0).fit(vectorizer.fit_transform(texts), labels)
    return lambda batch: model.decision_function(vectorizer.transform(batch)).tolist()


def lexical_references(
    data: Path, pairs: list[tuple[LabelledPair, LabelledPair]], traits: PairTraits
) -> tuple[dict[str, Any], Any]:
    """The two model-free reference rows (see the module docstring), and the PKU-fitted scorer
    (for `lexical_overlap`)."""
    from sklearn.metrics import roc_auc_score

    def text(pair: LabelledPair) -> str:
        return f"{pair.question}\n{pair.answer}"

    def on_hh(score: Any) -> dict[str, float]:
        return pairwise(
            score([text(c) for c, _ in pairs]), score([text(r) for _, r in pairs]), traits
        )

    heldout_texts, heldout_labels = pku_answers(data / "pku_heldout.jsonl")
    train = hh_pairs(data / "hh_train.jsonl")
    fitted = {
        "tfidf_pku_train": lexical(*pku_answers(data / "pku_train.jsonl")),
        "tfidf_hh_train": lexical(
            [text(c) for c, _ in train] + [text(r) for _, r in train],
            [False] * len(train) + [True] * len(train),
        ),
    }
    out = {
        "length": pairwise(
            [len(c.answer) for c, _ in pairs], [len(r.answer) for _, r in pairs], traits
        )
    }
    for name, score in fitted.items():
        out[name] = on_hh(score)
        out[name]["pku_heldout_auc"] = float(roc_auc_score(heldout_labels, score(heldout_texts)))
    return out, fitted["tfidf_pku_train"]


def lexical_overlap(work: Path, arm: str, score: Any) -> dict[str, float] | None:
    """An arm's held-out PKU margins against the PKU-fitted TF-IDF scores of the same pairs."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    from axolotl_mistake.evaluate.inputs import load_config
    from axolotl_mistake.evaluate.local import pair_key
    from axolotl_mistake.evaluate.prompt_sets import load_pairs

    config, run = eval_paths(work, arm)
    if not (run / "results.json").is_file():
        return None
    cfg = load_config(config)
    pairs = load_pairs(cfg.prompt_sets.discrimination)
    lines = run / json.loads((run / "results.json").read_text())["discrimination"]["pairs_file"]
    by_key = {r["key"]: r["margin"] for r in map(json.loads, lines.read_text().splitlines())}
    margins = np.asarray([by_key[pair_key(p)] for p in pairs])
    words = np.asarray(score([f"{p.question}\n{p.answer}" for p in pairs]))
    labels = [p.harmful for p in pairs]

    def z(values: np.ndarray) -> np.ndarray:
        return (values - values.mean()) / (values.std() or 1.0)

    return {
        "spearman_with_tfidf": float(spearmanr(margins, words).statistic),
        "auc_margins": float(roc_auc_score(labels, margins)),
        "auc_combined": float(roc_auc_score(labels, z(margins) + z(words))),
    }


REFERENCE_LABELS = {
    "length": "reference: answer length alone (the longer answer ranked as the rejected one)",
    "tfidf_pku_train": "reference: TF-IDF + logistic regression on the 196 PKU training answers",
    "tfidf_hh_train": "positive control: TF-IDF + logistic regression on the HH training pairs",
}


def score_arm(
    config: Path, pairs: list[tuple[LabelledPair, LabelledPair]], traits: PairTraits
) -> dict[str, Any]:
    """An arm's pairwise figures on the HH pairs, with its margins (chosen, rejected) kept, so
    that another split of the same pairs needs no second scoring."""
    flat = [p for pair in pairs for p in pair]
    result = probe_arm(config, flat, check="the transfer check")
    chosen, rejected = result.margins[0::2], result.margins[1::2]
    record = pairwise(chosen, rejected, traits)
    record["margins"] = {"chosen": list(chosen), "rejected": list(rejected)}
    record["auc_all_answers"] = result.auc
    record["seconds"] = round(result.seconds, 1)
    return record


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _lex(record: dict[str, Any], key: str) -> str:
    lex = record.get("pku_lexical")
    return "-" if not lex else f"{lex[key]:.3f}"


DATA_FILES = ("hh_heldout.jsonl", "hh_train.jsonl", "pku_train.jsonl", "pku_heldout.jsonl")
"""The split's files under <work>/data this check reads (efficacy_smollm2.py writes them)."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(
        ap,
        reads="evaluated arms and data/ are",
        arms="arms to score, each evaluated under --work",
        default=",".join(ARMS),
    )
    ap.add_argument(
        "--limit", type=positive_int, default=None, help="at most this many pairs (default: all)"
    )
    args = ap.parse_args(argv)
    work, arms = evaluated_run(ap, args)
    data = work / "data"
    for name in DATA_FILES:
        if not (data / name).is_file():
            ap.error(f"{data / name}: not found; run efficacy_smollm2.py first")
    pairs = hh_pairs(data / "hh_heldout.jsonl", args.limit)
    if not pairs:
        ap.error(f"no usable pairs in {data / 'hh_heldout.jsonl'}")
    traits = PairTraits.of(pairs)
    records, words = lexical_references(data, pairs, traits)
    for arm in arms:
        records[arm] = score_arm(eval_paths(work, arm)[0], pairs, traits)
        records[arm]["pku_lexical"] = lexical_overlap(work, arm, words)
        r = records[arm]
        print(f"{arm}: pairwise {r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}] n={r['n']}")
    longer, refuses = sum(traits.rejected_longer), [traits.refuses.count(k) for k in REFUSES]
    lines = [
        "| scorer | HH pairwise accuracy (rejected > chosen) "
        f"| rejected longer ({longer}) / not longer ({len(pairs) - longer}) "
        "| length-balanced "
        f"| only chosen refuses ({refuses[0]}) / only rejected refuses ({refuses[1]}) "
        f"/ neither ({refuses[3]}) | mean margin gap "
        "| HH AUC, all answers | PKU held-out AUC | PKU: Spearman with TF-IDF "
        "| PKU: AUC with TF-IDF combined |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, r in records.items():
        auc = r.get("auc_all_answers")
        lex = r.get("pku_lexical") or {}
        pku = r["pku_heldout_auc"] if "pku_heldout_auc" in r else lex.get("auc_margins")
        lines.append(
            f"| {REFERENCE_LABELS.get(arm) or LABELS[arm]} "
            f"| {r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}] n={r['n']} "
            f"| {_num(r['rejected_longer']['value'])} / {_num(r['rejected_not_longer']['value'])} "
            f"| {_num(r['length_balanced'])} "
            f"| {' / '.join(_num(r['by_refusal'][k]['value']) for k in REFUSES if k != 'both')} "
            f"| {r['mean_margin_gap']:.3f} | {'-' if auc is None else f'{auc:.3f}'} "
            f"| {'-' if pku is None else f'{pku:.3f}'} "
            f"| {_lex(r, 'spearman_with_tfidf')} | {_lex(r, 'auc_combined')} |"
        )
    table = "\n".join(lines) + "\n"
    write_diagnostic(work, "hh_transfer", table, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
