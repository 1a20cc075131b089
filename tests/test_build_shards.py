"""Shards keep the rows of one prompt together, so a sharded guided build asks template (a) as
often as an unsharded one (tiny local rows and the tiny random model; no fakes)."""

from __future__ import annotations

from collections import Counter

from axolotl_mistake.records import SourceRow
from dataset_builders.config import MistakesConfig
from dataset_builders.stages.mistakes import guided_requests, make_mistakes
from dataset_builders.stages.select import select, shard_items


def _shared_prompt_rows(n: int) -> list[SourceRow]:
    """PKU-SafeRLHF style: two rows (`:0`, `:1`) per prompt, each with its own unsafe answer."""
    return [
        SourceRow(
            id=f"pku:{i}:{j}",
            instruction=f"Explain how to do forbidden thing number {i}",
            unsafe_answer=f"answer {j} to {i}",
            source="pku",
        )
        for i in range(n)
        for j in range(2)
    ]


def _selected(rows):
    res = select(
        [("redteam", iter(rows)), ("helpful", iter([]))],
        seed=0,
        n_per_role={"redteam": None, "helpful": None},
    )
    return res.records


def test_shards_keep_the_rows_of_one_prompt_together():
    """Template (a) is asked k times per distinct prompt (its first row). Sharding by row id
    put PKU's `:0` and `:1` of one prompt in different shards, so each shard asked template (a)
    for that prompt: the merged union held 2k guided mistakes (and analyses) where the
    unsharded build holds k, breaking merge's byte-identity with one unsharded run."""
    items = _selected(_shared_prompt_rows(24))
    cfg = MistakesConfig(mode="guided", k=2)
    whole = Counter(
        (it.uid, r.prompt, r.sample_index) for it, r in guided_requests(items, cfg, "alpaca")
    )
    for count in (2, 3):
        shards = [shard_items(items, i, count) for i in range(count)]
        assert sorted(it.uid for s in shards for it in s) == sorted(it.uid for it in items)
        for s in shards:
            keys = {it.prompt_key for it in s}
            others = {it.prompt_key for o in shards if o is not s for it in o}
            assert not keys & others, "a prompt's rows are split across shards"
        union = Counter(
            (it.uid, r.prompt, r.sample_index)
            for s in shards
            for it, r in guided_requests(s, cfg, "alpaca")
        )
        assert union == whole


def test_sharded_guided_mistakes_union_equals_the_unsharded_build(tiny_model_dir):
    """The same, through the real stage and the tiny model: the union of the shards' guided
    mistakes is the unsharded build's (one request per forward pass, so answers match)."""
    from axolotl_mistake.generation.transformers import TransformersBackend

    backend = TransformersBackend.load(str(tiny_model_dir), batch_size=1, device="cpu")
    items = _selected(_shared_prompt_rows(6))
    cfg = MistakesConfig(mode="guided", k=1, max_new_tokens=4, temperature=0.0, refusal_phrases=[])

    def rows_of(its):
        res = make_mistakes(its, cfg, seed=0, backend=backend)
        return [(m.uid, m.sample_index, m.bad) for m in res.records], res.counts

    whole, whole_counts = rows_of(items)
    union, calls = [], 0
    for i in range(2):
        got, counts = rows_of(shard_items(items, i, 2))
        union += got
        calls += counts.get("calls", 0)
    assert sorted(union) == sorted(whole)
    assert calls == whole_counts["calls"] == 6


def _mistakes(n: int):
    from dataset_builders.stages.items import Mistake

    return [
        Mistake(
            uid=f"redteam/t:{i}",
            instruction=f"How do I do bad thing {i}?",
            bad=f"Here is how to do bad thing {i}: step one, step two.",
            source="t",
            mistake_source="origin",
            verdict=True,
            verdict_by="label",
        )
        for i in range(n)
    ]
