"""Backend for any OpenAI-compatible HTTP server (vLLM serve, llama.cpp, Ollama, hosted APIs).

Async httpx with a concurrency limit; retries with exponential backoff and jitter on 429, 5xx,
timeouts, connection errors and malformed bodies; a request that still fails comes back as a
`Completion` with `error` set. It must never raise for one request, and never log, repr or
return the API key (read from the env var the config names).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx

from axolotl_mistake.generation.base import Completion, GenerationRequest, SamplingParams
from axolotl_mistake.generation.common import collect, request_seed, truncate_at_stop

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 30.0
_MAX_RETRY_AFTER_S = 120.0


class MalformedResponse(Exception):
    """The server answered 200 but the body is not the JSON shape the API promises."""


class OpenAIBackend:
    """Talks to `{base_url}/completions` (prompt requests) and `/chat/completions` (messages).

    Seeds: the server gets `request_seed(params.seed, sample_index)`, so the k samples of one
    prompt differ and each is reproducible where the server honours `seed` (vLLM, llama.cpp,
    this project's `serve`; hosted APIs only try to).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        revision: str | None = None,
        concurrency: int = 8,
        max_retries: int = 4,
        timeout_s: float = 60.0,
        retry_backoff_s: float = 0.5,
    ):
        self.base_url = base_url.rstrip("/")
        self.model_id = model
        self.revision = revision
        self.concurrency = max(1, concurrency)
        self.max_retries = max(0, max_retries)
        self.timeout_s = timeout_s
        self.retry_backoff_s = retry_backoff_s
        self.api_key_env = api_key_env
        self.__api_key: str | None = None
        if api_key_env:
            value = os.environ.get(api_key_env)
            if not value:
                raise ValueError(
                    f"environment variable {api_key_env!r} (backend.api_key_env) is not set or "
                    "empty; export the API key there"
                )
            self.__api_key = value
        self.stats = {"requests": 0, "retries": 0, "failures": 0}
        self._stats_lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg) -> OpenAIBackend:
        return cls(
            cfg.base_url,
            cfg.model,
            api_key_env=cfg.api_key_env,
            revision=cfg.revision,
            concurrency=cfg.concurrency,
            max_retries=cfg.max_retries,
            timeout_s=cfg.timeout_s,
            retry_backoff_s=cfg.retry_backoff_s,
        )

    def __repr__(self) -> str:
        key = f", api_key_env={self.api_key_env!r}" if self.api_key_env else ""
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self.model_id!r}{key})"

    # -- public, synchronous ------------------------------------------------------------------
    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[Completion]:
        return collect(self.generate_iter(requests, params), len(requests))

    def generate_iter(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> Iterator[tuple[int, Completion]]:
        """Yield (index, completion) as each HTTP call finishes (in completion order).

        The event loop runs in a private thread, so this works inside a running loop too.
        """
        if not requests:
            return
        results: queue.Queue = queue.Queue()
        done = object()

        def runner() -> None:
            try:
                asyncio.run(self._run_all(requests, params, lambda i, c: results.put((i, c))))
            except BaseException as exc:  # surfaced in the caller's thread
                results.put(exc)
            finally:
                results.put(done)

        thread = threading.Thread(target=runner, name="openai-backend", daemon=True)
        thread.start()
        while True:
            item = results.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
        thread.join()

    async def agenerate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[Completion]:
        """The async form, for callers that already run an event loop."""
        out: list[Completion | None] = [None] * len(requests)

        def keep(i: int, c: Completion) -> None:
            out[i] = c

        await self._run_all(requests, params, keep)
        return out  # type: ignore[return-value]

    # -- internals ----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.__api_key:
            headers["Authorization"] = f"Bearer {self.__api_key}"
        return headers

    async def _run_all(
        self,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        emit: Callable[[int, Completion], None],
    ) -> None:
        semaphore = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s), headers=self._headers(), limits=limits
        ) as client:

            async def one(i: int, request: GenerationRequest) -> None:
                async with semaphore:
                    completion = await self._call(client, request, params)
                emit(i, completion)

            await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))

    def _payload(self, request: GenerationRequest, params: SamplingParams) -> tuple[str, dict]:
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
            messages = [dict(m) for m in request.messages]
            body["messages"] = messages
            return "/chat/completions", body
        body["prompt"] = request.prompt
        return "/completions", body

    async def _call(
        self, client: httpx.AsyncClient, request: GenerationRequest, params: SamplingParams
    ) -> Completion:
        path, body = self._payload(request, params)
        url = self.base_url + path
        last_error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            with self._stats_lock:
                self.stats["requests"] += 1
                if attempt:
                    self.stats["retries"] += 1
            retry_after: float | None = None
            try:
                response = await client.post(url, json=body)
            except httpx.TimeoutException as exc:
                last_error = f"timeout after {self.timeout_s:g}s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                last_error = f"connection error ({type(exc).__name__}: {exc})"
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return self._parse(response, path, params)
                    except MalformedResponse as exc:
                        last_error = f"malformed response body: {exc}"
                elif status == 429 or status >= 500:
                    last_error = f"HTTP {status}: {_snippet(response)}"
                    retry_after = _retry_after_s(response.headers.get("retry-after"))
                else:  # 4xx other than 429: the request itself is wrong; retrying cannot help
                    with self._stats_lock:
                        self.stats["failures"] += 1
                    return _failed(f"HTTP {status}: {_snippet(response)}")
            if attempt < self.max_retries:
                delay = self._backoff(attempt, retry_after)
                log.debug("retrying %s in %.2fs after: %s", path, delay, last_error)
                await asyncio.sleep(delay)
        with self._stats_lock:
            self.stats["failures"] += 1
        return _failed(f"{last_error} (gave up after {self.max_retries + 1} attempts)")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(_MAX_BACKOFF_S, self.retry_backoff_s * (2**attempt))
        delay *= 0.5 + random.random()  # jitter: spread retries of concurrent requests
        if retry_after is not None:
            delay = max(delay, min(retry_after, _MAX_RETRY_AFTER_S))
        return delay

    @staticmethod
    def _parse(response: httpx.Response, path: str, params: SamplingParams) -> Completion:
        try:
            data = response.json()
        except ValueError as exc:
            raise MalformedResponse(f"not JSON ({exc})") from None
        try:
            choice = data["choices"][0]
            if path == "/chat/completions":
                text = choice["message"]["content"]
            else:
                text = choice["text"]
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


def _failed(message: str) -> Completion:
    return Completion(text="", finish_reason="error", error=message)


def _snippet(response: httpx.Response, limit: int = 200) -> str:
    try:
        text = response.text
    except Exception:  # undecodable body
        return "<unreadable body>"
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


def _retry_after_s(value: str | None) -> float | None:
    """Parse a Retry-After header (seconds or an HTTP date) into seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
