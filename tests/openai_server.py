"""A real OpenAI-compatible server on 127.0.0.1 for tests, with deterministic fault injection.

`start_openai_server(backend, faults)` runs `axolotl_mistake.serve.OpenAIServer` in a background
thread; a `FaultPlan` answers chosen requests (by 1-based ordinal, or by a seeded rate) with
429, 500, a timeout (sleeping past the client's timeout) or a malformed JSON body. Front a real
model (the transformers backend on tiny_model_dir or the embedded model), never a fake.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from axolotl_mistake.generation.base import Backend
from axolotl_mistake.serve import OpenAIServer

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


class RunningServer(OpenAIServer):
    """An `OpenAIServer` that applies a `FaultPlan`; `.faults_served` lists (ordinal, kind)."""

    def __init__(self, backend: Backend, faults: FaultPlan | None = None, **kwargs):
        super().__init__(backend, **kwargs)
        self.faults = faults or FaultPlan()
        self.faults_served: list[tuple[int, str]] = []
        self._stopping = threading.Event()

    def intercept(self, handler, ordinal: int) -> bool:
        if self.faults.delay_s:
            self._stopping.wait(self.faults.delay_s)
        kind = self.faults.fault_for(ordinal)
        if kind is None:
            return False
        with self._lock:
            self.faults_served.append((ordinal, kind))
        if kind == "429":
            headers = {"Retry-After": self.faults.retry_after} if self.faults.retry_after else {}
            handler.send_json(
                429,
                {"error": {"message": "rate limited (injected)", "type": "rate_limit_error"}},
                headers,
            )
        elif kind == "500":
            handler.send_json(
                500, {"error": {"message": "internal error (injected)", "type": "server_error"}}
            )
        elif kind == "timeout":
            self._stopping.wait(self.faults.timeout_sleep_s)
            handler.close_connection = True
            handler.send_json(504, {"error": {"message": "too late (injected timeout)"}})
        elif kind == "malformed":
            handler.send_raw(200, b'{"id": "cmpl-x", "choices": [{"text": "trunc')
        return True

    def start(self) -> RunningServer:
        if self._thread is None:
            super().start()
        return self

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        super().stop()


def start_openai_server(
    backend: Backend,
    faults: FaultPlan | None = None,
    *,
    api_key: str | None = None,
    served_model_name: str | None = None,
    host: str = "127.0.0.1",
    **kwargs,
) -> RunningServer:
    """Start a real HTTP server on a free port; use it as a context manager to stop it.

    `.base_url` is like "http://127.0.0.1:PORT/v1"; `.requests_seen` counts generation requests.
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
