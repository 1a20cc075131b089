"""The openai backend against a real HTTP server on 127.0.0.1 (fronting the tiny model)."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator

import pytest

from axolotl_mistake.generation import CONTEXT_LENGTH_EXCEEDED, GenerationRequest, SamplingParams
from axolotl_mistake.generation.config import BackendConfig
from axolotl_mistake.generation.factory import load_backend
from axolotl_mistake.generation.openai import OpenAIBackend, OpenAIConfig
from axolotl_mistake.generation.transformers import TransformersBackend
from tests.openai_server import FaultPlan, start_openai_server

PARAMS = SamplingParams(max_new_tokens=8)
CHAT = GenerationRequest(messages=({"role": "user", "content": "Say hi."},))
PROMPT = GenerationRequest(prompt="The weather today is")


@pytest.fixture(scope="module")
def local(tiny_model_dir) -> TransformersBackend:
    return TransformersBackend.load(str(tiny_model_dir), batch_size=8, device="cpu")


def client(server, **kw) -> OpenAIBackend:
    kw.setdefault("max_retries", 3)
    kw.setdefault("timeout_s", 5.0)
    kw.setdefault("retry_backoff_s", 0.01)
    return OpenAIConfig(base_url=server.base_url, model="tiny", **kw).load()


def test_completions_and_chat_match_the_local_backend(local):
    with start_openai_server(local) as server:
        remote = load_backend(
            BackendConfig(
                kind="openai", base_url=server.base_url, model="tiny", retry_backoff_s=0.01
            )
        )
        assert isinstance(remote, OpenAIBackend)
        got = remote.generate([PROMPT, CHAT], PARAMS)
        assert server.requests_seen == 2
    want = local.generate([PROMPT, CHAT], PARAMS)
    assert [c.text for c in got] == [c.text for c in want]
    assert [c.prompt_tokens for c in got] == [c.prompt_tokens for c in want]
    assert [c.completion_tokens for c in got] == [c.completion_tokens for c in want]
    assert all(c.ok and c.finish_reason in ("stop", "length") for c in got)


@pytest.mark.parametrize("kind", ["429", "500", "timeout", "malformed"])
def test_each_fault_kind_is_retried(local, kind):
    plan = FaultPlan({kind: [1]}, timeout_sleep_s=3.0)
    with start_openai_server(local, plan) as server:
        remote = client(server, timeout_s=1.0)
        out = remote.generate([PROMPT], PARAMS)
        assert server.faults_served == [(1, kind)]
        assert server.requests_seen == 2
    assert out[0].ok, out[0].error
    assert out[0].text == local.generate([PROMPT], PARAMS)[0].text
    assert remote.stats["retries"] == 1


def test_mixed_faults_across_many_requests(local):
    plan = FaultPlan(
        {"429": [1, 5], "500": [2], "timeout": [3], "malformed": [4]}, timeout_sleep_s=3.0
    )
    reqs = [GenerationRequest(prompt=f"Item {i} is") for i in range(6)]
    with start_openai_server(local, plan) as server:
        out = client(server, concurrency=2, timeout_s=1.0, max_retries=4).generate(reqs, PARAMS)
        assert len(server.faults_served) == 5
        assert server.requests_seen == 11
    assert all(c.ok for c in out)
    assert [c.text for c in out] == [c.text for c in local.generate(reqs, PARAMS)]


def test_permanent_failure_is_recorded_not_raised(local):
    with start_openai_server(local, FaultPlan.always("500")) as server:
        remote = client(server, max_retries=2)
        out = remote.generate([PROMPT, CHAT], PARAMS)
        assert server.requests_seen == 6
    assert [c.ok for c in out] == [False, False]
    assert "HTTP 500" in out[0].error and "3 attempts" in out[0].error
    assert out[0].text == "" and remote.stats["failures"] == 2


def test_retries_are_one_budget_per_request(local):
    """429, 500 (retried by the openai client) and a malformed 200 (retried by this layer)
    share max_retries: with 2, the third bad answer is the last try."""
    plan = FaultPlan({"429": [1], "500": [2], "malformed": [3]})
    with start_openai_server(local, plan) as server:
        remote = client(server, max_retries=2)
        out = remote.generate([PROMPT], PARAMS)
        assert server.requests_seen == 3
        again = remote.generate([PROMPT], PARAMS)  # ordinal 4: answered
    assert not out[0].ok and "malformed" in out[0].error and "3 attempts" in out[0].error
    assert again[0].ok
    assert remote.stats == {"requests": 4, "retries": 2, "failures": 1}


def test_client_errors_are_not_retried(local):
    with start_openai_server(local) as server:
        out = client(server).generate([PROMPT], SamplingParams(max_new_tokens=4, temperature=9.0))
        assert server.requests_seen == 1
    assert not out[0].ok and "HTTP 400" in out[0].error and "temperature" in out[0].error


def test_prompt_beyond_the_served_context_is_a_counted_failure(local):
    """The server refuses it (400 context_length_exceeded): one try, a failure callers can count."""
    long_prompt = GenerationRequest(prompt="word " * 2100)
    with start_openai_server(local) as server:
        remote = client(server)
        out = remote.generate([long_prompt, PROMPT], PARAMS)
        assert server.requests_seen == 2
    assert not out[0].ok and out[0].extra["error_code"] == CONTEXT_LENGTH_EXCEEDED
    assert "HTTP 400" in out[0].error and "2048" in out[0].error
    assert out[1].ok and remote.stats["failures"] == 1


def test_connection_refused_becomes_an_error():
    cfg = {"max_retries": 1, "retry_backoff_s": 0.01, "timeout_s": 2.0}
    remote = OpenAIConfig(base_url="http://127.0.0.1:9/v1", model="none", **cfg).load()
    out = remote.generate([PROMPT], PARAMS)
    assert not out[0].ok and "connection error" in out[0].error


def test_retry_after_is_honoured(local):
    with start_openai_server(local, FaultPlan({"429": [1]}, retry_after="1")) as server:
        start = time.monotonic()
        out = client(server).generate([PROMPT], PARAMS)
        elapsed = time.monotonic() - start
    assert out[0].ok and elapsed >= 1.0


def test_api_key_sent_as_bearer_and_never_shown(local, monkeypatch, caplog):
    secret = "sk-test-5ecret-do-not-print"
    monkeypatch.setenv("AXM_TEST_KEY", secret)
    caplog.set_level(logging.DEBUG)
    with start_openai_server(local, FaultPlan({"500": [1]}), api_key=secret) as server:
        remote = client(server, api_key_env="AXM_TEST_KEY")
        out = remote.generate([PROMPT], PARAMS)
        assert out[0].ok
        assert server.auth_headers_seen == [f"Bearer {secret}"] * 2
        anonymous = client(server).generate([PROMPT], PARAMS)  # no key: 401, not retried
        assert server.requests_seen == 3
    assert not anonymous[0].ok and "HTTP 401" in anonymous[0].error
    assert secret not in repr(remote) and "AXM_TEST_KEY" in repr(remote)
    assert secret not in str(
        vars(BackendConfig(kind="openai", base_url="http://x/v1", api_key_env="AXM_TEST_KEY"))
    )
    assert secret not in caplog.text
    assert all(secret not in (c.error or "") + c.text + str(c.extra) for c in out + anonymous)


def test_only_the_named_env_var_is_read(local, monkeypatch):
    """OPENAI_API_KEY / OPENAI_ORG_ID in the environment never reach a server unasked."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ambient-key")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-ambient")
    with start_openai_server(local) as server:
        out = client(server).generate([PROMPT], PARAMS)
        assert out[0].ok
        assert server.auth_headers_seen == [None]
        assert "openai-organization" not in server.headers_seen[0]


def test_missing_api_key_env_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("AXM_MISSING_KEY", raising=False)
    with pytest.raises(ValueError, match="AXM_MISSING_KEY"):
        OpenAIConfig(
            base_url="http://127.0.0.1:1/v1", model="m", api_key_env="AXM_MISSING_KEY"
        ).load()


def test_concurrency_limit_is_respected(local):
    reqs = [GenerationRequest(prompt=f"Count {i}") for i in range(9)]
    with start_openai_server(local, FaultPlan(delay_s=0.3)) as server:
        out = client(server, concurrency=3).generate(reqs, SamplingParams(max_new_tokens=2))
        assert server.max_in_flight == 3
    assert all(c.ok for c in out)


def test_no_new_call_goes_out_until_the_caller_has_taken_the_last(local):
    """A call keeps its slot until the caller asks for the next item (when a CachedBackend has
    committed it), so a kill loses at most `concurrency` calls, never an answered one too."""
    reqs = [GenerationRequest(prompt=f"Count {i}") for i in range(4)]
    with start_openai_server(local) as server:
        stream = client(server, concurrency=1).generate_iter(reqs, SamplingParams(max_new_tokens=2))
        seen = []
        for _index, completion in stream:
            assert completion.ok
            seen.append(server.requests_seen)
            time.sleep(0.3)  # a slow commit: the next request must wait for it
            assert server.requests_seen == len(seen)
    assert seen == [1, 2, 3, 4]


def test_closing_the_stream_early_cancels_the_calls_not_made(local):
    reqs = [GenerationRequest(prompt=f"Count {i}") for i in range(6)]
    before = set(threading.enumerate())
    with start_openai_server(local) as server:
        stream = client(server, concurrency=2).generate_iter(reqs, SamplingParams(max_new_tokens=2))
        first = next(stream)
        stream.close()
        time.sleep(0.3)
        assert first[1].ok and server.requests_seen <= 3  # the taken one and at most two more
    # the backend's thread (and the server's) has ended; compared by identity, since a thread
    # an earlier test left may end meanwhile, which made a count come out one short in CI. AnyIO
    # keeps the served app's idle worker threads pooled for a while after the server stops
    # (they end on their own): they are the server's library's, not the backend's
    new = [t for t in threading.enumerate() if t not in before]
    assert [t for t in new if t.name != "AnyIO worker thread"] == []


def test_generate_works_inside_a_running_event_loop(local):
    with start_openai_server(local) as server:
        remote = client(server)

        async def main():
            sync_result = remote.generate([PROMPT], PARAMS)  # called from inside a loop
            async_result = await remote.agenerate([PROMPT, CHAT], PARAMS)
            return sync_result, async_result

        sync_result, async_result = asyncio.run(main())
    assert sync_result[0].ok and sync_result[0].text == async_result[0].text
    assert async_result[1].ok


def test_sample_index_and_seed_reach_the_server(local):
    params = SamplingParams(max_new_tokens=10, temperature=1.0, seed=3)
    reqs = [GenerationRequest(prompt="Once upon a time", sample_index=i) for i in range(3)]
    with start_openai_server(local) as server:
        remote = client(server)
        a = remote.generate(reqs, params)
        b = remote.generate(reqs, params)
    assert [c.text for c in a] == [c.text for c in b]
    assert len({c.text for c in a}) == 3


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real threaded HTTP server on 127.0.0.1 running `handler`; yields its /v1 base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def echoing_server(
    padding: str = "",
    status: int = 401,
    encode: Callable[[str], str] = str,
    escape_slashes: bool = False,
) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 that answers every request `status` with the
    Authorization header it got in the body (after `padding`), as some OpenAI-compatible
    servers do ("incorrect key: ..."): passed through `encode` first, and with every `/` of
    the JSON body escaped as `\\/` if `escape_slashes` (PHP's json_encode)."""

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            echoed = encode(self.headers.get("authorization") or "")
            message = f"{padding}Incorrect API key provided: {echoed}"
            text = json.dumps({"error": {"message": message}})
            body = (text.replace("/", "\\/") if escape_slashes else text).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Echo) as base_url:
        yield base_url


def test_a_key_the_server_echoes_is_redacted_from_the_failure(monkeypatch):
    """Failure messages end up in manifests, results.json and reports: the key must not."""
    secret = "sk-echoed-5ecret-do-not-store"
    monkeypatch.setenv("AXM_ECHO_KEY", secret)
    with echoing_server() as base_url:
        remote = OpenAIConfig(
            base_url=base_url, model="m", api_key_env="AXM_ECHO_KEY", max_retries=0
        ).load()
        out = remote.generate([PROMPT, CHAT], PARAMS)
    assert [c.ok for c in out] == [False, False]
    for c in out:
        assert "HTTP 401" in c.error and "Bearer <redacted api key>" in c.error
        assert secret not in c.error + c.text + str(c.extra)


@pytest.mark.parametrize(
    "encode, escape_slashes",
    [(urllib.parse.quote, False), (urllib.parse.quote_plus, False), (str, True)],
    ids=["percent-encoded", "form-encoded", "json-escaped-slashes"],
)
def test_a_key_the_server_echoes_encoded_is_redacted_from_the_failure(
    monkeypatch, encode, escape_slashes
):
    """A base64-style key (`/`, `+`, `=`) comes back changed when a server percent-encodes the
    header it echoes or escapes `/` in its JSON, and the error quotes the raw body: the key
    must not survive in that form either (failures land in manifests, results and reports)."""
    secret = "sk-proj/5ecret+Do/Not=Store=="
    monkeypatch.setenv("AXM_ECHO_KEY", secret)
    with echoing_server(encode=encode, escape_slashes=escape_slashes) as base_url:
        remote = OpenAIConfig(
            base_url=base_url, model="m", api_key_env="AXM_ECHO_KEY", max_retries=0
        ).load()
        (c,) = remote.generate([PROMPT], PARAMS)
    assert not c.ok and "HTTP 401" in c.error and "<redacted api key>" in c.error
    stored = c.error + c.text + str(c.extra)
    assert "5ecret" not in stored and "Store" not in stored


@pytest.mark.parametrize("status", [401, 503])
def test_an_echoed_key_cut_by_the_error_snippet_leaks_no_part_of_it(monkeypatch, status):
    """The error quotes the body's first 200 characters: a key that straddles that cut must not
    leave its first half in the failure (which lands in manifests, results and reports)."""
    secret = "sk-echoed-" + "5ecret" * 6
    monkeypatch.setenv("AXM_ECHO_KEY", secret)
    # '{"error": {"message": "' + padding + 'Incorrect API key provided: Bearer ' puts the key
    # at character 180 of the body: the 200-character snippet ends inside it
    padding = "x" * (180 - len('{"error": {"message": "Incorrect API key provided: Bearer '))
    with echoing_server(padding, status) as base_url:
        remote = OpenAIConfig(
            base_url=base_url, model="m", api_key_env="AXM_ECHO_KEY", max_retries=0
        ).load()
        (c,) = remote.generate([PROMPT], PARAMS)
    assert not c.ok and f"HTTP {status}" in c.error
    assert secret[:12] not in c.error + c.text + str(c.extra)


@contextlib.contextmanager
def trickling_server(byte_every_s: float, n_bytes: int) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 that sends its 200 headers at once and then the body one
    byte every `byte_every_s` seconds (a stalled proxy, an overloaded server flushing slowly):
    each read succeeds well inside a read timeout, the whole answer does not."""
    body = b" " * (n_bytes - 2) + b"{}"
    stop = threading.Event()

    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            for i in range(len(body)):
                if stop.is_set():
                    return
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(byte_every_s)

        def log_message(self, *args: object) -> None:
            pass

    try:
        with serving(Trickle) as base_url:
            yield base_url
    finally:
        stop.set()  # lets a handler still sending return before the server shuts down


def test_timeout_s_bounds_the_whole_answer_not_each_read():
    """`timeout_s` is documented as the per-request timeout: an endpoint that keeps every read
    alive (one byte every 0.2 s, 40 bytes) must still fail after about timeout_s, not run for
    the 8 s the body takes."""
    with trickling_server(0.2, 40) as base_url:
        remote = OpenAIConfig(base_url=base_url, model="m", timeout_s=1.0, max_retries=0).load()
        start = time.monotonic()
        out = remote.generate([PROMPT], PARAMS)
        elapsed = time.monotonic() - start
    assert not out[0].ok
    assert "timeout after 1s" in out[0].error
    assert elapsed < 4.0, elapsed


def test_credentials_in_base_url_the_server_echoes_are_redacted_from_the_failure(
    caplog, monkeypatch
):
    """httpx sends a URL's `user:password@` as a Basic Authorization header; a server that
    echoes it put base64("user:password") into the failure (stored in manifests and results).
    httpx also logs each request's URL, user info included, at INFO: a host application logging
    at INFO printed the password on every call."""
    import base64

    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpx2", "openai"):
        # as a host application logging at INFO has them: Axolotl's logging setup, run
        # in-process by earlier tests, gives loggers made after it a filter that drops INFO
        caplog.set_level(logging.DEBUG, logger=name)
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "disabled", False)
        monkeypatch.setattr(logger, "filters", [])
    password = "pw-s3cret-in-url"
    with echoing_server() as base_url:
        url = base_url.replace("http://", f"http://alice:{password}@", 1)
        remote = OpenAIConfig(base_url=url, model="m", max_retries=0).load()
        out = remote.generate([PROMPT, CHAT], PARAMS)
    basic = base64.b64encode(f"alice:{password}".encode()).decode()
    for c in out:
        assert not c.ok and "HTTP 401" in c.error and "<redacted credentials>" in c.error
        for secret in (password, basic, basic[:16]):
            assert secret not in c.error + c.text + str(c.extra)
    assert "HTTP Request: POST http://***@127.0.0.1:" in caplog.text  # still logged
    assert password not in caplog.text and "alice" not in caplog.text


@pytest.mark.parametrize("value", ["sk-proj-LEAKME123", "sk proj", "9LIVES", "a=b"])
def test_an_api_key_pasted_as_api_key_env_is_refused_without_repeating_it(value, tmp_path, capsys):
    """`api_key_env: sk-...` printed "environment variable 'sk-...' is not set"."""
    import yaml

    from dataset_builders.build import main as build_main

    model = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    argv = ["--model", yaml.safe_dump({**model, "api_key_env": value})]
    assert build_main([*argv, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "field 'model.api_key_env'" in err and "NAME of an environment variable" in err
    assert value not in err
    assert not (tmp_path / "out").exists()


def test_user_info_in_base_url_and_api_key_env_together_are_refused(tmp_path, capsys):
    """httpx turns `user:password@` into a Basic Authorization header, which replaced the
    Bearer key: the configured key was never sent, without a word."""
    import yaml

    from dataset_builders.build import main as build_main

    model = {
        "kind": "openai",
        "base_url": "http://alice:pw-s3cret@127.0.0.1:9/v1",
        "model": "m",
        "api_key_env": "AXM_SOME_KEY",
    }
    argv = ["--model", yaml.safe_dump(model), "--output", str(tmp_path / "out")]
    assert build_main(argv) == 2
    err = capsys.readouterr().err
    assert "field 'model'" in err and "give one of them" in err and "pw-s3cret" not in err
    del model["api_key_env"]
    OpenAIConfig(**{k: v for k, v in model.items() if k != "kind"})  # either one alone is fine
