"""A small OpenAI-compatible HTTP server in front of any generation `Backend`.

`python -m axolotl_mistake.serve --model embedded --port 8000` serves /v1/models,
/v1/completions and /v1/chat/completions, so a judge, the builder or any OpenAI client can talk
to the embedded model or a trained adapter. Concurrent requests are micro-batched into one
backend call. It must never log request bodies or API keys, and binds 127.0.0.1 by default.
"""

from __future__ import annotations

import argparse
import collections
import hmac
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from axolotl_mistake.generation.base import Backend, Completion, GenerationRequest, SamplingParams

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024


class RequestError(ValueError):
    """The client sent something the API does not accept (answered with HTTP 400)."""


# -- micro-batching ---------------------------------------------------------------------------
@dataclass
class _Job:
    requests: list[GenerationRequest]
    params: SamplingParams
    done: threading.Event = field(default_factory=threading.Event)
    result: list[Completion] | None = None
    error: BaseException | None = None


class MicroBatcher:
    """One worker thread owns the backend; HTTP threads hand it jobs and wait.

    Jobs that arrive within `wait_s` of each other and share sampling parameters are sent to
    the backend as one `generate()` call (up to `max_requests` prompts), so concurrent clients
    share forward passes. Only this thread ever touches the model.
    """

    def __init__(self, backend: Backend, max_requests: int = 64, wait_s: float = 0.005):
        self.backend = backend
        self.max_requests = max(1, max_requests)
        self.wait_s = wait_s
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="serve-batcher", daemon=True)
        self._thread.start()
        self.calls = 0

    def submit(self, requests: list[GenerationRequest], params: SamplingParams) -> list[Completion]:
        job = _Job(requests, params)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        held: collections.deque[_Job] = collections.deque()
        stopping = False
        while True:
            if held:
                job = held.popleft()
            elif stopping:
                return
            else:
                job = self._queue.get()
            if job is None:
                stopping = True
                continue
            group, size = [job], len(job.requests)
            deadline = time.monotonic() + self.wait_s
            while size < self.max_requests and not stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    nxt = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                elif nxt.params == job.params and size + len(nxt.requests) <= self.max_requests:
                    group.append(nxt)
                    size += len(nxt.requests)
                else:
                    held.append(nxt)
            self._run(group)

    def _run(self, group: list[_Job]) -> None:
        flat = [r for job in group for r in job.requests]
        try:
            self.calls += 1
            results = self.backend.generate(flat, group[0].params)
            if len(results) != len(flat):
                raise RuntimeError(f"backend returned {len(results)} completions for {len(flat)}")
        except BaseException as exc:  # delivered to every waiting HTTP thread
            for job in group:
                job.error = exc
                job.done.set()
            return
        start = 0
        for job in group:
            job.result = list(results[start : start + len(job.requests)])
            start += len(job.requests)
            job.done.set()


# -- request parsing --------------------------------------------------------------------------
def _number(body: dict, name: str, default, kind, lo=None, hi=None):
    value = body.get(name, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"'{name}' must be a number")
    if kind is int and int(value) != value:
        raise RequestError(f"'{name}' must be an integer")
    value = kind(value)
    if lo is not None and value < lo:
        raise RequestError(f"'{name}' must be >= {lo}")
    if hi is not None and value > hi:
        raise RequestError(f"'{name}' must be <= {hi}")
    return value


def sampling_from_body(body: dict, default_max_tokens: int) -> tuple[SamplingParams, int]:
    """OpenAI request fields -> (SamplingParams, n). Temperature defaults to 1 as in the API."""
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = _number({"max_tokens": max_tokens}, "max_tokens", default_max_tokens, int, lo=1)
    temperature = _number(body, "temperature", 1.0, float, lo=0.0, hi=5.0)
    top_p = _number(body, "top_p", 1.0, float, lo=1e-9, hi=1.0)
    seed = _number(body, "seed", 0, int)
    n = _number(body, "n", 1, int, lo=1, hi=64)
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = tuple(stop)
    else:
        raise RequestError("'stop' must be a string or a list of strings")
    if body.get("stream"):
        raise RequestError("'stream' is not supported by this server")
    if temperature <= 0:  # greedy: seed and top_p are irrelevant; let such requests batch
        seed, top_p = 0, 1.0
    params = SamplingParams(
        max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stops, seed=seed
    )
    return params, n


def _message_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        parts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise RequestError(f"messages[{index}].content: only text parts are supported")
            parts.append(part["text"])
        return "".join(parts)
    raise RequestError(f"messages[{index}].content must be a string")


def chat_requests(body: dict, n: int) -> list[GenerationRequest]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise RequestError(f"messages[{i}] must be an object with a string 'role'")
        turns.append({"role": m["role"], "content": _message_text(m.get("content"), i)})
    return [GenerationRequest(messages=tuple(turns), sample_index=j) for j in range(n)]


def completion_requests(body: dict, n: int) -> list[GenerationRequest]:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = prompt
    else:
        raise RequestError("'prompt' must be a string or a non-empty list of strings")
    return [GenerationRequest(prompt=p, sample_index=j) for p in prompts for j in range(n)]


# -- the server -------------------------------------------------------------------------------
class OpenAIServer:
    """An OpenAI-compatible HTTP server around a backend (ThreadingHTTPServer + MicroBatcher).

    `intercept(handler, ordinal)` is a hook for tests (fault injection); it is called for every
    generation request with its 1-based ordinal and returns True when it already answered.
    """

    def __init__(
        self,
        backend: Backend,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        served_model_name: str | None = None,
        api_key: str | None = None,
        max_batch_requests: int = 64,
        batch_wait_s: float = 0.005,
        default_max_tokens: int = 256,
    ):
        self.backend = backend
        self.served_model_name = served_model_name or backend.model_id
        self._api_key = api_key
        self.default_max_tokens = default_max_tokens
        self.batcher = MicroBatcher(backend, max_batch_requests, batch_wait_s)
        self._lock = threading.Lock()
        self.requests_seen = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.auth_headers_seen: list[str | None] = []
        self.httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self.httpd.server_address[0]

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __repr__(self) -> str:
        return f"OpenAIServer({self.base_url!r}, model={self.served_model_name!r})"

    def start(self) -> OpenAIServer:
        """Serve in a background thread (returns at once)."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="openai-server", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.batcher.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # hooks -----------------------------------------------------------------------------------
    def intercept(self, handler: BaseHTTPRequestHandler, ordinal: int) -> bool:
        return False

    def authorized(self, header: str | None) -> bool:
        if not self._api_key:
            return True
        expected = f"Bearer {self._api_key}"
        return header is not None and hmac.compare_digest(header.encode(), expected.encode())

    # endpoints -------------------------------------------------------------------------------
    def models(self) -> dict:
        return {
            "object": "list",
            "data": [
                {
                    "id": self.served_model_name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "axolotl-mistake",
                }
            ],
        }

    def complete(self, path: str, body: dict) -> dict:
        params, n = sampling_from_body(body, self.default_max_tokens)
        chat = path.endswith("/chat/completions")
        requests = chat_requests(body, n) if chat else completion_requests(body, n)
        results = self.batcher.submit(requests, params)
        failed = [c.error for c in results if not c.ok]
        if failed:
            raise RuntimeError(f"generation failed: {failed[0]}")
        choices = []
        for index, c in enumerate(results):
            if chat:
                choices.append(
                    {
                        "index": index,
                        "finish_reason": c.finish_reason,
                        "message": {"role": "assistant", "content": c.text},
                    }
                )
            else:
                choices.append(
                    {
                        "index": index,
                        "finish_reason": c.finish_reason,
                        "text": c.text,
                        "logprobs": None,
                    }
                )
        # prompt tokens count once per distinct prompt, as in the OpenAI API
        prompt_tokens = sum(c.prompt_tokens for c in results[::n])
        completion_tokens = sum(c.completion_tokens for c in results)
        return {
            "id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24],
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.served_model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _make_handler(server: OpenAIServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        app = server

        def log_message(self, fmt: str, *args) -> None:  # access log at debug level only
            log.debug("%s " + fmt, self.address_string(), *args)

        def send_json(self, status: int, payload: Any, headers: dict | None = None) -> None:
            blob = json.dumps(payload, ensure_ascii=False).encode()
            self.send_raw(status, blob, headers)

        def send_raw(
            self,
            status: int,
            blob: bytes,
            headers: dict | None = None,
            content_type: str = "application/json",
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(blob)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(blob)
            except (BrokenPipeError, ConnectionResetError):  # client gave up (e.g. timeout)
                self.close_connection = True

        def send_error_json(self, status: int, message: str, kind: str) -> None:
            self.send_json(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path in ("/health", "/v1/health"):
                self.send_json(200, {"status": "ok"})
            elif not self.app.authorized(self.headers.get("Authorization")):
                self.send_error_json(401, "invalid or missing API key", "authentication_error")
            elif path == "/v1/models":
                self.send_json(200, self.app.models())
            else:
                self.send_error_json(404, f"no route {path}", "not_found")

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                self.send_error_json(413, "request body too large", "invalid_request_error")
                return
            raw = self.rfile.read(length) if length else b""
            if path not in ("/v1/completions", "/v1/chat/completions"):
                self.send_error_json(404, f"no route {path}", "not_found")
                return
            app = self.app
            with app._lock:
                app.requests_seen += 1
                ordinal = app.requests_seen
                app.auth_headers_seen.append(self.headers.get("Authorization"))
                app.in_flight += 1
                app.max_in_flight = max(app.max_in_flight, app.in_flight)
            try:
                if app.intercept(self, ordinal):
                    return
                if not app.authorized(self.headers.get("Authorization")):
                    self.send_error_json(401, "invalid or missing API key", "authentication_error")
                    return
                try:
                    body = json.loads(raw.decode("utf-8"))
                    if not isinstance(body, dict):
                        raise RequestError("request body must be a JSON object")
                    payload = app.complete(path, body)
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    self.send_error_json(
                        400, f"request body is not JSON: {exc}", "invalid_request_error"
                    )
                except RequestError as exc:
                    self.send_error_json(400, str(exc), "invalid_request_error")
                except Exception as exc:
                    log.warning("generation failed: %s", exc)
                    self.send_error_json(500, str(exc), "server_error")
                else:
                    self.send_json(200, payload)
            finally:
                with app._lock:
                    app.in_flight -= 1

    return Handler


# -- CLI --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from axolotl_mistake.generation.config import backend_fields

    fields = backend_fields()
    p = argparse.ArgumentParser(
        prog="python -m axolotl_mistake.serve",
        description="Serve a model (default: the embedded SmolLM2-135M-Instruct) over an "
        "OpenAI-compatible HTTP API: /v1/models, /v1/completions, /v1/chat/completions.",
    )
    p.add_argument("--model", default="embedded", help=fields["model"].description)
    p.add_argument(
        "--kind",
        default="transformers",
        choices=["transformers", "vllm", "openai"],
        help=fields["kind"].description,
    )
    p.add_argument("--revision", default=None, help=fields["revision"].description)
    p.add_argument("--adapter", default=None, help=fields["adapter"].description)
    p.add_argument(
        "--chat",
        default="auto",
        choices=["auto", "always", "never"],
        help=fields["chat"].description,
    )
    p.add_argument("--batch-size", type=int, default=16, help=fields["batch_size"].description)
    p.add_argument("--device", default="auto", help=fields["device"].description)
    p.add_argument("--dtype", default="auto", help=fields["dtype"].description)
    p.add_argument("--base-url", default=None, help=fields["base_url"].description)
    p.add_argument(
        "--tensor-parallel-size",
        type=int,
        default=1,
        help=fields["tensor_parallel_size"].description,
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (0 picks a free one)")
    p.add_argument(
        "--served-model-name",
        default=None,
        help="model id reported by /v1/models and in responses (default: the model)",
    )
    p.add_argument(
        "--api-key-env",
        default=None,
        help="NAME of an env var holding a key clients must send as a Bearer token",
    )
    p.add_argument(
        "--default-max-tokens",
        type=int,
        default=256,
        help="max_tokens when a request gives none (default 256)",
    )
    p.add_argument(
        "--max-batch-requests",
        type=int,
        default=64,
        help="most prompts merged into one backend call (default 64)",
    )
    p.add_argument(
        "--batch-wait-ms",
        type=float,
        default=5.0,
        help="how long to wait for concurrent requests to batch together (default 5)",
    )
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    from axolotl_mistake.generation.config import BackendConfig
    from axolotl_mistake.generation.factory import load_backend

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            print(
                f"error: --api-key-env {args.api_key_env}: that environment variable is empty",
                file=sys.stderr,
            )
            return 2
    keys = ("model", "revision", "adapter", "chat", "batch_size", "device", "dtype", "base_url")
    keys += ("tensor_parallel_size",)
    given = {k: getattr(args, k) for k in keys if getattr(args, k) != build_parser().get_default(k)}
    try:
        cfg = BackendConfig(kind=args.kind, **given)
    except ValidationError as exc:
        print(f"error: invalid backend settings:\n{exc}", file=sys.stderr)
        return 2
    try:
        backend = load_backend(cfg)
    except (OSError, ValueError, ImportError) as exc:
        print(f"error: cannot load model {args.model!r}: {exc}", file=sys.stderr)
        return 2
    try:
        server = OpenAIServer(
            backend,
            args.host,
            args.port,
            served_model_name=args.served_model_name,
            api_key=api_key,
            max_batch_requests=args.max_batch_requests,
            batch_wait_s=args.batch_wait_ms / 1000.0,
            default_max_tokens=args.default_max_tokens,
        )
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.httpd.shutdown).start())
    print(f"serving {server.served_model_name} at {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
        server.batcher.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
