"""A real OpenAI-compatible server on 127.0.0.1 for tests, with counters and fault injection.

`start_openai_server(backend, faults)` runs `axolotl_mistake.serve.OpenAIServer` in a background
thread behind an ASGI middleware that counts generation requests (and the Authorization headers
they carry) and lets a `FaultPlan` answer chosen ones (by 1-based ordinal, or by a seeded rate)
with 429, 500, a timeout (sleeping past the client's timeout) or a malformed JSON body. Front a
real model (the transformers backend on tiny_model_dir or the embedded model), never a fake.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.responses import JSONResponse, Response

from axolotl_mistake.generation.base import Backend
from axolotl_mistake.serve import OpenAIServer
from axolotl_mistake.serve.app import GENERATION_PATHS

FAULT_KINDS = ("429", "500", "timeout", "malformed")


@dataclass
class FaultPlan:
    """Which generation requests (1-based arrival ordinal) get which fault.

    `FaultPlan({"429": [1, 5], "500": [2], "timeout": [3], "malformed": [4]})`, or a seeded
    rate: `FaultPlan(rate=0.2, seed=7)` faults each ordinal with probability 0.2, the kind
    drawn from `kinds`, the same way on every run. Ordinals are assigned in arrival order, so
    with concurrency > 1 *which* request gets a fault depends on timing, but how many do not.
    """

    faults: Mapping[str, Iterable[int]] = field(default_factory=dict)
    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    timeout_sleep_s: float = 5.0
    """How long a 'timeout' request sleeps before answering (set it above the client timeout)."""
    retry_after: str | None = "0"
    """Retry-After header sent with 429 answers (None: no header)."""
    delay_s: float = 0.0
    """Extra delay before every generation request is handled (to observe concurrency)."""

    def __post_init__(self) -> None:
        self._by_ordinal: dict[int, str] = {}
        for kind, ordinals in self.faults.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
            for ordinal in ordinals:
                self._by_ordinal[int(ordinal)] = kind
        for kind in self.kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")

    @classmethod
    def always(cls, kind: str, **kwargs) -> FaultPlan:
        """Every request fails with `kind` (a permanent failure)."""
        return cls(rate=1.0, kinds=(kind,), **kwargs)

    def fault_for(self, ordinal: int) -> str | None:
        if ordinal in self._by_ordinal:
            return self._by_ordinal[ordinal]
        if self.rate > 0:
            rng = random.Random(f"{self.seed}:{ordinal}")
            if rng.random() < self.rate:
                return self.kinds[rng.randrange(len(self.kinds))]
        return None

    def response(self, kind: str) -> Response:
        if kind == "429":
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            body = {"error": {"message": "rate limited (injected)", "type": "rate_limit_error"}}
            return JSONResponse(body, status_code=429, headers=headers)
        if kind == "500":
            body = {"error": {"message": "internal error (injected)", "type": "server_error"}}
            return JSONResponse(body, status_code=500)
        if kind == "timeout":
            body = {"error": {"message": "too late (injected timeout)"}}
            return JSONResponse(body, status_code=504, headers={"Connection": "close"})
        return Response(
            b'{"id": "cmpl-x", "choices": [{"text": "trunc', media_type="application/json"
        )


class RunningServer(OpenAIServer):
    """An `OpenAIServer` that counts generation requests and applies a `FaultPlan`.

    `.requests_seen`, `.in_flight`, `.max_in_flight`, `.auth_headers_seen` (the Authorization
    header of each, or None), `.headers_seen` (all headers, lower-case names), `.bodies`
    ((path, JSON body) of each request passed on to the API) and `.faults_served` ((ordinal,
    kind) pairs) are for assertions only. `complete(path, body)` is called for every request
    passed on (override it to watch them).
    """

    def __init__(self, backend: Backend, faults: FaultPlan | None = None, **kwargs: Any):
        self.faults = faults or FaultPlan()
        self.faults_served: list[tuple[int, str]] = []
        self.requests_seen = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.auth_headers_seen: list[str | None] = []
        self.headers_seen: list[dict[str, str]] = []
        self.bodies: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        super().__init__(backend, **kwargs)

    def build_app(self) -> FastAPI:
        app = super().build_app()
        server = self

        class Intercept:  # pure ASGI: counts and faults before the API sees the request
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
                if scope["type"] != "http" or scope["path"].rstrip("/") not in GENERATION_PATHS:
                    await self.inner(scope, receive, send)
                    return
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                with server._lock:
                    server.requests_seen += 1
                    ordinal = server.requests_seen
                    server.auth_headers_seen.append(headers.get("authorization"))
                    server.headers_seen.append(headers)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    await server._sleep(server.faults.delay_s)
                    kind = server.faults.fault_for(ordinal)
                    if kind is None:
                        raw, receive = await _buffered(receive)
                        try:
                            body = json.loads(raw)
                        except ValueError:
                            body = None
                        if isinstance(body, dict):
                            server.complete(scope["path"].rstrip("/"), body)
                        await self.inner(scope, receive, send)
                        return
                    with server._lock:
                        server.faults_served.append((ordinal, kind))
                    if kind == "timeout":
                        await server._sleep(server.faults.timeout_sleep_s)
                    await server.faults.response(kind)(scope, receive, send)
                finally:
                    with server._lock:
                        server.in_flight -= 1

        app.add_middleware(Intercept)
        return app

    def complete(self, path: str, body: dict) -> None:
        """Called with every generation request the API will answer (path like /v1/...)."""
        with self._lock:
            self.bodies.append((path, body))

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops (so `stop()` never waits on a fault)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._stopping.is_set() and loop.time() < deadline:
            await asyncio.sleep(min(0.05, deadline - loop.time()))

    def start(self) -> RunningServer:
        if self._thread is None:
            super().start()
        return self

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        super().stop()


async def _buffered(receive: Any) -> tuple[bytes, Any]:
    """Read the whole request body; return it and a `receive` that replays it to the app."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    raw = b"".join(chunks)
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return raw, replay


def start_openai_server(
    backend: Backend,
    faults: FaultPlan | None = None,
    *,
    api_key: str | None = None,
    served_model_name: str = "tiny",
    host: str = "127.0.0.1",
    **kwargs: Any,
) -> RunningServer:
    """Start a real HTTP server on a free port; use it as a context manager to stop it.

    It answers requests for `served_model_name` (or naming no model) and refuses others, as the
    project's server does.

    `.base_url` is like "http://127.0.0.1:PORT/v1"; `.requests_seen` counts generation requests.
    Other keyword arguments are `ServerConfig` settings (e.g. max_body_bytes=4096).
    """
    server = RunningServer(
        backend,
        faults,
        host=host,
        port=0,
        api_key=api_key,
        served_model_name=served_model_name,
        **kwargs,
    )
    return server.start()
