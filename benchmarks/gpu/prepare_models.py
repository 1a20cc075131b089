"""Models the GPU check needs, made on the GPU machine from the carried tokenizer (no weights
travel: the embedded model's GGUF package is ~100 MB and the device tool carries 64 MiB).

    python benchmarks/gpu/prepare_models.py --tokenizer carry/smollm2 \
        --random-model DIR [--tokenizer-cache CACHE]

--random-model DIR: a random-weight model of the embedded model's shape (SmolLM2-135M, from its
  config.json) saved with its tokenizer: the base of part (a). Training it checks the mechanics
  (plugin, probe callback, adapter), not learning.
--tokenizer-cache CACHE: CACHE/models/<embedded name>/ holding the embedded model's config and
  tokenizer, marked complete, for `AXOLOTL_MISTAKE_CACHE=CACHE`: `bench_generate.py
  --random-7b-shape` reads only the tokenizer of the embedded model. There are no weights in it,
  so anything that tried to load the embedded weights from it would fail loudly.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "generation_config.json",
)


def random_model(tokenizer_dir: Path, out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(tokenizer_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    n = sum(p.numel() for p in model.parameters())
    print(f"random model of {config.model_type} shape, {n / 1e6:.1f} M parameters -> {out}")
    return out


def tokenizer_cache(tokenizer_dir: Path, cache: Path) -> Path:
    from axolotl_mistake import models

    folder = cache / "models" / models.EMBEDDED_MODEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", *TOKENIZER_FILES):
        if (tokenizer_dir / name).is_file():
            shutil.copy2(tokenizer_dir / name, folder / name)
    marker = getattr(models, "_MARKER", None)
    if not marker:
        raise SystemExit("axolotl_mistake.models has no _MARKER: update prepare_models.py")
    (folder / marker).write_text(
        f"{models.EMBEDDED_MODEL_ID}\ntokenizer only (GPU check): no weights in this folder\n"
    )
    print(f"tokenizer-only embedded folder -> {folder}")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", type=Path, required=True, help="carried config + tokenizer")
    parser.add_argument("--random-model", type=Path, default=None)
    parser.add_argument("--tokenizer-cache", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (args.tokenizer / "tokenizer.json").is_file():
        raise SystemExit(f"no tokenizer.json in {args.tokenizer}")
    if args.random_model:
        args.random_model.parent.mkdir(parents=True, exist_ok=True)
        random_model(args.tokenizer, args.random_model)
    if args.tokenizer_cache:
        tokenizer_cache(args.tokenizer, args.tokenizer_cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
