"""The model the GPU check's part (a) trains, made on the GPU machine from the carried config and
tokenizer (no weights travel: the embedded model's GGUF package is ~100 MB and the device tool
carries 64 MiB).

    python benchmarks/gpu/prepare_models.py --tokenizer carry/smollm2 --random-model DIR

--random-model DIR: a random-weight model of the embedded model's shape (SmolLM2-135M, from its
  config.json) saved with its tokenizer. Training it checks the mechanics (plugin, probe
  callback, adapter), not learning. Part (c) reads the carried tokenizer itself
  (`bench_generate.py --tokenizer`). Never downloads anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from axolotl_mistake.fileio import write_dir_atomic


def random_model(tokenizer_dir: Path, out: Path, seed: int = 0) -> Path:
    """Save a seeded random model of `tokenizer_dir`'s config.json shape, with its tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(tokenizer_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)

    def save(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    write_dir_atomic(out, save)
    n = sum(p.numel() for p in model.parameters())
    print(f"random model of {config.model_type} shape, {n / 1e6:.1f} M parameters -> {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", type=Path, required=True, help="carried config + tokenizer")
    parser.add_argument("--random-model", type=Path, required=True)
    args = parser.parse_args(argv)
    if not (args.tokenizer / "tokenizer.json").is_file():
        raise SystemExit(f"no tokenizer.json in {args.tokenizer}")
    random_model(args.tokenizer, args.random_model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
