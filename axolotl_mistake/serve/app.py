"""The OpenAI-compatible HTTP API (FastAPI on uvicorn) in front of a generation `Backend`.

/v1/models (and /v1/models/{id}), /v1/completions, /v1/chat/completions and /health. A
request is read only up to the byte limit, validated (`schemas`), checked against the model's
context *before* it is queued, then micro-batched (`batcher`). It must never log request bodies
or API keys, never run a prompt that cannot fit, and binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import threading
import time
import uuid
from typing import Any

import anyio
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from axolotl_mistake.generation.base import (
    CONTEXT_LENGTH_EXCEEDED,
    Backend,
    Completion,
    GenerationRequest,
    context_error_message,
)
from axolotl_mistake.redact import redact_logger
from axolotl_mistake.serve.batcher import Busy, MicroBatcher
from axolotl_mistake.serve.schemas import (
    EMPTY_PROMPT,
    ChatBody,
    CompletionBody,
    RequestError,
    ServerConfig,
    parse_body,
)

log = logging.getLogger(__name__)

GENERATION_PATHS = ("/v1/completions", "/v1/chat/completions")

CLIENT_FAULT_STATUSES = (400, 413, 422)
"""Upstream refusals of the request's own content (fronting `kind: openai`): passed on as they
are, so the client does not retry what cannot succeed. Any other upstream refusal (401, 403,
404: the server's own key, model name or URL) is the server's fault, a 502."""


def error_response(
    status: int, message: str, kind: str, *, param: str | None = None, code: str | None = None
) -> JSONResponse:
    """An OpenAI-shaped error body: {"error": {message, type, param, code}}."""
    body = {"message": message, "type": kind, "param": param, "code": code or status}
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def failure_response(completion: Completion) -> JSONResponse:
    """The error for a request whose generation failed: a refusal by the endpoint this server
    fronts keeps its meaning (see CLIENT_FAULT_STATUSES); anything else is a 500."""
    upstream = completion.extra.get("upstream_status")
    message = completion.error or ""
    if upstream in CLIENT_FAULT_STATUSES:
        return error_response(upstream, f"upstream: {message}", "invalid_request_error")
    if isinstance(upstream, int) and 400 <= upstream < 500:
        return error_response(
            502, f"the upstream endpoint refused this server's request: {message}", "upstream_error"
        )
    return error_response(500, f"generation failed: {message}", "server_error")


class OpenAIServer:
    """An OpenAI-compatible server around a backend; `start()` runs it in a background thread,
    `serve_forever()` in this one (uvicorn then handles SIGINT/SIGTERM).

    Settings are `ServerConfig` fields, given as `config` or as keyword arguments (without a
    `config` the port defaults to 0: a free one); `api_key` is the key clients must send
    (never logged). The port is bound at construction.
    """

    def __init__(
        self,
        backend: Backend,
        config: ServerConfig | None = None,
        *,
        api_key: str | None = None,
        **settings: Any,
    ):
        base = config.model_dump() if config is not None else {"port": 0}  # a free port
        self.config = ServerConfig.model_validate({**base, **settings})
        self.backend = backend
        self.served_model_name = self.config.served_model_name or backend.model_id
        self._api_key = api_key
        self.batcher = MicroBatcher(
            backend,
            self.config.max_batch_requests,
            self.config.batch_wait_ms / 1000.0,
            self.config.max_pending,
        )
        # the first tokenizer call may reset its padding/truncation state: do it before any
        # concurrent use (HTTP worker threads count tokens while the batcher encodes)
        counter = getattr(backend, "count_prompt_tokens", None)
        if callable(counter):
            counter(GenerationRequest(prompt="warm-up"))
        self.app = self.build_app()
        self._socket = socket.create_server((self.config.host, self.config.port))
        access_log = log.isEnabledFor(logging.DEBUG)
        if access_log:  # a client's `?api-key=...` would be logged with the path
            redact_logger("uvicorn.access")
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(
                self.app,
                lifespan="off",
                log_config=None,
                access_log=access_log,
                timeout_graceful_shutdown=5,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._socket.getsockname()[0]

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __repr__(self) -> str:
        return f"OpenAIServer({self.base_url!r}, model={self.served_model_name!r})"

    # -- running ------------------------------------------------------------------------------
    def start(self) -> OpenAIServer:
        """Serve in a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(
            target=self._uvicorn.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name="openai-server",
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server at {self.base_url} did not start")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM or `stop()`."""
        try:
            self._uvicorn.run(sockets=[self._socket])
        finally:
            self._close()

    def stop(self) -> None:
        self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._close()

    def _close(self) -> None:
        self.batcher.close()
        self._socket.close()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the API ------------------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        if not self._api_key:
            return True
        expected = f"Bearer {self._api_key}"
        return header is not None and hmac.compare_digest(header.encode(), expected.encode())

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

    def build_app(self) -> FastAPI:
        """The ASGI app; a subclass may add middleware (tests inject faults this way)."""
        app = FastAPI(title="axolotl-mistake", docs_url=None, redoc_url=None, openapi_url=None)

        @app.exception_handler(HTTPException)
        async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
            kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
            return error_response(exc.status_code, f"{exc.detail}: {request.url.path}", kind)

        @app.get("/health")
        @app.get("/v1/health")
        async def health() -> dict:
            return {"status": "ok"}

        @app.get("/v1/models")
        async def models(request: Request) -> Any:
            if not self.authorized(request.headers.get("authorization")):
                return error_response(401, "invalid or missing API key", "authentication_error")
            return self.models()

        @app.get("/v1/models/{model:path}")
        async def model(request: Request, model: str) -> Any:
            if not self.authorized(request.headers.get("authorization")):
                return error_response(401, "invalid or missing API key", "authentication_error")
            try:
                self._check_model(model)
            except RequestError as exc:
                return error_response(
                    exc.status, exc.message, "invalid_request_error", param=exc.param, code=exc.code
                )
            return self.models()["data"][0]

        @app.post("/v1/completions")
        async def completions(request: Request) -> Any:
            return await self.answer(request, chat=False)

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request) -> Any:
            return await self.answer(request, chat=True)

        return app

    async def answer(self, request: Request, *, chat: bool) -> Any:
        """One generation request: auth, bounded read, validation, context check, batch."""
        if not self.authorized(request.headers.get("authorization")):
            return error_response(401, "invalid or missing API key", "authentication_error")
        try:
            raw = await self._read_body(request)
            body = parse_body(ChatBody if chat else CompletionBody, raw)
            self._check_model(body.model)
            params, n = body.sampling(self.config)
            requests = body.requests(n)
            if len(requests) > self.config.max_choices:
                raise RequestError(
                    f"{len(requests)} completions asked for (prompts x n); this server gives at "
                    f"most {self.config.max_choices} per request (--max-choices)",
                    param="n",
                )
            await self._check_prompts(requests, params.max_new_tokens, body.prompt_params())
            unseeded = body.seed is None and not params.greedy
            future = self.batcher.submit(requests, params, unseeded=unseeded)
        except RequestError as exc:
            return error_response(
                exc.status, exc.message, "invalid_request_error", param=exc.param, code=exc.code
            )
        except Busy as exc:
            return error_response(503, str(exc), "server_busy")
        try:
            results = await asyncio.wrap_future(future)
        except Exception as exc:  # the backend raised: its text may hold the prompt
            # one line with the type only: no message, no traceback (request bodies never reach
            # the log); the client gets the OpenAI error shape, not uvicorn's plain-text 500
            log.error("generation failed: the backend raised %s", type(exc).__name__)
            return error_response(
                500, f"generation failed: the backend raised {type(exc).__name__}", "server_error"
            )
        failed = [c for c in results if not c.ok]
        if failed:
            first = failed[0]
            if first.extra.get("error_code") == CONTEXT_LENGTH_EXCEEDED:
                return error_response(
                    400, first.error or "", "invalid_request_error", code=CONTEXT_LENGTH_EXCEEDED
                )
            # the error may quote an upstream body that echoes the prompt: the client gets it,
            # the log does not
            log.warning("generation failed for %d of %d prompts", len(failed), len(results))
            return failure_response(first)
        return self._response(results, n, chat)

    def _check_model(self, name: str | None) -> None:
        """Refuse (404, `model_not_found`, as OpenAI and vLLM do) a model name this server does
        not serve: answering it would let a client record another model's answers under the
        name it asked for (a build's manifest, an eval's judge). No name: the one served."""
        if name is not None and name != self.served_model_name:
            raise RequestError(
                f"the model {name!r} does not exist here: this server serves "
                f"{self.served_model_name!r} (GET /v1/models); ask for that name, or start the "
                "server with --served-model-name",
                param="model",
                status=404,
                code="model_not_found",
            )

    async def _read_body(self, request: Request) -> bytes:
        """The body, refused with 413 as soon as it exceeds max_body_bytes (never read whole)."""
        limit = self.config.max_body_bytes
        too_big = RequestError(
            f"request body is larger than this server's limit of {limit} bytes (--max-body-bytes)",
            status=413,
        )
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise too_big
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    async def _check_prompts(
        self, requests: list[GenerationRequest], max_tokens: int, names: list[str]
    ) -> None:
        """Refuse (400, naming the prompt's field in `names`) a prompt the backend would refuse
        anyway, before it is queued: one that cannot be rendered, one with no tokens, one whose
        tokens + max_tokens exceed the model's context. Each prompt is tokenized once (not per
        n), in a worker thread. Backends without a local tokenizer (kind openai) leave these
        checks to their server."""
        limit = getattr(self.backend, "max_context", None)
        count = getattr(self.backend, "count_prompt_tokens", None)
        if not callable(count):
            return
        first_samples = [r for r in requests if not r.sample_index]  # n samples share a prompt
        for request, param in zip(first_samples, names):
            try:
                tokens = await anyio.to_thread.run_sync(count, request)
            except Exception as exc:  # e.g. a chat template that rejects the turns
                raise RequestError(
                    f"{param}: could not render the prompt: {type(exc).__name__}: {exc}",
                    param=param,
                ) from None
            if tokens == 0:
                raise RequestError(f"{param}: {EMPTY_PROMPT}", param=param)
            error = (
                limit
                and tokens is not None
                and context_error_message(tokens, max_tokens, limit, name="max_tokens")
            )
            if error:
                raise RequestError(error, param=param, code=CONTEXT_LENGTH_EXCEEDED)

    def _response(self, results: list[Completion], n: int, chat: bool) -> dict:
        choices = []
        for index, c in enumerate(results):
            if chat:
                choice: dict = {"message": {"role": "assistant", "content": c.text}}
            else:
                choice = {"text": c.text, "logprobs": None}
            choices.append({"index": index, "finish_reason": c.finish_reason, **choice})
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
