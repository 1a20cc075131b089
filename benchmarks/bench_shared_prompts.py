"""Benchmark: k samples per prompt, with and without one shared prompt pass per distinct prompt.

The builder draws k analyses of each answer (and k guided mistakes of each instruction) from
one prompt, with a seeded sample per row. The transformers backend runs the prompt pass once
per distinct prompt in a batch and copies its key/value cache to the prompt's rows
(`TransformersBackend.share_prefixes`). This times both paths on the same model, requests and
sampling settings, in one process, and counts the completions that are identical (they must
all be). Prompts: the label-anchored guided analysis (template (b)/(b') and its verdict
sentence) of the shipped probe pairs, as `analyses.anchored` builds them.

    python benchmarks/bench_shared_prompts.py                  # embedded SmolLM2-135M, CPU
    python benchmarks/bench_shared_prompts.py --k 13 --pairs 20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli_types import check_json_destination, positive_int, target_status

from axolotl_mistake import templates  # after the path above
from axolotl_mistake.fileio import write_json_atomic

TARGET = 1.3  # the shared path's speed-up on CPU, k 7 (measured 1.63x; 2.7x on PKU-length prompts)


def analysis_prompts(n: int) -> list[str]:
    """The anchored guided-analysis prompts of the first `n` shipped probe pairs."""
    text = resources.files("axolotl_mistake.data").joinpath("probe_pairs.jsonl").read_text()
    pairs = [json.loads(line) for line in text.splitlines() if line.strip()][:n]
    return [
        templates.guided_analysis_prompt(p["question"], p["answer"], harmful=p["harmful"])
        + templates.analysis_verdict(p["harmful"])
        + " "
        for p in pairs
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded", help="HF folder, Hub id or 'embedded'")
    parser.add_argument("--k", type=positive_int, default=7, help="samples per prompt")
    parser.add_argument("--pairs", type=positive_int, default=16, help="probe pairs (prompts)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=32)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    check_json_destination(parser, args.json)

    import torch

    from axolotl_mistake.generation import GenerationRequest, SamplingParams
    from axolotl_mistake.generation.transformers import TransformersBackend

    shared = TransformersBackend.load(args.model, batch_size=args.batch_size, device=args.device)
    plain = TransformersBackend(
        shared.model,
        shared.tokenizer,
        model_id=shared.model_id,
        batch_size=args.batch_size,
        share_prefixes=False,
    )
    if not shared.share_prefixes:
        raise SystemExit(f"{shared.model_id}: this model cannot take a shared prompt cache")
    prompts = analysis_prompts(args.pairs)
    requests = [GenerationRequest(prompt=p, sample_index=j) for p in prompts for j in range(args.k)]
    params = SamplingParams(
        max_new_tokens=args.max_new_tokens, temperature=0.7, top_p=0.95, stop=("###",), seed=0
    )
    shared.generate(requests[:2], SamplingParams(max_new_tokens=2))  # load kernels once

    sync = torch.cuda.synchronize if shared.device.type == "cuda" else (lambda: None)
    seconds = {}
    outputs = {}
    for name, backend in (("plain", plain), ("shared", shared)):
        sync()
        start = time.perf_counter()
        outputs[name] = backend.generate(requests, params)
        sync()
        seconds[name] = time.perf_counter() - start
        failed = [c.error for c in outputs[name] if not c.ok]
        if failed:
            print(f"error: {len(failed)} {name} requests failed: {failed[0]}", file=sys.stderr)
            return 1
    same = sum(
        (a.text, a.completion_tokens) == (b.text, b.completion_tokens)
        for a, b in zip(outputs["plain"], outputs["shared"])
    )
    ratio = seconds["plain"] / seconds["shared"]
    result = {
        "model": shared.model_id,
        "device": str(shared.device),
        "torch_threads": torch.get_num_threads(),
        "prompts": len(prompts),
        "k": args.k,
        "requests": len(requests),
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "prompt_tokens_mean": round(
            sum(c.prompt_tokens for c in outputs["shared"]) / len(requests), 1
        ),
        "seconds": {name: round(s, 2) for name, s in seconds.items()},
        "ratio": round(ratio, 2),
        "identical": f"{same}/{len(requests)}",
    }
    print(
        f"model {result['model']} on {result['device']} ({result['torch_threads']} threads): "
        f"{len(prompts)} prompts x k {args.k} = {len(requests)} samples, "
        f"{result['prompt_tokens_mean']} prompt tokens each, batch {args.batch_size}"
    )
    print(
        f"plain {seconds['plain']:.1f}s, shared prompt pass {seconds['shared']:.1f}s: "
        f"{ratio:.2f}x (target >= {TARGET}x); identical completions {result['identical']}"
    )
    if args.json:
        write_json_atomic(args.json, result)
    if same != len(requests):
        print(f"error: only {result['identical']} completions identical", file=sys.stderr)
        return 1
    return target_status(ratio >= TARGET, f"shared/plain speed-up {ratio:.2f}x < {TARGET}x")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
