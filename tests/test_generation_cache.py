"""The call cache: hits/misses, errors not cached, persistence, and SIGKILL survival."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from axolotl_mistake.generation import Completion, GenerationRequest, SamplingParams
from axolotl_mistake.generation.cache import CachedBackend, CallCache
from axolotl_mistake.generation.transformers import TransformersBackend

REPO = Path(__file__).resolve().parents[1]


class CountingBackend:
    """Passes calls through to a real backend and records what reached it."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.model_id, self.revision = inner.name, inner.model_id, inner.revision
        self.cache_salt = getattr(inner, "cache_salt", None)
        self.cache_identity = getattr(inner, "cache_identity", None)
        self.seen: list[GenerationRequest] = []

    def generate(self, requests, params):
        self.seen.extend(requests)
        return self.inner.generate(requests, params)


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    return TransformersBackend.load(str(tiny_model_dir), batch_size=4, device="cpu")


def test_callcache_roundtrip_and_refuses_errors(tmp_path):
    path = tmp_path / "calls.sqlite"
    with CallCache(path) as cache:
        assert cache.put(
            "a",
            Completion(
                text="hello",
                finish_reason="length",
                prompt_tokens=3,
                completion_tokens=5,
                extra={"id": "x"},
            ),
        )
        assert not cache.put("b", Completion(text="", error="HTTP 500"))
        assert (
            cache.put_many([("c", Completion(text="c")), ("d", Completion(text="", error="x"))])
            == 1
        )
        assert "a" in cache and "b" not in cache and len(cache) == 2
    with CallCache(path) as cache:  # reopened: everything committed is there
        got = cache.get("a")
        assert got == Completion(
            text="hello",
            finish_reason="length",
            prompt_tokens=3,
            completion_tokens=5,
            extra={"id": "x"},
        )
        assert set(cache.get_many(["a", "b", "c", "zz"])) == {"a", "c"}
        assert cache.get("b") is None
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_cached_backend_hits_misses_and_reopen(tmp_path, tiny_backend):
    params = SamplingParams(max_new_tokens=6)
    reqs = [GenerationRequest(prompt=p, template="t") for p in ("one", "two", "three", "four")]
    counting = CountingBackend(tiny_backend)
    cached = CachedBackend(counting, CallCache(tmp_path / "c.sqlite"))
    first = cached.generate(reqs[:2], params)
    assert cached.stats == {"hits": 0, "misses": 2, "errors": 0}
    second = cached.generate(reqs, params)
    assert cached.stats == {"hits": 2, "misses": 4, "errors": 0}
    assert [c.text for c in second[:2]] == [c.text for c in first]
    assert [r.prompt for r in counting.seen] == ["one", "two", "three", "four"]
    cached.cache.close()

    counting2 = CountingBackend(tiny_backend)
    reopened = CachedBackend(counting2, CallCache(tmp_path / "c.sqlite"))
    again = reopened.generate(reqs, params)
    assert counting2.seen == []
    assert reopened.stats == {"hits": 4, "misses": 0, "errors": 0}
    assert [c.text for c in again] == [c.text for c in second]
    # anything in the key changes the key: sample index, params, template
    reopened.generate([GenerationRequest(prompt="one", template="t", sample_index=1)], params)
    reopened.generate([reqs[0]], SamplingParams(max_new_tokens=7))
    reopened.generate([GenerationRequest(prompt="one", template="other")], params)
    assert len(counting2.seen) == 3


def test_errors_are_returned_not_cached(tmp_path, tiny_backend):
    params = SamplingParams(max_new_tokens=4)
    counting = CountingBackend(tiny_backend)
    cached = CachedBackend(counting, CallCache(tmp_path / "c.sqlite"))
    out = cached.generate([GenerationRequest(prompt=""), GenerationRequest(prompt="ok")], params)
    assert not out[0].ok and out[1].ok
    assert cached.stats["errors"] == 1
    cached.generate([GenerationRequest(prompt=""), GenerationRequest(prompt="ok")], params)
    assert [r.prompt for r in counting.seen] == ["", "ok", ""]  # the failure is retried
    assert cached.stats == {"hits": 1, "misses": 3, "errors": 2}


def test_duplicate_requests_generated_once(tmp_path, tiny_backend):
    counting = CountingBackend(tiny_backend)
    cached = CachedBackend(counting, CallCache(tmp_path / "c.sqlite"))
    r = GenerationRequest(prompt="same")
    out = cached.generate(
        [r, r, GenerationRequest(prompt="other"), r], SamplingParams(max_new_tokens=4)
    )
    assert len(counting.seen) == 2
    assert out[0].text == out[1].text == out[3].text


_CHILD = textwrap.dedent(
    """
    import sys
    from axolotl_mistake.generation import GenerationRequest, SamplingParams
    from axolotl_mistake.generation.cache import CachedBackend, CallCache
    from axolotl_mistake.generation.transformers import TransformersBackend
    backend = TransformersBackend.load(sys.argv[1], batch_size=1, device="cpu")
    cached = CachedBackend(backend, CallCache(sys.argv[2]))
    n = int(sys.argv[3])
    reqs = [GenerationRequest(prompt=f"Question number {i}: what comes next?") for i in range(n)]
    print("ready", flush=True)
    out = cached.generate(reqs, SamplingParams(max_new_tokens=int(sys.argv[4])))
    print("done", len(out), flush=True)
    """
)


def test_sigkill_mid_run_repeats_only_unfinished_calls(tmp_path, tiny_model_dir, tiny_backend):
    n, new_tokens = 24, 16
    db = tmp_path / "kill.sqlite"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tiny_model_dir), str(db), str(n), str(new_tokens)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        committed = 0
        while time.monotonic() < deadline and child.poll() is None:
            if db.exists():
                try:
                    committed = (
                        sqlite3.connect(db, timeout=5)
                        .execute("SELECT COUNT(*) FROM calls")
                        .fetchone()[0]
                    )
                except sqlite3.OperationalError:
                    committed = 0
                if committed >= 3:
                    break
            time.sleep(0.02)
        assert child.poll() is None, f"child ended early: {child.communicate()}"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    check = sqlite3.connect(db)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    survived = check.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    check.close()
    assert 3 <= survived < n

    params = SamplingParams(max_new_tokens=new_tokens)
    reqs = [GenerationRequest(prompt=f"Question number {i}: what comes next?") for i in range(n)]
    counting = CountingBackend(tiny_backend)
    resumed = CachedBackend(counting, CallCache(db))
    out = resumed.generate(reqs, params)
    assert resumed.stats["hits"] == survived
    assert len(counting.seen) == n - survived
    fresh = tiny_backend.generate(reqs, params)
    assert [c.text for c in out] == [c.text for c in fresh]


def test_cache_key_changes_with_chat_mode(tiny_model_dir):
    """The same messages request through chat='never' and chat='auto' must not share a cache entry."""
    from axolotl_mistake.generation import GenerationRequest, SamplingParams, request_key
    from axolotl_mistake.generation.transformers import TransformersBackend

    req = GenerationRequest(messages=({"role": "user", "content": "hi"},), template="t")
    params = SamplingParams(max_new_tokens=4)
    auto = TransformersBackend.load(str(tiny_model_dir), chat="auto", device="cpu")
    never = TransformersBackend(auto.model, auto.tokenizer, model_id=auto.model_id, chat="never")
    assert request_key(auto, req, params) != request_key(never, req, params)
    assert request_key(auto, req, params) == request_key(auto, req, params)


def test_a_prefilled_reply_is_its_own_cache_entry_and_every_other_key_is_unchanged(
    tiny_model_dir,
):
    """`prefill` is part of the key when set and absent from the payload otherwise, so caches
    written before it existed still answer; it opens a chat reply, so a raw prompt refuses it.
    On a Jinja template the model sees the rendered prompt with the opening appended."""
    from axolotl_mistake.generation import GenerationRequest, SamplingParams, request_key
    from axolotl_mistake.generation.transformers import TransformersBackend

    turns = ({"role": "user", "content": "hi"},)
    plain = GenerationRequest(messages=turns, template="t")
    opened = GenerationRequest(messages=turns, template="t", prefill="The answer is ")
    assert set(plain.payload()) == {"prompt", "messages", "template", "sample_index"}
    assert opened.payload()["prefill"] == "The answer is "
    backend = TransformersBackend.load(str(tiny_model_dir), device="cpu")
    params = SamplingParams(max_new_tokens=2)
    assert request_key(backend, plain, params) != request_key(backend, opened, params)
    assert backend.render(opened) == (backend.render(plain)[0] + "The answer is ", True)
    with pytest.raises(ValueError, match="prefill"):
        GenerationRequest(prompt="hi", prefill="x")
