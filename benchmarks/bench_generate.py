"""Benchmark: the batched transformers backend vs a naive one-prompt-at-a-time generate() loop.

Same model, same prompts (chat-templated), same max_new_tokens, greedy, in one process; prints
generated tokens/s of both and their ratio (target >= 5x). It must never compare numbers from
different processes or machines.

    python benchmarks/bench_generate.py                       # embedded SmolLM2-135M, CPU
    python benchmarks/bench_generate.py --max-new-tokens 32 --n-prompts 64 --batch-size 64
    python benchmarks/bench_generate.py --random-7b-shape     # GPU: random Llama-2-7B shape
    python benchmarks/bench_generate.py --random-7b-shape --tokenizer DIR  # any tokenizer folder
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli_types import check_json_destination, positive_int, target_status

from axolotl_mistake.fileio import write_json_atomic  # after the path above

TOPICS = [
    "photosynthesis",
    "the French revolution",
    "compound interest",
    "black holes",
    "sourdough bread",
    "the water cycle",
    "machine learning",
    "the Roman empire",
    "vaccines",
    "plate tectonics",
    "jazz music",
    "recycling plastic",
    "the stock market",
    "honey bees",
    "solar panels",
    "the human heart",
]
FORMS = [
    "Explain {t} in two sentences.",
    "What is {t}?",
    (
        "Write a short paragraph for a curious twelve-year-old about {t}, including one "
        "surprising fact and one everyday example."
    ),
    (
        "Give me three bullet points summarising the most important ideas behind {t}, and say "
        "which one people most often misunderstand and why."
    ),
]


def make_prompts(n: int) -> list[str]:
    prompts = [form.format(t=topic) for form in FORMS for topic in TOPICS]
    while len(prompts) < n:
        prompts += prompts
    return prompts[:n]


def random_7b_backend(batch_size: int, tokenizer_dir: Path | None = None):
    """A random-weight Llama-2-7B-shaped model on the GPU, with the tokenizer in `tokenizer_dir`
    (default: the embedded model's, converted once; a tokenizer-only folder is enough)."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from axolotl_mistake.generation.transformers import TransformersBackend
    from benchmarks.shapes import LLAMA2_7B, llama_config

    if not torch.cuda.is_available():
        raise SystemExit("--random-7b-shape needs a CUDA GPU")
    if tokenizer_dir is None:
        from axolotl_mistake.models import ensure_embedded_model

        tokenizer_dir = ensure_embedded_model()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = llama_config(LLAMA2_7B, tokenizer)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return TransformersBackend(
        model, tokenizer, model_id="random-llama-2-7b-shape", batch_size=batch_size
    )


def naive_loop(backend, requests, max_new_tokens: int) -> tuple[list[str], int, float]:
    """The baseline: tokenizer + model.generate() for one prompt at a time, no padding."""
    import torch

    model, tokenizer = backend.model, backend.tokenizer
    texts, tokens = [], 0
    sync = torch.cuda.synchronize if backend.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for request in requests:
        _, prompt = backend.encode(request)  # the same ids the batched backend runs
        ids = torch.tensor([prompt], device=backend.device)
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=backend.pad_id,
                eos_token_id=backend.eos_ids,
            )
        new = out[0, ids.shape[1] :].tolist()
        cut = next((k for k, t in enumerate(new) if t in backend.eos_ids), None)
        tokens += len(new) if cut is None else cut + 1
        texts.append(tokenizer.decode(new if cut is None else new[:cut], skip_special_tokens=True))
    sync()
    return texts, tokens, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded", help="HF folder, Hub id or 'embedded'")
    parser.add_argument(
        "--random-7b-shape",
        action="store_true",
        help="random-weight Llama-2-7B-shaped model on the GPU (ignores --model)",
    )
    parser.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="with --random-7b-shape: folder of the tokenizer to use (default: the embedded "
        "model's; no weights needed)",
    )
    parser.add_argument("--max-new-tokens", type=positive_int, default=64)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--n-prompts", type=positive_int, default=64)
    parser.add_argument(
        "--naive-prompts",
        type=positive_int,
        default=None,
        help="time the naive loop on only the first N prompts (tokens/s is a "
        "rate, so this stays comparable; default: all)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.tokenizer is not None and not args.random_7b_shape:
        parser.error("--tokenizer goes with --random-7b-shape (--model brings its own tokenizer)")
    check_json_destination(parser, args.json)

    import torch

    from axolotl_mistake.generation import GenerationRequest, SamplingParams
    from axolotl_mistake.generation.transformers import TransformersBackend

    if args.random_7b_shape:
        backend = random_7b_backend(args.batch_size, args.tokenizer)
    else:
        backend = TransformersBackend.load(
            args.model, batch_size=args.batch_size, device=args.device
        )
    requests = [
        GenerationRequest(messages=({"role": "user", "content": p},))
        for p in make_prompts(args.n_prompts)
    ]
    params = SamplingParams(max_new_tokens=args.max_new_tokens)
    naive_requests = requests[: args.naive_prompts or len(requests)]

    warm = backend.generate(requests[:2], SamplingParams(max_new_tokens=4))  # load kernels once
    assert all(c.ok for c in warm), warm

    naive_texts, naive_tokens, naive_s = naive_loop(backend, naive_requests, args.max_new_tokens)
    print(
        f"(naive loop done: {naive_tokens} tokens in {naive_s:.1f}s; timing the batched "
        "backend now)",
        file=sys.stderr,
        flush=True,
    )

    sync = torch.cuda.synchronize if backend.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    batched = backend.generate(requests, params)
    sync()
    batched_s = time.perf_counter() - start
    failed = [c.error for c in batched if not c.ok]
    if failed:
        print(f"error: {len(failed)} batched requests failed: {failed[0]}", file=sys.stderr)
        return 1
    batched_tokens = sum(c.completion_tokens for c in batched)
    same = sum(a == c.text for a, c in zip(naive_texts, batched))

    naive_tps = naive_tokens / naive_s
    batched_tps = batched_tokens / batched_s
    result = {
        "model": backend.model_id,
        "device": str(backend.device),
        "dtype": str(next(backend.model.parameters()).dtype),
        "torch_threads": torch.get_num_threads(),
        "n_prompts": len(requests),
        "naive_prompts": len(naive_requests),
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "naive": {
            "tokens": naive_tokens,
            "seconds": round(naive_s, 2),
            "tokens_per_s": round(naive_tps, 1),
        },
        "batched": {
            "tokens": batched_tokens,
            "seconds": round(batched_s, 2),
            "tokens_per_s": round(batched_tps, 1),
        },
        "ratio": round(batched_tps / naive_tps, 2),
        "greedy_text_identical": f"{same}/{len(naive_requests)}",
    }
    print(
        f"model {result['model']} on {result['device']} ({result['dtype']}, "
        f"{result['torch_threads']} threads), {len(requests)} prompts, "
        f"max_new_tokens={args.max_new_tokens}, greedy"
    )
    print(
        f"naive loop (1 prompt/call, {len(naive_requests)} prompts): {naive_tokens} tokens in "
        f"{naive_s:.1f}s = {naive_tps:.1f} tok/s"
    )
    print(
        f"batched backend (batch {args.batch_size}, length-sorted): {batched_tokens} tokens in "
        f"{batched_s:.1f}s = {batched_tps:.1f} tok/s"
    )
    print(
        f"ratio batched/naive: {result['ratio']:.2f}x (target >= 5x); greedy texts identical: "
        f"{result['greedy_text_identical']}"
    )
    if args.json:
        write_json_atomic(args.json, result)
    return target_status(result["ratio"] >= 5, f"ratio batched/naive {result['ratio']:.2f}x < 5x")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
