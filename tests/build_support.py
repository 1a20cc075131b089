"""Helpers shared by the builder's end-to-end tests (no fixtures, no fakes)."""

from __future__ import annotations


def with_overrides(cfg: dict, over: dict) -> dict:
    """Set dotted keys ({"analyses.k": 2}) in a nested build config dict; returns it."""
    for key, value in over.items():
        cur = cfg
        *path, last = key.split(".")
        for p in path:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return cfg
