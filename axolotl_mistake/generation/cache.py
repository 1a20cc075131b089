"""The call cache: every finished model call is committed to SQLite (WAL) the moment it returns.

`CachedBackend` wraps any `Backend` so only misses reach the model, and a rerun after a crash
(even SIGKILL mid-write) repeats only calls that had not finished. It must never store a failed
completion (those are retried next run) and never store secrets: values are completions only.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from axolotl_mistake.errors import InputError
from axolotl_mistake.generation.base import (
    Backend,
    Completion,
    GenerationRequest,
    SamplingParams,
    context_error,
    request_key,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    completion TEXT NOT NULL,
    meta TEXT,
    created REAL NOT NULL
)
"""


def _dump(c: Completion) -> str:
    return json.dumps(
        {
            "text": c.text,
            "finish_reason": c.finish_reason,
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
            "extra": c.extra,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


class CacheFileError(InputError):
    """The call cache file cannot be read (not an SQLite database, or a row that is not a
    completion): named with the fix, since it holds only finished calls that can be made again."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"the call cache cannot be read ({problem}); delete it to start the cache afresh "
            "(it holds only finished model calls, which are then made again)",
            file=str(path),
        )


def _load(blob: str) -> Completion:
    d = json.loads(blob)
    return Completion(
        text=d["text"],
        finish_reason=d.get("finish_reason", "stop"),
        prompt_tokens=d.get("prompt_tokens", 0),
        completion_tokens=d.get("completion_tokens", 0),
        extra=d.get("extra") or {},
    )


class CallCache:
    """A key -> Completion store in one SQLite file (WAL mode, synchronous=FULL).

    Each `put` is its own committed transaction, so a process killed at any instant loses at
    most the call that was being written; SQLite's journal makes a torn write invisible.
    Thread-safe; several processes may share a file (SQLite locking, 60 s busy timeout).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=60, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(calls)")}
        except sqlite3.DatabaseError as exc:
            raise CacheFileError(self.path, str(exc)) from None
        if not {"key", "completion"} <= columns:
            raise CacheFileError(self.path, "its 'calls' table is not this tool's")

    def _completion(self, blob: str) -> Completion:
        """A stored row as a Completion; a row that is not one names the file."""
        try:
            return _load(blob)
        except (TypeError, ValueError, KeyError) as exc:
            raise CacheFileError(self.path, f"a stored row is not a completion: {exc}") from None

    # -- reading -----------------------------------------------------------------------------
    def get(self, key: str) -> Completion | None:
        """The cached completion for `key`, or None."""
        with self._lock:
            row = self._db.execute("SELECT completion FROM calls WHERE key = ?", (key,)).fetchone()
        return self._completion(row[0]) if row else None

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        """The cached completions among `keys` (missing keys are absent from the result)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Completion] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, completion FROM calls WHERE key IN ({marks})", chunk
                ).fetchall()
                for key, blob in rows:
                    found[key] = self._completion(blob)
        return found

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        with self._lock:
            row = self._db.execute("SELECT 1 FROM calls WHERE key = ?", (key,)).fetchone()
        return row is not None

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    # -- writing -----------------------------------------------------------------------------
    def put(self, key: str, completion: Completion, meta: Mapping | None = None) -> bool:
        """Commit one finished call; a failed completion (`error` set) is refused (False)."""
        if not completion.ok:
            return False
        blob = _dump(completion)
        meta_blob = json.dumps(meta, ensure_ascii=False, sort_keys=True) if meta else None
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls (key, completion, meta, created) VALUES (?,?,?,?)",
                (key, blob, meta_blob, time.time()),
            )
        return True

    def put_many(self, items: Iterable[tuple[str, Completion]]) -> int:
        """Commit several finished calls in one transaction; failed ones are skipped."""
        rows = [(k, _dump(c), None, time.time()) for k, c in items if c.ok]
        if not rows:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO calls (key, completion, meta, created) "
                    "VALUES (?,?,?,?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> CallCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CallCache({str(self.path)!r})"


class CachedBackend:
    """A `Backend` that answers from a `CallCache` and sends only misses to `backend`.

    Keys come from `generation.base.request_key` on the wrapped backend, so the cache is shared
    by anything that wraps the same model. Identical requests within one call are generated
    once. Each completion is committed as soon as the wrapped backend yields it (backends with
    `generate_iter` yield per batch or per HTTP response; others are called in chunks).
    """

    def __init__(self, backend: Backend, cache: CallCache, chunk_size: int = 64):
        self.backend = backend
        self.cache = cache
        self.chunk_size = max(1, chunk_size)
        self.stats = {"hits": 0, "misses": 0, "errors": 0}

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    @property
    def revision(self) -> str | None:
        return self.backend.revision

    @property
    def cache_salt(self) -> str | None:
        return getattr(self.backend, "cache_salt", None)

    @property
    def cache_identity(self) -> str | None:
        return getattr(self.backend, "cache_identity", None)

    @property
    def max_context(self) -> int | None:
        return getattr(self.backend, "max_context", None)

    def context_error(self, request: GenerationRequest, max_new_tokens: int) -> str | None:
        """The wrapped backend's verdict on whether `request` fits (see base.context_error)."""
        return context_error(self.backend, request, max_new_tokens)

    def key(self, request: GenerationRequest, params: SamplingParams) -> str:
        """The cache key of one request (delegates to `request_key`)."""
        return request_key(self.backend, request, params)

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[Completion]:
        out: list[Completion | None] = [None] * len(requests)
        for index, completion in self.generate_iter(requests, params):
            out[index] = completion
        return out  # type: ignore[return-value]

    def generate_iter(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> Iterator[tuple[int, Completion]]:
        """Yield (index, completion): cache hits first, then misses as they finish."""
        keys = [self.key(r, params) for r in requests]
        cached = self.cache.get_many(keys)
        pending: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            if k in cached:
                self.stats["hits"] += 1
                yield i, cached[k]
            else:
                pending.setdefault(k, []).append(i)
        if not pending:
            return
        miss_keys = list(pending)
        miss_requests = [requests[pending[k][0]] for k in miss_keys]
        self.stats["misses"] += len(miss_keys)
        for j, completion in self._wrapped_iter(miss_requests, params):
            key = miss_keys[j]
            if completion.ok:
                self.cache.put(key, completion)
            else:
                self.stats["errors"] += 1
            for i in pending[key]:
                yield i, completion

    def _wrapped_iter(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> Iterator[tuple[int, Completion]]:
        stream = getattr(self.backend, "generate_iter", None)
        if callable(stream):
            yield from stream(requests, params)
            return
        for start in range(0, len(requests), self.chunk_size):
            chunk = requests[start : start + self.chunk_size]
            for j, completion in enumerate(self.backend.generate(chunk, params)):
                yield start + j, completion

    def __repr__(self) -> str:
        return f"CachedBackend({self.backend!r}, {self.cache!r})"
