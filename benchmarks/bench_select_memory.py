"""Peak RSS of the builder's read + select stage on 10k vs 100k synthetic rows (target <= 1.2x).

Each size runs in a fresh subprocess (so one run's heap cannot hide the other's) that streams a
synthetic JSONL file through the real jsonl loader and `select` (dedup, sample N=64), then
reports its peak RSS (ru_maxrss). Prints both and the ratio.

    python benchmarks/bench_select_memory.py [--small 10000] [--large 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from cli_types import target_status

REPO = Path(__file__).resolve().parents[1]
WORDS = [
    "how",
    "can",
    "i",
    "make",
    "a",
    "the",
    "to",
    "find",
    "get",
    "build",
    "open",
    "safe",
    "tell",
    "me",
    "about",
    "why",
    "what",
    "when",
    "where",
    "someone",
    "people",
    "money",
    "house",
    "car",
    "phone",
    "computer",
    "water",
    "fire",
    "food",
    "school",
    "work",
]


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30)))
            answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 80)))
            fh.write(json.dumps({"prompt": f"{text} #{i}", "response": answer}) + "\n")


def child(path: str) -> None:
    """Run read + select on `path`; print peak RSS (KiB) before and after."""
    from dataset_builders.config import BuildConfig
    from dataset_builders.selection import read_and_select

    cfg = BuildConfig.model_validate(
        {
            "redteam": [
                {
                    "kind": "jsonl",
                    "path": path,
                    "fields": {"instruction": "prompt", "unsafe_answer": "response"},
                }
            ],
            "helpful": [],
            "mistakes": {"mode": "origin"},
            "select": {"redteam_n": 64},
        }
    )
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = read_and_select(cfg, None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "base_kib": base,
                "peak_kib": peak,
                "read": result.counts["redteam.read"],
                "selected": len(result.records),
            }
        )
    )


def measure(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for n in (args.small, args.large):
            path = Path(tmp) / f"rows_{n}.jsonl"
            write_rows(path, n)
            results[n] = measure(path)
            r = results[n]
            print(
                f"{n:>7} rows: peak RSS {r['peak_kib'] / 1024:.1f} MiB "
                f"(after imports {r['base_kib'] / 1024:.1f} MiB; read {r['read']}, selected {r['selected']})"
            )
    ratio = results[args.large]["peak_kib"] / results[args.small]["peak_kib"]
    print(f"peak RSS ratio {args.large}/{args.small} rows: {ratio:.3f}x (target <= 1.2x)")
    return target_status(ratio <= 1.2, f"peak RSS ratio {ratio:.3f}x > 1.2x")


if __name__ == "__main__":
    raise SystemExit(main())
