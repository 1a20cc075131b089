"""QLoRA training speed and memory of a recipe's settings on a random Llama-2-7B shape (GPU).

    python benchmarks/gpu/qlora_7b.py --recipe recipes/alpaca7b_mistake.yml --steps 20 --json O.json

Both in one process, on the same 4-bit model (NF4, double quantisation, bf16 compute, sdpa,
gradient checkpointing), batches of random token ids:
  baseline: the settings the 4,200 tok/s reference was measured with (LoRA r=32, alpha 16,
            dropout 0.05, all linear layers, plain torch AdamW, one micro-batch per optimizer
            step, no autocast), 8 steps, median of steps 3-8;
  recipe:   the recipe's own keys: lora_r, lora_alpha, lora_dropout, micro_batch_size x
            sequence_len (every row full, as sample_packing + pad_to_sequence_len give),
            gradient_accumulation_steps, optimizer (paged_adamw_8bit -> bitsandbytes
            PagedAdamW8bit), learning_rate, weight_decay, bf16 autocast, tf32; --steps
            micro-batches, the first optimizer step excluded from the timing.
Reports tokens/s (median micro-step and whole window), peak allocated/reserved GiB and the
recipe/baseline ratio. The model is random: loss values mean nothing, speed and memory do.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from axolotl_mistake.fileio import write_json_atomic
from benchmarks.shapes import LLAMA2_7B, TINY, llama_config


def scratch_dir() -> Path:
    """A RAM-backed folder for the 13 GB checkpoint when there is room, else the temp dir."""
    import shutil

    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 20 * 2**30:
        return Path(tempfile.mkdtemp(prefix="m7b-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="m7b-"))


def optimizer_for(name: str, params, lr: float, weight_decay: float):
    import torch

    if name in ("adamw_torch", "adamw_torch_fused"):
        return torch.optim.AdamW(
            params, lr=lr, weight_decay=weight_decay, fused=name.endswith("fused")
        )
    import bitsandbytes as bnb

    table = {
        "paged_adamw_8bit": bnb.optim.PagedAdamW8bit,
        "adamw_bnb_8bit": bnb.optim.AdamW8bit,
        "paged_adamw_32bit": bnb.optim.PagedAdamW32bit,
    }
    if name not in table:
        raise SystemExit(f"optimizer {name!r} not mapped in qlora_7b.py")
    return table[name](params, lr=lr, weight_decay=weight_decay)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def train_phase(
    model,
    *,
    r,
    alpha,
    dropout,
    optimizer,
    lr,
    weight_decay,
    micro_batch,
    seq,
    accumulation,
    steps,
    autocast,
    skip,
    device="cuda",
) -> tuple[dict, object]:
    """Train a fresh LoRA on `model` for `steps` micro-steps; return (numbers, the bare model)."""
    import torch
    from peft import LoraConfig, get_peft_model

    if steps <= skip:
        raise SystemExit(f"{steps} steps leave none timed after skipping {skip}: give more steps")
    lora = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    opt = optimizer_for(
        optimizer, [p for p in peft_model.parameters() if p.requires_grad], lr, weight_decay
    )
    peft_model.train()
    gen = torch.Generator(device="cpu").manual_seed(0)
    vocab = model.config.vocab_size
    x = torch.randint(min(100, vocab - 1), vocab - 1, (micro_batch, seq), generator=gen).to(device)
    _sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for step in range(steps):
        _sync(device)
        t = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            loss = peft_model(input_ids=x, labels=x).loss / accumulation
        loss.backward()
        if (step + 1) % accumulation == 0:
            opt.step()
            opt.zero_grad(set_to_none=True)
        _sync(device)
        times.append(time.perf_counter() - t)
        losses.append(round(float(loss.detach()) * accumulation, 4))
        print(f"step {step}: {times[-1]:.3f} s, loss {losses[-1]}", flush=True)
    timed = times[skip:]
    tokens = micro_batch * seq
    result = {
        "lora_r": r,
        "lora_alpha": alpha,
        "lora_dropout": dropout,
        "optimizer": optimizer,
        "micro_batch": micro_batch,
        "sequence_len": seq,
        "gradient_accumulation": accumulation,
        "bf16_autocast": autocast,
        "trainable_params": trainable,
        "micro_steps": steps,
        "timed_micro_steps": len(timed),
        "step_s_median": round(statistics.median(timed), 4),
        "tokens_per_s": round(tokens / statistics.median(timed), 1),
        "tokens_per_s_window": round(tokens * len(timed) / sum(timed), 1),
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if device == "cuda"
        else None,
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2)
        if device == "cuda"
        else None,
        "losses": losses,
    }
    del opt
    base = peft_model.unload()  # drop the LoRA layers, keep the 4-bit base for the next phase
    del peft_model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return result, base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20, help="recipe micro-steps")
    parser.add_argument("--baseline-steps", type=int, default=8)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument(
        "--smoke-cpu",
        action="store_true",
        help="tiny shape, CPU, short rows: checks the code path, measures nothing",
    )
    args = parser.parse_args(argv)
    device = "cpu" if args.smoke_cpu else "cuda"

    import torch
    import yaml

    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("qlora_7b.py needs a CUDA GPU (or --smoke-cpu)")
    recipe = yaml.safe_load(args.recipe.read_text(encoding="utf-8"))
    if recipe.get("adapter") != "qlora" or not recipe.get("load_in_4bit"):
        raise SystemExit(f"{args.recipe}: not a QLoRA recipe (adapter: qlora, load_in_4bit: true)")
    import bitsandbytes
    import peft
    import transformers
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaForCausalLM

    out: dict = {
        "recipe": args.recipe.name,
        "smoke_cpu": args.smoke_cpu,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "bitsandbytes": bitsandbytes.__version__,
        "model": "tiny random Llama (smoke)" if args.smoke_cpu else "random Llama-2-7B shape",
    }
    t = time.time()
    cfg = llama_config(TINY if args.smoke_cpu else LLAMA2_7B)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    out["params"] = sum(p.numel() for p in model.parameters())
    scratch = scratch_dir()
    model.save_pretrained(scratch, safe_serialization=True, max_shard_size="5GB")
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    out["init_save_s"] = round(time.time() - t, 1)
    t = time.time()
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        scratch,
        quantization_config=quant,
        dtype=torch.bfloat16,
        device_map={"": 0 if device == "cuda" else "cpu"},
        attn_implementation="sdpa",
    )
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    out["load_4bit_s"] = round(time.time() - t, 1)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    write_json_atomic(args.json, out)

    seq_cap = 64 if args.smoke_cpu else None
    print("baseline (the reference's settings)", flush=True)
    out["baseline"], model = train_phase(
        model,
        r=32,
        alpha=16,
        dropout=0.05,
        optimizer="adamw_torch",
        lr=2e-4,
        weight_decay=0.01,
        micro_batch=4,
        seq=seq_cap or 2048,
        accumulation=1,
        steps=args.baseline_steps,
        autocast=False,
        skip=2,
        device=device,
    )
    write_json_atomic(args.json, out)

    print(f"recipe ({args.recipe.name})", flush=True)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(recipe.get("tf32"))
    accumulation = int(recipe.get("gradient_accumulation_steps", 1))
    out["recipe_settings"], model = train_phase(
        model,
        r=int(recipe["lora_r"]),
        alpha=int(recipe["lora_alpha"]),
        dropout=float(recipe.get("lora_dropout", 0.0)),
        optimizer=recipe.get("optimizer", "adamw_torch"),
        lr=float(recipe.get("learning_rate", 2e-4)),
        weight_decay=float(recipe.get("weight_decay", 0.0)),
        micro_batch=int(recipe["micro_batch_size"]),
        seq=seq_cap or int(recipe["sequence_len"]),
        accumulation=accumulation,
        steps=args.steps,
        autocast=bool(recipe.get("bf16")),
        skip=accumulation,
        device=device,
    )
    out["recipe_vs_baseline_tokens_per_s"] = round(
        out["recipe_settings"]["tokens_per_s"] / out["baseline"]["tokens_per_s"], 3
    )
    write_json_atomic(args.json, out)
    print(json.dumps({k: v for k, v in out.items() if k not in ("baseline", "recipe_settings")}))
    for phase in ("baseline", "recipe_settings"):
        r = out[phase]
        print(
            f"{phase}: {r['tokens_per_s']} tok/s (median step {r['step_s_median']} s), "
            f"peak {r['peak_allocated_gib']} GiB allocated"
            + (" [smoke run on CPU: not a measurement]" if args.smoke_cpu else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
