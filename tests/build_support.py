"""Helpers shared by the builder's end-to-end tests: the tiny model behind a real
OpenAI-compatible server on 127.0.0.1 (fixtures: import them into a test module), and dotted
config overrides. No fakes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.openai_server import start_openai_server

SERVED = "tiny-llama"
"""The model name the test server answers to."""


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    """The transformers backend on the tiny random model, one prompt per forward pass (so a
    greedy answer never depends on what else is in the batch)."""
    from axolotl_mistake.generation.transformers import TransformersBackend

    return TransformersBackend.load(str(tiny_model_dir), batch_size=1, device="cpu")


@pytest.fixture()
def server(tiny_backend):
    """A real server in front of `tiny_backend`; `.bodies` holds every request it answered."""
    with start_openai_server(tiny_backend, served_model_name=SERVED, max_batch_requests=1) as srv:
        yield srv


def with_overrides(cfg: dict, over: dict) -> dict:
    """Set dotted keys ({"analyses.k": 2}) in a nested build config dict; returns it."""
    for key, value in over.items():
        cur = cfg
        *path, last = key.split(".")
        for p in path:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return cfg


def origin_source(path: Path) -> str:
    """`--redteam` for a JSONL file of {"prompt", "response"} rows: origin (labelled) mistakes."""
    fields = {"instruction": "prompt", "unsafe_answer": "response"}
    return json.dumps([{"kind": "jsonl", "path": str(path), "fields": fields}])


def fast_build_argv(redteam: str, out: Path, *extra: str, mode: str = "origin") -> list[str]:
    """A build's command line that keeps the tiny model's part small: 4-token analyses that no
    quality gate drops (the random model's text would fail them), no helpful rows, no bar."""
    return [
        "--redteam",
        redteam,
        "--helpful",
        "[]",
        "--mistakes.mode",
        mode,
        "--analyses.max_new_tokens",
        "4",
        "--analyses.min_chars",
        "1",
        "--analyses.max_echo_overlap",
        "1.0",
        "--analyses.temperature",
        "1.0",
        "--analyses.stop",
        "[]",
        "--progress",
        "false",
        "--output",
        str(out),
        *extra,
    ]


def stub_manifest(files: dict[str, dict], **fields):
    """A `BuildManifest` of the builder's own schema with fixed provenance (embedded mistakes and
    analyst, Alpaca format, seed 0), for tests that only care about its `files` entries."""
    from axolotl_mistake.manifest import BuildManifest

    provenance = {
        "version": "0.1.0",
        "mistake_source": "embedded",
        "analyst": "embedded",
        "prompt_format": "alpaca",
        "seed": 0,
        "config_hash": "0" * 16,
    }
    return BuildManifest(**{**provenance, **fields}, files=files)
