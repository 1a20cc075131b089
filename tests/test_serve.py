"""The OpenAI-compatible server: endpoints, bounded validation, micro-batching, CLI.

Every request is a real HTTP request to the server on 127.0.0.1 fronting the tiny model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from axolotl_mistake.generation import GenerationRequest, SamplingParams
from axolotl_mistake.generation.base import BaseBackend, Completion
from axolotl_mistake.generation.transformers import TransformersBackend
from axolotl_mistake.serve import OpenAIServer

REPO = Path(__file__).resolve().parents[1]


class GatedBackend(BaseBackend):
    """A backend object standing in for the model: each call waits for `gate` (so a test can
    hold the queue full) and answers "ok", or raises `error` when one is set."""

    name = model_id = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.error: Exception | None = None

    def generate_iter(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> Iterator[tuple[int, Completion]]:
        self.entered.set()
        assert self.gate.wait(30)
        if self.error is not None:
            raise self.error
        for i, _ in enumerate(requests):
            yield i, Completion(text="ok", completion_tokens=1)


@pytest.fixture(scope="module")
def local(tiny_model_dir) -> TransformersBackend:
    return TransformersBackend.load(str(tiny_model_dir), batch_size=8, device="cpu")


@pytest.fixture()
def server(local):
    with OpenAIServer(local, served_model_name="tiny") as srv:
        yield srv


def test_models_and_health(server):
    assert httpx.get(server.base_url + "/models").json()["data"][0]["id"] == "tiny"
    assert httpx.get(f"http://127.0.0.1:{server.port}/health").json() == {"status": "ok"}
    assert httpx.get(server.base_url + "/nope").status_code == 404


def test_completions_shape_n_and_stop(server, local):
    body = {"model": "tiny", "prompt": ["Hello", "The sea"], "max_tokens": 6, "temperature": 0}
    data = httpx.post(server.base_url + "/completions", json=body).json()
    assert data["object"] == "text_completion" and data["model"] == "tiny"
    assert [c["index"] for c in data["choices"]] == [0, 1]
    want = local.generate(
        [GenerationRequest(prompt="Hello"), GenerationRequest(prompt="The sea")],
        SamplingParams(max_new_tokens=6),
    )
    assert [c["text"] for c in data["choices"]] == [c.text for c in want]
    usage = data["usage"]
    assert usage["prompt_tokens"] == sum(c.prompt_tokens for c in want)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    sampled = httpx.post(
        server.base_url + "/completions",
        json={"prompt": "Hello", "max_tokens": 8, "temperature": 1.0, "n": 3, "seed": 5},
    ).json()
    texts = [c["text"] for c in sampled["choices"]]
    assert len(texts) == 3 and len(set(texts)) == 3
    assert sampled["usage"]["prompt_tokens"] == want[0].prompt_tokens

    text = want[1].text
    if len(text) > 4:
        stop = text[2:4]
        cut = httpx.post(
            server.base_url + "/completions",
            json={"prompt": "The sea", "max_tokens": 6, "temperature": 0, "stop": stop},
        ).json()
        assert cut["choices"][0]["text"] == text[: text.find(stop)]
        assert cut["choices"][0]["finish_reason"] == "stop"


def test_chat_completions(server, local):
    msgs = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "hi."}],
        }
    ]
    data = httpx.post(
        server.base_url + "/chat/completions",
        json={"messages": msgs, "max_tokens": 5, "temperature": 0},
    ).json()
    assert data["object"] == "chat.completion"
    message = data["choices"][0]["message"]
    want = local.generate(
        [GenerationRequest(messages=({"role": "user", "content": "Say hi."},))],
        SamplingParams(max_new_tokens=5),
    )[0]
    assert message == {"role": "assistant", "content": want.text}


@pytest.mark.parametrize(
    "path, body, needle",
    [
        ("/completions", b"{not json", "not JSON"),
        ("/completions", b"[1, 2]", "JSON object"),
        ("/completions", {"max_tokens": 3}, "prompt"),
        ("/completions", {"prompt": "x", "max_tokens": 0}, "max_tokens"),
        ("/completions", {"prompt": "x", "temperature": "hot"}, "temperature"),
        ("/completions", {"prompt": "x", "stop": [1]}, "stop"),
        ("/completions", {"prompt": "x", "stream": True}, "stream"),
        ("/chat/completions", {"messages": []}, "messages"),
        ("/chat/completions", {"messages": [{"content": "x"}]}, "role"),
        ("/completions", {"prompt": "x", "logit_bias": {"1": 5}}, "logit_bias"),
        ("/completions", {"prompt": "x", "n": 2.5}, "n"),
        ("/completions", {"prompt": ["x", 3]}, "prompt[1]"),
        (
            "/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content",
        ),
    ],
)
def test_bad_requests_get_400(server, path, body, needle):
    """Raw bytes where the body is not JSON at all, else the JSON of `body`."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(
        server.base_url + path, content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]


def test_unknown_chat_role_is_a_400_naming_the_field(server):
    body = {"messages": [{"role": "wizard", "content": "Cast a spell."}], "max_tokens": 4}
    response = httpx.post(server.base_url + "/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "messages[0].role" and error["type"] == "invalid_request_error"
    assert "'wizard'" in error["message"] and "system, user or assistant" in error["message"]
    assert server.batcher.calls == 0


def test_prompt_beyond_the_context_is_refused_up_front(server, local):
    """The tiny model takes 2048 tokens: a longer prompt is a 400 naming the limit, never run,
    and answers at once while the server stays free for others."""
    long_prompt = "word " * 2100
    start = time.monotonic()
    for path, body in (
        ("/completions", {"prompt": long_prompt, "max_tokens": 16}),
        ("/chat/completions", {"messages": [{"role": "user", "content": long_prompt}]}),
        ("/completions", {"prompt": ["Hello", long_prompt], "max_tokens": 4, "n": 2}),
    ):
        response = httpx.post(server.base_url + path, json=body, timeout=30)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "context_length_exceeded"
        assert "2048" in error["message"] and "context" in error["message"]
    assert time.monotonic() - start < 10
    assert server.batcher.calls == 0  # nothing reached the model
    # a prompt that fits alone but not with its max_tokens is refused the same way
    fits = local.count_prompt_tokens(GenerationRequest(prompt="Hello"))
    edge = {"prompt": "Hello", "max_tokens": 2048 - fits + 1, "temperature": 0}
    refused = httpx.post(server.base_url + "/completions", json=edge, timeout=30)
    assert refused.status_code == 400 and "max_tokens" in refused.json()["error"]["message"]
    ok = httpx.post(
        server.base_url + "/completions", json={"prompt": "Hello", "max_tokens": 2}, timeout=60
    )
    assert ok.status_code == 200


def test_a_huge_body_is_413_and_max_tokens_and_n_are_capped(local):
    limits = {"max_body_bytes": 4096, "max_tokens_limit": 64, "default_max_tokens": 16, "max_n": 4}
    with OpenAIServer(local, **limits) as srv:
        big = httpx.post(srv.base_url + "/completions", json={"prompt": "x" * 5000})
        assert big.status_code == 413
        assert "4096 bytes" in big.json()["error"]["message"]
        chunked = httpx.post(  # no Content-Length: the stream is cut at the limit too
            srv.base_url + "/completions",
            content=iter([b'{"prompt": "', b"x" * 5000, b'"}']),
            headers={"Content-Type": "application/json"},
        )
        assert chunked.status_code == 413
        many = httpx.post(srv.base_url + "/completions", json={"prompt": "x", "max_tokens": 65})
        assert many.status_code == 400 and "max_tokens 65" in many.json()["error"]["message"]
        assert many.json()["error"]["param"] == "max_tokens"
        wide = httpx.post(srv.base_url + "/completions", json={"prompt": "x", "n": 5})
        assert wide.status_code == 400 and wide.json()["error"]["param"] == "n"
        assert srv.batcher.calls == 0
    with pytest.raises(ValueError, match="default_max_tokens"):
        OpenAIServer(local, max_tokens_limit=64)


def test_concurrent_requests_are_micro_batched(local):
    with OpenAIServer(local, batch_wait_ms=200) as srv:
        results: list[str] = []

        def call(i: int) -> None:
            r = httpx.post(
                srv.base_url + "/completions",
                json={"prompt": f"Number {i}", "max_tokens": 4, "temperature": 0},
                timeout=60,
            )
            results.append(r.json()["choices"][0]["text"])

        threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 6
        assert srv.batcher.calls < 6


def test_api_key_required_when_configured(local):
    with OpenAIServer(local, api_key="k-123") as srv:
        assert httpx.get(srv.base_url + "/models").status_code == 401
        ok = httpx.get(srv.base_url + "/models", headers={"Authorization": "Bearer k-123"})
        assert ok.status_code == 200
        bad = httpx.post(
            srv.base_url + "/completions",
            json={"prompt": "x"},
            headers={"Authorization": "Bearer wrong"},
        )
        assert bad.status_code == 401


def test_cli_serves_and_stops_on_sigterm(tiny_model_dir):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "axolotl_mistake.serve",
            "--model",
            str(tiny_model_dir),
            "--port",
            "0",
            "--device",
            "cpu",
            "--served-model-name",
            "tiny-cli",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/v1)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        base = match.group(1)
        assert httpx.get(base + "/models").json()["data"][0]["id"] == "tiny-cli"
        r = httpx.post(
            base + "/chat/completions",
            timeout=60,
            json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
        )
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["role"] == "assistant"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cli_bad_model_exits_nonzero(tmp_path, capsys):
    from axolotl_mistake.serve import main

    assert main(["--model", str(tmp_path / "missing"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "cannot load model" in err and "model folder not found" in err and "missing" in err
    assert main(["--model", "x", "--api-key-env", "AXM_SURELY_UNSET_VAR"]) == 2
    assert "AXM_SURELY_UNSET_VAR" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--port", "0", "--port", "1"], ["--model", "a", "--model", "b"]])
def test_cli_refuses_a_repeated_flag(argv, capsys):
    from axolotl_mistake.serve import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert f"{argv[0]} given twice" in capsys.readouterr().err


def test_cli_flags_come_from_the_backend_configs(capsys):
    from axolotl_mistake.generation.config import backend_fields
    from axolotl_mistake.serve.cli import build_parser, main
    from axolotl_mistake.serve.schemas import ServerConfig

    text = build_parser().format_help()
    for name in backend_fields():
        flag = name.replace("_", "-")
        assert f"--{flag}" in text or f"--backend-{flag}" in text, name
    for name in ServerConfig.model_fields:
        assert "--" + name.replace("_", "-") in text, name
    assert "--backend-api-key-env" in text  # the upstream key of kind openai, not the server's
    assert main(["--kind", "openai", "--base-url", "http://127.0.0.1:1/v1", "--device", "cpu"]) == 2
    assert "--device is not an option of backend kind 'openai'" in capsys.readouterr().err
    assert main(["--batch-size", "many"]) == 2
    assert "--batch-size" in capsys.readouterr().err
    assert main(["--max-n", "0"]) == 2
    assert "--max-n" in capsys.readouterr().err
    # a check across two flags names both, not the backend's --kind
    assert main(["--max-tokens-limit", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: default_max_tokens 256 is above max_tokens_limit 8"), err
    assert "--max-tokens-limit" in err and "--kind" not in err


def test_serving_an_openai_backend_passes_refusals_through(server):
    """`--kind openai` fronts another server: answers pass through, and the upstream's context
    refusal stays a 400 (the proxy has no tokenizer of its own to check with)."""
    from axolotl_mistake.generation import BackendConfig

    upstream = BackendConfig(kind="openai", base_url=server.base_url, model="tiny").load()
    with OpenAIServer(upstream, served_model_name="proxy") as proxy:
        body = {"prompt": "Hello", "max_tokens": 3, "temperature": 0}
        direct = httpx.post(server.base_url + "/completions", json=body, timeout=60).json()
        relayed = httpx.post(proxy.base_url + "/completions", json=body, timeout=60).json()
        assert relayed["model"] == "proxy"
        assert relayed["choices"][0]["text"] == direct["choices"][0]["text"]
        too_long = {"prompt": "word " * 2100, "max_tokens": 3}
        refused = httpx.post(proxy.base_url + "/completions", json=too_long, timeout=60)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "context_length_exceeded"


def test_serving_an_openai_backend_keeps_the_upstream_4xx_apart_from_its_own_faults(
    local, monkeypatch
):
    """An upstream refusal the client caused (a 400 for a max_tokens above the upstream's
    limit) reaches the client as that 400, not a retryable 500; one the proxy caused (its own
    key refused, 401) is a 502 naming the upstream, never a 401 the client would read as its
    own key being wrong."""
    from axolotl_mistake.generation import BackendConfig

    monkeypatch.setenv("PROXY_UPSTREAM_KEY", "right-key")
    with OpenAIServer(
        local,
        api_key="right-key",
        max_tokens_limit=8,
        default_max_tokens=4,
        served_model_name="tiny",
    ) as upstream_server:
        good = BackendConfig(
            kind="openai",
            base_url=upstream_server.base_url,
            model="tiny",
            api_key_env="PROXY_UPSTREAM_KEY",
            max_retries=0,
        ).load()
        keyless = BackendConfig(
            kind="openai", base_url=upstream_server.base_url, model="tiny", max_retries=0
        ).load()
        with OpenAIServer(good) as proxy:
            body = {"prompt": "Hello", "max_tokens": 50}
            response = httpx.post(proxy.base_url + "/completions", json=body, timeout=60)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error"
            assert "above this server's limit of 8" in error["message"]
            assert "right-key" not in response.text
        with OpenAIServer(keyless) as proxy:
            body = {"prompt": "Hello", "max_tokens": 2}
            response = httpx.post(proxy.base_url + "/completions", json=body, timeout=60)
            assert response.status_code == 502, response.text
            error = response.json()["error"]
            assert error["type"] == "upstream_error"
            assert "HTTP 401" in error["message"] and "upstream" in error["message"]


def test_an_empty_prompt_is_a_400_naming_it_before_it_is_queued(server, tiny_model_dir):
    """An empty prompt has no tokens to condition on: the client's mistake (400 naming the
    field), never a retryable 500 from the backend's refusal, and nothing reaches the model."""
    for body, param in (
        ({"prompt": ["hello", ""], "max_tokens": 4}, "prompt[1]"),
        ({"prompt": [""]}, "prompt[0]"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": []}, "prompt"),
    ):
        response = httpx.post(server.base_url + "/completions", json=body, timeout=30)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert error["param"] == param and error["type"] == "invalid_request_error", body
        assert error["message"].startswith(param + ": ")
    assert server.batcher.calls == 0
    # without a chat template an empty message renders to no tokens at all
    plain = TransformersBackend.load(str(tiny_model_dir), chat="never", device="cpu")
    with OpenAIServer(plain) as srv:
        body = {"messages": [{"role": "user", "content": ""}], "max_tokens": 2}
        response = httpx.post(srv.base_url + "/chat/completions", json=body, timeout=30)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == "messages" and "empty prompt" in error["message"]
        assert srv.batcher.calls == 0


def test_a_backend_exception_is_a_json_500_logged_by_type_only(caplog):
    """An exception from the backend may quote the prompt: the client gets an OpenAI-shaped
    500, and the log one line naming the exception type (no text, no traceback)."""
    backend = GatedBackend()
    backend.error = RuntimeError("device-side assert; prompt was: SECRET-PROMPT")
    caplog.set_level(logging.INFO)
    with OpenAIServer(backend) as srv:
        response = httpx.post(
            srv.base_url + "/completions", json={"prompt": "SECRET-PROMPT", "max_tokens": 2}
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "server_error" and error["code"] == 500
    assert "RuntimeError" in error["message"] and "SECRET" not in error["message"]
    assert not [r for r in caplog.records if "SECRET" in r.getMessage() or r.exc_info]
    ours = [r for r in caplog.records if r.name == "axolotl_mistake.serve.app"]
    assert len(ours) == 1 and "RuntimeError" in ours[0].getMessage()


def test_a_full_queue_is_503_with_retry_after():
    """Prompts beyond --max-pending are refused at once while the model is busy."""
    backend = GatedBackend()
    backend.gate.clear()
    with OpenAIServer(backend, max_pending=1, max_choices=1) as srv:
        first: list[int] = []
        holder = threading.Thread(
            target=lambda: first.append(
                httpx.post(
                    srv.base_url + "/completions", json={"prompt": "x"}, timeout=60
                ).status_code
            )
        )
        holder.start()
        assert backend.entered.wait(30)  # the first prompt holds the only slot
        busy = httpx.post(srv.base_url + "/completions", json={"prompt": "y"})
        backend.gate.set()
        holder.join(60)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "--max-pending" in busy.json()["error"]["message"]
        assert first == [200]


def test_max_pending_below_max_choices_is_refused_at_startup(capsys):
    """A request of --max-choices completions is allowed, so a queue smaller than that would
    answer it with a 503 "retry later" that could never succeed: refuse the settings."""
    from pydantic import ValidationError

    from axolotl_mistake.serve import MicroBatcher, ServerConfig, main

    with pytest.raises(ValidationError, match="--max-choices 8"):
        ServerConfig(max_pending=4, max_choices=8)
    with pytest.raises(ValueError, match="--max-choices"):
        OpenAIServer(GatedBackend(), max_pending=4, max_choices=8, max_n=8)
    assert ServerConfig(max_pending=8, max_choices=8).max_pending == 8
    assert main(["--max-pending", "4", "--max-choices", "8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-pending: 4" in err and "--max-choices 8" in err
    # used directly, the batcher refuses such a request as never fitting, not Busy
    batcher = MicroBatcher(GatedBackend(), max_pending=2)
    try:
        requests = [GenerationRequest(prompt="x", sample_index=j) for j in range(3)]
        with pytest.raises(ValueError, match="--max-pending") as exc:
            batcher.submit(requests, SamplingParams(max_new_tokens=1))
        assert not isinstance(exc.value, RuntimeError)  # Busy is a RuntimeError
    finally:
        batcher.close()


def test_a_model_name_the_server_does_not_serve_is_a_404(local, monkeypatch):
    """Any name was answered: a build asking for `gpt-4o` got the served model's answers and
    recorded them as gpt-4o's. Now 404 `model_not_found` (as OpenAI and vLLM answer), naming
    the served model; the served name and no name are answered. Behind a proxy the upstream's
    404 is the proxy's own fault: a 502 naming it."""
    from axolotl_mistake.generation import BackendConfig

    with OpenAIServer(local, served_model_name="tiny") as srv:
        for path, body in (
            ("/completions", {"prompt": "Hello", "max_tokens": 2}),
            (
                "/chat/completions",
                {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2},
            ),
        ):
            wrong = httpx.post(srv.base_url + path, json={**body, "model": "gpt-4o"}, timeout=60)
            assert wrong.status_code == 404, wrong.text
            error = wrong.json()["error"]
            assert (error["code"], error["param"]) == ("model_not_found", "model")
            assert "'gpt-4o'" in error["message"] and "'tiny'" in error["message"]
            for ok in ({**body, "model": "tiny"}, body):
                assert httpx.post(srv.base_url + path, json=ok, timeout=60).status_code == 200
        misnamed = BackendConfig(
            kind="openai", base_url=srv.base_url, model="gpt-4o", max_retries=0
        ).load()
        with OpenAIServer(misnamed, served_model_name="proxy") as proxy:
            body = {"prompt": "Hello", "max_tokens": 2, "model": "proxy"}
            response = httpx.post(proxy.base_url + "/completions", json=body, timeout=60)
            assert response.status_code == 502, response.text
            assert "HTTP 404" in response.json()["error"]["message"]


def test_the_verbose_access_log_masks_a_key_in_the_query(local, caplog, monkeypatch):
    """`serve --verbose` logs every request's path and query (uvicorn's access log); a client
    that puts its key there (`?api-key=...`, as some SDKs do) must not have it printed."""
    for name in ("uvicorn.access", "axolotl_mistake.serve.app"):
        # Axolotl's in-process logging setup (earlier tests) disables loggers or gives them a
        # filter that drops INFO; a `serve` process has neither
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "filters", [])
        monkeypatch.setattr(logger, "disabled", False)
    caplog.set_level(logging.DEBUG)
    with OpenAIServer(local, served_model_name="tiny") as srv:
        response = httpx.get(srv.base_url + "/models?api-key=sk-SEKRIT-123&limit=5")
        assert response.status_code == 200
        deadline = time.monotonic() + 5
        while not _access_lines(caplog) and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = _access_lines(caplog)
    assert lines, [r.getMessage() for r in caplog.records]
    assert "/v1/models?api-key=***&limit=5" in lines[0], lines
    served = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert not [r for r in served if "SEKRIT" in r.getMessage()]  # (the test's own client logs it)


def _access_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
