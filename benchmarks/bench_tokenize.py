"""Tokenization throughput: `axolotl_mistake.unguided_analysis` vs Axolotl's `alpaca` type.

Both strategies run through Axolotl's own `TokenizedPromptDataset` (the path `axolotl
preprocess` takes) on the same rows in one process. The alpaca rows carry the rendered
analysis body as their instruction, so both tokenize exactly the same text. Target: ratio >= 0.9.

    python benchmarks/bench_tokenize.py [--rows 5000] [--repeats 3] [--data PATH.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, as a script

from cli_types import positive_int, target_status

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "alpaca" / "alpaca_5000_pr152.jsonl"
FIXTURE = REPO / "tests" / "fixtures" / "analysis_rows.jsonl"


def critique_of(answer: str, instruction: str, extra: str = "") -> str:
    """A synthetic critique as long as the answer: its words backwards. The strategy refuses a
    critique that copies its answer (`axolotl_mistake.copying`), and a palindromic stretch read
    backwards is a copy: such a row gets a short critique instead."""
    from axolotl_mistake.copying import copy_problem
    from axolotl_mistake.templates import question

    context = question(instruction, extra)
    backwards = "The answer, from its last word back: " + " ".join(reversed(answer.split()))
    if copy_problem(backwards, answer, context) is None:
        return backwards
    return f"The answer runs to {len(answer.split())} words."


def analysis_rows(n: int, data: Path | None) -> list[dict]:
    """n analysis rows: Alpaca rows of `data` (answer as `bad`) cycled, or with no `data` the
    test fixture cycled. A ValueError names the file (and line) that gives no rows."""
    if data is None:
        rows = [dict({"input": ""}, **json.loads(x)) for x in FIXTURE.read_text().splitlines()]
        return [rows[i % len(rows)] for i in range(n)]
    rows: list[dict] = []
    with data.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                row = {
                    "instruction": str(r["instruction"]),
                    "input": str(r["input"]),
                    "bad": str(r["output"]),
                    "critique": critique_of(
                        str(r["output"]), str(r["instruction"]), str(r["input"])
                    ),
                }
            except (ValueError, KeyError, TypeError):
                raise ValueError(
                    f"{data}:{number}: not an Alpaca row (a JSON object with instruction, input, "
                    "output)"
                ) from None
            if row["bad"].strip():
                rows.append(row)
    if not rows:
        raise ValueError(f"{data}: no Alpaca row with a non-empty output")
    return [rows[i % len(rows)] for i in range(n)]


def as_alpaca(rows: list[dict]) -> list[dict]:
    """The same text as Alpaca rows: the rendered analysis body becomes the instruction."""
    from axolotl_mistake.templates import unguided_analysis_body

    return [
        {
            "instruction": unguided_analysis_body(r["instruction"], r["bad"], r["input"]),
            "input": "",
            "output": r["critique"],
        }
        for r in rows
    ]


def rows_per_second(type_name: str, rows: list[dict], tokenizer, repeats: int) -> tuple[float, int]:
    """Best-of-`repeats` rows/s through Axolotl's dataset wrapper; also total tokens."""
    from axolotl.utils.data.wrappers import get_dataset_wrapper
    from axolotl.utils.dict import DictDefault
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()
    cfg = DictDefault(
        {
            "sequence_len": 4096,
            "train_on_inputs": False,
            "dataset_num_proc": 1,
            "dataset_keep_in_memory": True,
        }
    )
    ds_cfg = DictDefault({"path": "rows.jsonl", "type": type_name})
    best, tokens = float("inf"), 0
    for _ in range(repeats):
        table = Dataset.from_list(rows)
        start = time.perf_counter()
        wrapped, _ = get_dataset_wrapper(ds_cfg, tokenizer, cfg, type_name, table)
        best = min(best, time.perf_counter() - start)
        tokens = sum(len(x) for x in wrapped["input_ids"])
    return len(rows) / best, tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=positive_int, default=5000)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"Alpaca JSONL rows to tokenize (default: {DEFAULT_DATA} if it exists, else the "
        "test fixture)",
    )
    args = parser.parse_args(argv)
    if args.data is not None and not args.data.is_file():
        problem = "is not a file" if args.data.exists() else "file not found"
        parser.error(f"argument --data: {args.data}: {problem}")
    data = args.data or (DEFAULT_DATA if DEFAULT_DATA.is_file() else None)
    try:
        rows = analysis_rows(args.rows, data)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    from transformers import AutoTokenizer

    from axolotl_mistake.models import ensure_embedded_model

    tokenizer = AutoTokenizer.from_pretrained(ensure_embedded_model())
    ours, ours_tokens = rows_per_second(
        "axolotl_mistake.unguided_analysis", rows, tokenizer, args.repeats
    )
    base, base_tokens = rows_per_second("alpaca", as_alpaca(rows), tokenizer, args.repeats)
    print(f"rows: {len(rows)}  tokens: ours {ours_tokens}  alpaca {base_tokens}")
    print(f"axolotl_mistake.unguided_analysis: {ours:,.0f} rows/s")
    print(f"axolotl alpaca (same text):        {base:,.0f} rows/s")
    print(f"ratio (ours / alpaca): {ours / base:.2f}  (target >= 0.9)")
    return target_status(ours / base >= 0.9, f"ratio {ours / base:.2f} < 0.9")


if __name__ == "__main__":
    raise SystemExit(main())
