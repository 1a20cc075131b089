"""Micro-batching for the server: concurrent HTTP requests share one backend `generate()` call.

One worker thread owns the backend (only it ever touches the model); HTTP handlers hand it jobs
and await a future. It must never drop a job silently: each gets its completions or the error,
and a full queue is refused at once (`Busy`) instead of growing without bound.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

from axolotl_mistake.generation.base import Backend, Completion, GenerationRequest, SamplingParams


class Busy(RuntimeError):
    """More prompts are waiting than the server accepts (answered with HTTP 503)."""


@dataclass
class _Job:
    requests: list[GenerationRequest]
    params: SamplingParams
    unseeded: bool = False
    future: Future = field(default_factory=Future)

    def batch_key(self) -> tuple[bool, SamplingParams]:
        """Jobs with equal keys may share a backend call: equal parameters, or, for jobs whose
        seed was drawn at random (the client gave none), equal parameters but for the seed."""
        return self.unseeded, replace(self.params, seed=0) if self.unseeded else self.params


class MicroBatcher:
    """Jobs that arrive within `wait_s` of each other and share sampling parameters go to the
    backend as one `generate()` call of up to `max_requests` prompts; at most `max_pending`
    prompts wait at any time. `calls` counts backend calls.

    Unseeded jobs (`submit(..., unseeded=True)`: their seed is a random draw) batch whatever
    their seeds: the call runs under the first job's seed, with each later job's sample indices
    shifted past those before it, so no two jobs in it draw the same samples."""

    def __init__(
        self,
        backend: Backend,
        max_requests: int = 64,
        wait_s: float = 0.005,
        max_pending: int = 512,
    ):
        self.backend = backend
        self.max_requests = max(1, max_requests)
        self.wait_s = wait_s
        self.max_pending = max(1, max_pending)
        self.calls = 0
        self._pending = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="serve-batcher", daemon=True)
        self._thread.start()

    def submit(
        self, requests: list[GenerationRequest], params: SamplingParams, *, unseeded: bool = False
    ) -> Future:
        """Queue one request's prompts; the future resolves to one completion per prompt.

        Busy (retry later) when the queue is full now; ValueError when the request alone needs
        more than `max_pending` prompts, as retrying could never succeed."""
        if len(requests) > self.max_pending:
            raise ValueError(
                f"{len(requests)} prompts in one request; this batcher queues at most "
                f"{self.max_pending} (--max-pending)"
            )
        with self._lock:
            if self._pending + len(requests) > self.max_pending:
                raise Busy(
                    f"{self._pending} prompts are waiting; this server queues at most "
                    f"{self.max_pending} (--max-pending): retry later"
                )
            self._pending += len(requests)
        job = _Job(list(requests), params, unseeded)
        self._queue.put(job)
        return job.future

    def generate(
        self, requests: list[GenerationRequest], params: SamplingParams
    ) -> list[Completion]:
        """Blocking form of `submit`."""
        return self.submit(requests, params).result()

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
                elif (
                    nxt.batch_key() == job.batch_key()
                    and size + len(nxt.requests) <= self.max_requests
                ):
                    group.append(nxt)
                    size += len(nxt.requests)
                else:
                    held.append(nxt)
            self._run(group)

    def _run(self, group: list[_Job]) -> None:
        flat: list[GenerationRequest] = []
        for job in group:
            if job.unseeded:  # under the first job's seed: keep each job's samples its own
                shift = len(flat)
                flat += [replace(r, sample_index=r.sample_index + shift) for r in job.requests]
            else:
                flat += job.requests
        try:
            self.calls += 1
            results = self.backend.generate(flat, group[0].params)
            if len(results) != len(flat):
                raise RuntimeError(f"backend returned {len(results)} completions for {len(flat)}")
        except BaseException as exc:  # delivered to every waiting request
            for job in group:
                job.future.set_exception(exc)
            return
        finally:
            with self._lock:
                self._pending -= len(flat)
        start = 0
        for job in group:
            job.future.set_result(list(results[start : start + len(job.requests)]))
            start += len(job.requests)
