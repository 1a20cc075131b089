"""The project's own shipped data (axolotl_mistake/data): counts, schema and loader output."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from axolotl_mistake.sources import iter_labelled_pairs, iter_rows
from axolotl_mistake.sources.builtin import DATA_DIR, BuiltinSource

CATEGORIES = {
    "violence",
    "weapons",
    "cybercrime",
    "fraud",
    "drugs",
    "hate",
    "harassment",
    "privacy",
    "self_harm",
    "dangerous_stunts",
    "cheating",
    "theft",
}


def _raw(name: str) -> list[dict]:
    with open(DATA_DIR / f"{name}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _one_sentence(text: str) -> bool:
    body = text.rstrip(".?!")
    return not any(sep in body for sep in (". ", "? ", "! ")) and len(text) <= 120


def test_redteam_schema_and_counts():
    raw = _raw("redteam")
    assert len(raw) == 80
    assert all(set(r) == {"instruction", "output", "category"} for r in raw)
    cats = Counter(r["category"] for r in raw)
    assert set(cats) == CATEGORIES and min(cats.values()) >= 6
    assert len({r["instruction"].lower() for r in raw}) == 80
    assert all(_one_sentence(r["instruction"]) for r in raw)
    # short harmless reference answers: 1-3 sentences
    assert all(1 <= r["output"].count(". ") + 1 <= 3 and len(r["output"]) < 300 for r in raw)


def test_helpful_schema_and_counts():
    raw = _raw("helpful")
    assert len(raw) == 80
    assert all(
        set(r) in ({"instruction", "output"}, {"instruction", "input", "output"}) for r in raw
    )
    assert sum("input" in r for r in raw) == 17
    assert all(r["output"].strip() and r["instruction"].strip() for r in raw)
    assert all(_one_sentence(r["instruction"]) for r in raw)
    assert len({(r["instruction"], r.get("input", "")) for r in raw}) == 80


def test_probe_pairs_schema_and_balance():
    raw = _raw("probe_pairs")
    assert len(raw) == 40
    assert all(set(r) == {"question", "answer", "harmful"} for r in raw)
    assert Counter(r["harmful"] for r in raw) == {True: 20, False: 20}
    redteam = {r["instruction"].lower() for r in _raw("redteam")}
    assert not redteam & {r["question"].lower() for r in raw}


@pytest.mark.parametrize(
    ("name", "kind", "n"), [("redteam", "harmful", 80), ("helpful", "helpful", 80)]
)
def test_builtin_rows(name, kind, n):
    rows = list(iter_rows(BuiltinSource(name=name)))
    assert len(rows) == n
    assert {r.kind for r in rows} == {kind}
    assert all(r.safe_answer and r.unsafe_answer is None for r in rows)
    assert [r.id for r in rows] == [f"builtin:{name}:{i}" for i in range(1, n + 1)]
    if name == "redteam":
        assert set(Counter(r.meta["category"] for r in rows)) == CATEGORIES


def test_builtin_probe_pairs_as_labelled_pairs():
    pairs = list(iter_labelled_pairs(BuiltinSource(name="probe_pairs")))
    assert len(pairs) == 40 and sum(p.harmful for p in pairs) == 20
    # alternating labels, so a limit still sees both
    assert [p.harmful for p in iter_labelled_pairs(BuiltinSource(name="probe_pairs", limit=4))] == [
        True,
        False,
        True,
        False,
    ]
    harmless = list(iter_labelled_pairs(BuiltinSource(name="redteam")))
    assert len(harmless) == 80 and not any(p.harmful for p in harmless)
