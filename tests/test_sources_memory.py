"""Streaming keeps memory flat: Python-heap peak while reading 600 vs 6,000 JSONL rows.

A light check of the loaders' own allocations (tracemalloc); the RSS benchmark of the select
stage lives with the builder (benchmarks/).
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

from axolotl_mistake.sources import iter_labelled_pairs, iter_rows, parse_source_config


def _write_pku(path: Path, n: int) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i in range(n):
            row = {
                "prompt": f"prompt number {i} " + "x" * 200,
                "response_0": f"answer zero {i} " + "y" * 400,
                "response_1": f"answer one {i} " + "z" * 400,
                "is_response_0_safe": i % 3 == 0,
                "is_response_1_safe": i % 2 == 0,
                "response_0_severity_level": 1,
            }
            fh.write(json.dumps(row) + "\n")


def _peak(cfg, fn) -> tuple[int, int]:
    tracemalloc.start()
    try:
        n = sum(1 for _ in fn(cfg))
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_rows(tmp_path):
    small, big = tmp_path / "small.jsonl.gz", tmp_path / "big.jsonl.gz"
    _write_pku(small, 600)
    _write_pku(big, 6_000)
    for fn in (iter_rows, iter_labelled_pairs):
        n_small, peak_small = _peak(
            parse_source_config({"kind": "pku_saferlhf", "path": str(small)}), fn
        )
        n_big, peak_big = _peak(parse_source_config({"kind": "pku_saferlhf", "path": str(big)}), fn)
        assert n_big > 9 * n_small
        # 10x the rows, (almost) the same peak: nothing accumulates
        assert peak_big < 1.5 * peak_small + 256 * 1024, (peak_small, peak_big)
