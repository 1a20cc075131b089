"""Stage 1, select: filter, dedup, decontaminate, sample N (seeded) and split train/eval.

Streams its input with flat memory: a set of 64-bit hashes for dedup, a bounded heap per role
for the seeded sample. Never reads files itself: the caller passes row iterators.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from axolotl_mistake.records import SourceRow
from dataset_builders.stages.common import (
    Progress,
    StageResult,
    ngrams,
    no_progress,
    normalise,
    stable_hash,
    words,
)
from dataset_builders.stages.items import Item, Role


@dataclass
class DecontaminationIndex:
    """Hashes of evaluation prompts: exact normalised texts, their word n-grams, and the whole
    word sequence of a prompt shorter than n words (it has no n-gram of its own)."""

    n: int = 8
    exact: set[int] = field(default_factory=set)
    grams: set[int] = field(default_factory=set)
    short: dict[int, set[int]] = field(default_factory=dict)  # word count -> hashes

    def add(self, text: str) -> None:
        self.exact.add(stable_hash(normalise(text)))
        tokens = words(text)
        if 0 < len(tokens) < self.n:
            self.short.setdefault(len(tokens), set()).add(stable_hash(*tokens))
        for gram in ngrams(tokens, self.n):
            self.grams.add(stable_hash(*gram))

    @classmethod
    def from_rows(cls, rows: Iterable[SourceRow], n: int) -> DecontaminationIndex:
        index = cls(n=n)
        for row in rows:
            index.add(row.question)
        return index

    def check(self, text: str, threshold: float) -> str | None:
        """'exact', 'ngram' or None (clean). 'ngram': at least `threshold` of the text's
        n-grams occur in an eval prompt, or a short eval prompt occurs whole in it and makes
        up at least `threshold` of its words ("Please, how do I pick a lock?" holds the
        eval prompt "how do I pick a lock" in 6 of its 7 words)."""
        if not self.exact:
            return None
        if stable_hash(normalise(text)) in self.exact:
            return "exact"
        tokens = words(text)
        grams = ngrams(tokens, self.n)
        if grams:
            hit = sum(1 for g in grams if stable_hash(*g) in self.grams)
            if hit / len(grams) >= threshold:
                return "ngram"
        return "ngram" if self._holds_short(tokens, threshold) else None

    def _holds_short(self, tokens: list[str], threshold: float) -> bool:
        """A short eval prompt is a run of `tokens` covering `threshold` of them. Only texts
        of at most (n - 1) / threshold words can qualify, so long texts cost nothing."""
        for size, hashes in self.short.items():
            if size >= len(tokens) or size < threshold * len(tokens):
                continue  # the whole text is `exact`'s case; too small a share
            for start in range(len(tokens) - size + 1):
                if stable_hash(*tokens[start : start + size]) in hashes:
                    return True
        return False


class Hash64Set:
    """A set of 64-bit hashes in one flat array (open addressing): about 16 bytes per entry
    instead of ~70 for a Python set of ints, so dedup over millions of rows stays small."""

    def __init__(self, capacity: int = 1024):
        size = 1
        while size < capacity * 2:
            size *= 2
        self._slots = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, value: int) -> bool:
        """Insert; False when it was already present."""
        value = value or 1  # 0 marks an empty slot
        slots, mask = self._slots, self._mask
        i = value & mask
        while True:
            current = slots[i]
            if current == 0:
                break
            if current == value:
                return False
            i = (i + 1) & mask
        slots[i] = value
        self._count += 1
        if self._count * 2 > mask:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._slots
        self._slots = array("Q", bytes(16 * len(old)))
        self._mask = len(self._slots) - 1
        self._count = 0
        for value in old:
            if value:
                self.add(value)


def _dedup_key(row: SourceRow, text: str) -> str:
    """Normalised prompt plus any labelled answers: the same prompt with a *different* labelled
    answer (PKU-SafeRLHF holds two per prompt) is a distinct mistake, not a duplicate."""
    answers = [normalise(a) for a in (row.unsafe_answer, row.safe_answer) if a]
    return "\x1f".join([normalise(text), *answers])


def select(
    sources: Iterable[tuple[Role, Iterable[SourceRow]]],
    *,
    seed: int,
    n_per_role: dict[str, int | None],
    min_chars: int = 0,
    max_chars: int = 10**9,
    dedup: bool = True,
    decontaminate: DecontaminationIndex | None = None,
    ngram_threshold: float = 0.5,
    eval_fraction: float = 0.0,
    progress: Progress = no_progress,
) -> StageResult:
    """Selected `Item`s sorted by (role, uid), plus counts prefixed by role.

    The sample is the N rows with the smallest seeded hash of their uid, so it does not depend
    on input order; eval rows are chosen by a seeded hash of their normalised prompt (red-team
    rows only), so every row of one prompt is on the same side.
    """
    result = StageResult(records=[])
    seen: dict[str, Hash64Set] = {}
    seen_ids: dict[str, Hash64Set] = {}
    heaps: dict[str, list[tuple[int, int, str, SourceRow]]] = {}
    kept_all: dict[str, list[tuple[str, SourceRow]]] = {}
    order = 0
    for role, rows in sources:
        seen.setdefault(role, Hash64Set())
        seen_ids.setdefault(role, Hash64Set())
        heaps.setdefault(role, [])
        kept_all.setdefault(role, [])
        for row in rows:
            progress(1)
            result.add(f"{role}.read")
            if role == "redteam" and row.kind == "helpful":
                # its source says the prompt is benign (XSTest's safe set, Alpaca): no mistake
                # to induce or analyse
                result.add("redteam.benign_prompt")
                continue
            text = row.question
            if len(row.instruction.strip()) < min_chars:
                result.add(f"{role}.too_short")
                continue
            if len(text) > max_chars:
                result.add(f"{role}.too_long")
                continue
            uid = f"{role}/{row.id}"
            if not seen_ids[role].add(stable_hash(uid)):
                result.add(f"{role}.duplicate_id")
                continue
            if dedup and not seen[role].add(stable_hash(_dedup_key(row, text))):
                result.add(f"{role}.duplicate")
                continue
            if decontaminate is not None:
                hit = decontaminate.check(text, ngram_threshold)
                if hit:
                    result.add(f"{role}.contaminated_{hit}")
                    continue
            result.add(f"{role}.eligible")
            limit = n_per_role.get(role)
            if limit is None:
                kept_all[role].append((uid, row))
                continue
            # keep the `limit` smallest scores: a max-heap via negated scores
            score = stable_hash(seed, "sample", uid)
            order += 1
            entry = (-score, order, uid, row)
            if len(heaps[role]) < limit:
                heapq.heappush(heaps[role], entry)
            elif -score > heaps[role][0][0]:
                heapq.heapreplace(heaps[role], entry)
    items: list[Item] = []
    for role in heaps:
        chosen = kept_all[role] + [(uid, row) for _, _, uid, row in heaps[role]]
        result.add(f"{role}.sampled_out", result.counts.get(f"{role}.eligible", 0) - len(chosen))
        for uid, row in chosen:
            split = "train"
            if role == "redteam" and eval_fraction > 0:
                # by the prompt, not the row: rows sharing a prompt (PKU's two answers, HH's
                # repeated turns) must land on one side, or an eval prompt is trained on
                prompt = normalise(row.question)
                if stable_hash(seed, "split", prompt) / 2**64 < eval_fraction:
                    split = "eval"
            items.append(Item(uid=uid, role=role, split=split, row=row))  # type: ignore[arg-type]
            result.add(f"{role}.{split}")
    items.sort(key=lambda it: (it.role, it.uid))
    result.records = items
    return result


def shard_items(items: list[Item], index: int, count: int) -> list[Item]:
    """The deterministic slice `index` of `count`, by a stable hash of each uid; a red-team
    item by its normalised prompt instead, so the rows of one prompt (PKU's `:0`/`:1`) stay in
    one shard: template (a) is asked once per distinct prompt, and two shards would each ask it
    (2k guided mistakes in the merged union where an unsharded build has k)."""
    if count <= 1:
        return list(items)
    return [it for it in items if stable_hash("shard", _shard_key(it)) % count == index]


def _shard_key(item: Item) -> str:
    return f"prompt:{item.prompt_key}" if item.role == "redteam" else item.uid
