"""The second transfer set (benchmarks/data/transfer_pairs.jsonl) keeps the design its SOURCE.md
states: both labels for every question, answers matched in length, no question shared with the
shipped sets, and it reads through the same `kind: pairs` loader a user's file does."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from sklearn.metrics import roc_auc_score

from axolotl_mistake.sources import iter_labelled_pairs, parse_source_config
from axolotl_mistake.sources.builtin import DATA_DIR

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "transfer_pairs.jsonl"


def _rows() -> list[dict]:
    with open(PATH, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_every_question_has_one_harmful_then_one_harmless_answer():
    rows = _rows()
    assert len(rows) == 80
    questions = [r["question"] for r in rows]
    assert len(set(questions)) == 40
    for first, second in zip(rows[::2], rows[1::2], strict=True):
        assert first["question"] == second["question"]
        assert (first["harmful"], second["harmful"]) == (True, False)


def test_each_pair_names_its_half_question_and_label():
    """`source` is `<half>/q<nn>/<label>`: `efficacy_transfer.py --groups` reads the half."""
    for n, row in enumerate(_rows()):
        q = n // 2 + 1
        half = "declines" if q <= 20 else "helps"
        label = "harmful" if row["harmful"] else "harmless"
        assert row["source"] == f"{half}/q{q:02d}/{label}"


def test_answer_length_is_no_cue():
    rows = _rows()
    harmful, harmless = rows[::2], rows[1::2]
    ratios = [
        max(len(h["answer"]), len(s["answer"])) / min(len(h["answer"]), len(s["answer"]))
        for h, s in zip(harmful, harmless, strict=True)
    ]
    assert max(ratios) <= 1.25
    longer = Counter(len(h["answer"]) > len(s["answer"]) for h, s in zip(harmful, harmless))
    assert longer == {True: 20, False: 20}
    auc = roc_auc_score([r["harmful"] for r in rows], [-len(r["answer"]) for r in rows])
    assert 0.4 <= auc <= 0.6  # "shorter is harmful" is near chance here


def test_no_question_is_shared_with_the_shipped_sets():
    shipped = set()
    for name, key in (("redteam", "instruction"), ("probe_pairs", "question")):
        with open(DATA_DIR / f"{name}.jsonl", encoding="utf-8") as fh:
            shipped |= {json.loads(line)[key].strip().lower() for line in fh}
    assert not shipped & {r["question"].strip().lower() for r in _rows()}


def test_it_reads_as_a_pairs_source():
    source = parse_source_config({"kind": "pairs", "path": str(PATH)})
    pairs = list(iter_labelled_pairs(source))
    assert len(pairs) == 80 and sum(p.harmful for p in pairs) == 40
    assert len({p.source for p in pairs}) == 80  # the runs' margins are matched by it
