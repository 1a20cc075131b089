"""Backend for any OpenAI-compatible HTTP server (vLLM serve, llama.cpp, Ollama, hosted APIs).

The official `openai` client (`AsyncOpenAI`, imported when a call is made) does the HTTP work:
timeouts, and retries with backoff on 429, 5xx, timeouts and connection errors, honouring
Retry-After. This layer adds a concurrency limit, retries of malformed 200 replies, stats, and
turns every failure into a `Completion` with `error` set: it never raises for one request, and
never logs, reprs or returns the API key (read only from the env var `api_key_env` names),
not even when a server echoes it back in an error body.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import logging
import os
import queue
import random
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from axolotl_mistake.fields import count
from axolotl_mistake.generation.base import (
    CONTEXT_LENGTH_EXCEEDED,
    BaseBackend,
    Completion,
    GenerationRequest,
    SamplingParams,
    failed,
)
from axolotl_mistake.generation.common import request_seed, truncate_at_stop
from axolotl_mistake.generation.config import BackendConfig
from axolotl_mistake.redact import redact_logger, redact_text, redact_url, secret_forms

log = logging.getLogger(__name__)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_BACKOFF_S = 30.0
_RETRIED_STATUSES = (408, 409, 429)  # and every 5xx: what the openai client retries

_attempts: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "axolotl_mistake_openai_attempts", default=None
)
"""HTTP attempts of the logical call running in this task (counted by an httpx event hook)."""


PREFILL_UNSUPPORTED = (
    "a request whose assistant reply is prefilled needs a backend that encodes prompts itself "
    "(transformers or vllm): the chat completions API has no standard way to continue a reply"
)


class OpenAIConfig(BackendConfig):
    """kind: openai -- any OpenAI-compatible endpoint, through the official `openai` client."""

    kind: Literal["openai"] = "openai"
    base_url: str = Field(
        description=(
            "OpenAI-compatible endpoint including /v1, e.g. 'http://127.0.0.1:8000/v1' (required)."
        ),
    )
    api_key_env: str | None = Field(
        None,
        description=(
            "NAME of the environment variable that holds the API key (sent as a Bearer token). "
            "The key itself is never stored in configs, manifests, logs or reprs; OPENAI_API_KEY "
            "is not read unless named here."
        ),
    )

    @field_validator("api_key_env")
    @classmethod
    def _a_variable_name(cls, value: str | None) -> str | None:
        # the message never repeats the value: it may be the key itself, pasted here
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(
                "must be the NAME of an environment variable (letters, digits and _, not "
                "starting with a digit), not the key: export the key in a variable and give "
                "its name here"
            )
        return value

    concurrency: int = count(8, "Requests in flight at once.")
    max_retries: int = count(
        4,
        "Retries per request on 429, 5xx, timeouts and connection errors (by the openai client: "
        "exponential backoff from 0.5 s to 8 s with jitter, Retry-After honoured), and on "
        "malformed 200 replies; after them the completion comes back with `error`.",
        minimum=0,
    )
    timeout_s: float = Field(
        60.0,
        gt=0,
        description=(
            "Per-request HTTP timeout in seconds: the whole answer of one attempt must arrive "
            "within it (not only each read: an endpoint trickling bytes still times out)."
        ),
    )
    retry_backoff_s: float = Field(
        0.5,
        ge=0,
        description=(
            "First delay in seconds before re-asking after a malformed 200 reply; doubles each "
            "retry, with jitter, capped at 30 s."
        ),
    )

    @model_validator(mode="after")
    def _one_credential(self) -> OpenAIConfig:
        # httpx sends a URL's user info as a Basic Authorization header, which replaces the
        # Bearer key: with both, the key would silently never be sent
        parts = urlsplit(self.base_url)
        if self.api_key_env and (parts.username is not None or parts.password is not None):
            raise ValueError(
                "base_url carries user:password@ (sent as Basic auth, which replaces the "
                "Bearer key) and api_key_env is set: give one of them"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _no_local_adapter(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("adapter"):
            raise ValueError(
                "`adapter` is applied locally; with kind 'openai' serve the adapter instead "
                "(python -m axolotl_mistake.serve --adapter DIR) and point base_url at it"
            )
        return data

    def load(self) -> OpenAIBackend:
        return OpenAIBackend(self)


def _url_credentials(url: str) -> list[str]:
    """The forms in which a URL's user info can come back in a reply: as written, decoded,
    `user:password`, and its Basic-auth base64 (longest first, so a part never hides a whole)."""
    parts = urlsplit(url)
    user, password = parts.username, parts.password
    if user is None and password is None:
        return []
    pair = f"{unquote(user or '')}:{unquote(password or '')}"
    raw = parts.netloc.rsplit("@", 1)[0]
    forms = {raw, pair, base64.b64encode(pair.encode()).decode()}
    if password and len(unquote(password)) >= 4:  # not the user name: it may be any word
        forms.add(unquote(password))
    return sorted((f for f in forms if f), key=len, reverse=True)


def _release(taken: asyncio.Future) -> None:
    """Free the slot of a call whose completion the caller has taken."""
    if not taken.done():
        taken.set_result(None)


class MalformedResponse(Exception):
    """The server answered 200 but the body is not the JSON shape the API promises."""


class OpenAIBackend(BaseBackend):
    """Talks to `{base_url}/completions` (prompt requests) and `/chat/completions` (messages).

    Seeds: the server gets `request_seed(params.seed, sample_index)`, so the k samples of one
    prompt differ and each is reproducible where the server honours `seed` (vLLM, llama.cpp,
    this project's `serve`; hosted APIs only try to). `stats` counts HTTP attempts
    (`requests`), re-asks (`retries`) and requests that failed for good (`failures`).
    """

    name = "openai"

    def __init__(self, cfg: OpenAIConfig) -> None:
        """The endpoint, limits and retries of `cfg` (which holds only the NAME of the key's
        env var; the key is read here, once, and kept out of every repr)."""
        self.cfg = cfg
        self.base_url = cfg.base_url.rstrip("/")
        self.model_id, self.revision = cfg.model, cfg.revision
        self.__api_key: str | None = None
        if cfg.api_key_env:
            value = os.environ.get(cfg.api_key_env)
            if not value:
                raise ValueError(
                    f"environment variable {cfg.api_key_env!r} (backend.api_key_env) is not set "
                    "or empty; export the API key there"
                )
            self.__api_key = value
        secrets = [(self.__api_key, "<redacted api key>")] if self.__api_key else []
        secrets += [(s, "<redacted credentials>") for s in _url_credentials(self.base_url)]
        # every form of every secret, longest first across them all, so a shorter one never
        # cuts a longer one in half; made once, as the key is read once
        self.__redactions = sorted(
            ((form, mask) for secret, mask in secrets for form in secret_forms(secret)),
            key=lambda r: len(r[0]),
            reverse=True,
        )
        self.stats = {"requests": 0, "retries": 0, "failures": 0}
        self._stats_lock = threading.Lock()
        for logger in ("httpx", "httpx2", "openai"):  # their request logs quote the full URL
            redact_logger(logger)

    @classmethod
    def from_config(cls, cfg: OpenAIConfig) -> OpenAIBackend:
        return cls(cfg)

    @property
    def cache_identity(self) -> str:
        """The endpoint, in every cache key: two servers may serve different weights under one
        model name (e.g. two `serve --adapter` runs both answering to 'model')."""
        return self.base_url

    def __repr__(self) -> str:
        key = f", api_key_env={self.cfg.api_key_env!r}" if self.cfg.api_key_env else ""
        return (
            f"OpenAIBackend(base_url={redact_url(self.base_url)!r}, model={self.model_id!r}{key})"
        )

    # -- public, synchronous ------------------------------------------------------------------
    def generate_iter(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> Iterator[tuple[int, Completion]]:
        """Yield (index, completion) as each HTTP call finishes (in completion order).

        The event loop runs in a private thread, so this works inside a running loop too. A
        call keeps its concurrency slot until the caller asks for the next item, i.e. until a
        CachedBackend has committed it: answered calls never pile up uncommitted while new ones
        go out, so a process killed at any instant loses at most `concurrency` calls. Closing
        the generator early cancels the calls not yet made.
        """
        if not requests:
            return
        results: queue.Queue = queue.Queue()
        done = object()
        running: dict[str, Any] = {}

        async def hand_over(i: int, completion: Completion) -> None:
            taken = asyncio.get_running_loop().create_future()
            results.put((i, completion, taken))
            await taken

        async def run_all() -> None:
            running["loop"], running["task"] = asyncio.get_running_loop(), asyncio.current_task()
            await self._run_all(requests, params, hand_over)

        def runner() -> None:
            try:
                asyncio.run(run_all())
            except BaseException as exc:  # surfaced in the caller's thread
                results.put(exc)
            finally:
                results.put(done)

        def call_in_loop(fn: Callable[..., Any], *args: Any) -> None:
            try:
                running["loop"].call_soon_threadsafe(fn, *args)
            except RuntimeError:  # the loop has already closed: nothing left to wake
                pass

        thread = threading.Thread(target=runner, name="openai-backend", daemon=True)
        thread.start()
        finished = False
        try:
            while True:
                item = results.get()
                if item is done:
                    finished = True
                    break
                if isinstance(item, BaseException):
                    raise item
                i, completion, taken = item
                yield i, completion
                call_in_loop(_release, taken)
        finally:
            if not finished and "task" in running:
                call_in_loop(running["task"].cancel)
            thread.join()

    async def agenerate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[Completion]:
        """The async form, for callers that already run an event loop."""
        out: list[Completion | None] = [None] * len(requests)

        async def keep(i: int, c: Completion) -> None:
            out[i] = c

        await self._run_all(requests, params, keep)
        return out  # type: ignore[return-value]

    # -- internals ----------------------------------------------------------------------------
    def _client(self) -> Any:
        """An AsyncOpenAI client for one event loop; every HTTP attempt bumps `_attempts`."""
        import openai

        async def count_attempt(_request: Any) -> None:
            counter = _attempts.get()
            if counter is not None:
                counter[0] += 1

        return openai.AsyncOpenAI(
            base_url=self.base_url,
            # a placeholder keeps the client from reading OPENAI_API_KEY; its header is omitted
            api_key=self.__api_key or "no-key",
            max_retries=self.cfg.max_retries,
            timeout=self.cfg.timeout_s,
            http_client=_deadline_client(self.cfg.timeout_s, {"request": [count_attempt]}),
        )

    def _extra_headers(self) -> dict[str, Any]:
        """Headers to drop: org/project ids the client takes from the environment, and the
        Authorization header when no key is configured."""
        from openai import Omit

        headers: dict[str, Any] = {"OpenAI-Organization": Omit(), "OpenAI-Project": Omit()}
        if not self.__api_key:
            headers["Authorization"] = Omit()
        return headers

    async def _run_all(
        self,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        emit: Callable[[int, Completion], Awaitable[None]],
    ) -> None:
        """Every request, `concurrency` at a time; a slot is freed only once `emit` returns."""
        semaphore = asyncio.Semaphore(self.cfg.concurrency)
        async with self._client() as client:

            async def one(i: int, request: GenerationRequest) -> None:
                async with semaphore:
                    completion = await self._call(client, request, params)
                    await emit(i, completion)

            await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))

    def _body(self, request: GenerationRequest, params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "n": 1,
            # one seed per (seed, sample index), shared by all prompts: the k samples of a
            # prompt differ, and a server can still batch same-index requests together
            "seed": request_seed(params.seed, request.sample_index),
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if request.messages is not None:
            body["messages"] = [dict(m) for m in request.messages]
        else:
            body["prompt"] = request.prompt
        return body

    async def _call(
        self, client: Any, request: GenerationRequest, params: SamplingParams
    ) -> Completion:
        import openai

        if request.prefill is not None:
            return failed(PREFILL_UNSUPPORTED)
        counter = [0]
        _attempts.set(counter)  # this task's own context: gather() runs each call in a task
        chat = request.messages is not None
        body = self._body(request, params)
        headers = self._extra_headers()
        budget = self.cfg.max_retries + 1  # HTTP attempts per request, shared with the client's
        calls = 0
        while True:
            # after a malformed reply, the client may only spend what is left of the budget
            calls += 1
            counter[0] = max(counter[0], calls - 1)  # a floor, should the hook not see a try
            api = (
                client
                if calls == 1
                else client.with_options(max_retries=max(0, budget - counter[0] - 1))
            )
            endpoint = api.chat.completions if chat else api.completions
            try:
                raw = await endpoint.with_raw_response.create(**body, extra_headers=headers)
            except openai.APITimeoutError:
                error = f"timeout after {self.cfg.timeout_s:g}s"
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                error = f"connection error ({type(cause).__name__}: {cause})"
            except openai.APIStatusError as exc:
                # redacted before it is cut: a key straddling the cut would leave its start
                error = f"HTTP {exc.status_code}: {_snippet(exc.response, redact=self._redact)}"
                if not (exc.status_code in _RETRIED_STATUSES or exc.status_code >= 500):
                    # the request itself is wrong (400, 401, 404, ...): re-asking cannot help
                    return self._failure(
                        counter, error, code=_error_code(exc), status=exc.status_code
                    )
            except openai.OpenAIError as exc:  # anything else the client reports
                error = f"{type(exc).__name__}: {exc}"
            else:
                try:
                    completion = _parse(raw.http_response.content, chat, params)
                except MalformedResponse as exc:
                    error = f"malformed response body: {exc}"
                    if max(counter[0], calls) < budget:
                        await asyncio.sleep(self._backoff(calls - 1))
                        continue
                else:
                    self._count(counter, gave_up=False)
                    return completion
            break  # the client has spent the budget on this one
        return self._failure(counter, f"{error} (gave up after {max(counter[0], 1)} attempts)")

    def _failure(
        self,
        counter: list[int],
        message: str,
        code: str | None = None,
        status: int | None = None,
    ) -> Completion:
        self._count(counter, gave_up=True)
        return failed(self._redact(message), code=code, upstream_status=status)

    def _redact(self, text: str) -> str:
        """`text` without the API key or the credentials of `base_url`: some servers echo the
        Authorization header in their error body (a 401 "incorrect key: Bearer sk-...", or
        the Basic header httpx makes of a URL's `user:password@`), and failure messages are
        stored in manifests, results and reports. Each secret is removed in every form
        `secret_forms` lists (a server may echo it percent-encoded or JSON-escaped), and URLs
        in it are redacted too."""
        for form, mask in self.__redactions:
            text = text.replace(form, mask)
        return redact_text(text)

    def _count(self, counter: list[int], *, gave_up: bool) -> None:
        attempts = max(counter[0], 1)
        with self._stats_lock:
            self.stats["requests"] += attempts
            self.stats["retries"] += attempts - 1
            self.stats["failures"] += int(gave_up)

    def _backoff(self, attempt: int) -> float:
        delay = min(_MAX_BACKOFF_S, self.cfg.retry_backoff_s * (2**attempt))
        return delay * (0.5 + random.random())  # jitter: spread retries of concurrent requests


def _deadline_client(deadline_s: float, event_hooks: dict[str, list[Any]]) -> Any:
    """The openai client's default httpx client, with `deadline_s` over each whole attempt.

    httpx's timeout bounds each read, so a server sending a byte now and then never times out;
    a deadline around `send` (which reads the whole body of a non-streamed answer) does. It
    raises httpx's own ReadTimeout, which the openai client retries and reports as a timeout.
    """
    import httpx
    import openai

    class DeadlineClient(openai.DefaultAsyncHttpxClient):
        async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            try:
                async with asyncio.timeout(deadline_s):
                    return await super().send(request, **kwargs)
            except TimeoutError:
                raise httpx.ReadTimeout(
                    f"no complete answer within {deadline_s:g}s", request=request
                ) from None

    return DeadlineClient(event_hooks=event_hooks)


def _parse(content: bytes, chat: bool, params: SamplingParams) -> Completion:
    """A 200 body -> Completion, or MalformedResponse when it is not the promised shape."""
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise MalformedResponse(f"not JSON ({exc})") from None
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise TypeError("text is not a string")
        finish = choice.get("finish_reason") or "stop"
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedResponse(f"unexpected shape ({type(exc).__name__}: {exc})") from None
    text, hit = truncate_at_stop(text, params.stop)
    extra: dict = {"id": data["id"]} if isinstance(data.get("id"), str) else {}
    if finish not in ("stop", "length"):  # e.g. "eos", "content_filter": keep it visible
        extra["server_finish_reason"] = str(finish)
        finish = "stop"
    if hit:
        finish = "stop"
    return Completion(
        text=text,
        finish_reason=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        extra=extra,
    )


def _error_code(exc: Any) -> str | None:
    """CONTEXT_LENGTH_EXCEEDED when the server says the prompt does not fit (OpenAI and this
    project's server send that code; vLLM says "maximum context length"), else None."""
    text = f"{getattr(exc, 'code', '')} {_snippet(exc.response, 2000)}"
    if CONTEXT_LENGTH_EXCEEDED in text or "maximum context length" in text.lower():
        return CONTEXT_LENGTH_EXCEEDED
    return None


def _snippet(response: Any, limit: int = 200, redact: Callable[[str], str] | None = None) -> str:
    """The body's first `limit` characters, whitespace collapsed; `redact` runs on the whole
    body first, so a secret cut in half by the limit is still removed."""
    try:
        text = response.text
    except Exception:  # undecodable body
        return "<unreadable body>"
    if redact is not None:
        text = redact(text)
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")
