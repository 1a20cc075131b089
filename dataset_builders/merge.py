"""`python -m dataset_builders.merge OUT_A OUT_B ... --output MERGED`: combine shard outputs.

Emits the union of the shards' pools with the same emit stage a single run uses, so the JSONL
files are byte-identical to an unsharded run; the manifest's counts are summed. Refuses shards
of different configs, an incomplete/duplicated shard set, and an output that is one of the
inputs (or inside one) or an existing folder this tool did not make (exit 2); stops with exit 1
when the union holds no training rows (a shard may finish empty, the union may not). Never
calls a model.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from axolotl_mistake import configio
from axolotl_mistake.errors import BuildFailed, FieldError, InputError
from axolotl_mistake.fileio import FolderHold
from axolotl_mistake.manifest import MANIFEST_NAME, BuildManifest, read_manifest, sha256_bytes
from dataset_builders.config import BuildConfig
from dataset_builders.output_guard import POOL_FILE, STATE_DIR, check_output
from dataset_builders.pipeline import (
    empty_baseline_files,
    empty_training_files,
    open_output,
    retire_previous,
    write_outputs,
)
from dataset_builders.provenance import analysis_classes
from dataset_builders.stages import emit as emit_stage
from dataset_builders.stages.emit import Pool

USAGE = (
    "usage: python -m dataset_builders.merge SHARD_DIR [SHARD_DIR ...] --output MERGED_DIR "
    "[--overwrite]"
)


class MergeArgs(BaseModel):
    """The merge command's options (the shard folders are positional)."""

    model_config = ConfigDict(extra="forbid")

    output: str = Field(
        description="Folder of the merged output (a new folder, or one this tool made)."
    )
    overwrite: bool = Field(
        False, description="Write into an existing folder this tool did not make."
    )


def _read_manifest(folder: Path) -> BuildManifest:
    manifest = read_manifest(folder)
    if manifest is None:
        raise InputError(
            "not a build output (no manifest.json made by axolotl-mistake)",
            file=str(folder / MANIFEST_NAME),
        )
    return manifest


def _read_pool(folder: Path, manifest: BuildManifest) -> Pool:
    """The shard's pool, refused when it is not the one its manifest recorded (a later build
    in that folder that died or failed after writing it)."""
    path = folder / STATE_DIR / POOL_FILE
    if not path.is_file():
        raise InputError("shard pool missing (was the build finished?)", file=str(path))
    blob = path.read_bytes()
    if manifest.pool_sha256 is not None and sha256_bytes(blob) != manifest.pool_sha256:
        raise InputError(
            f"the shard pool does not match {MANIFEST_NAME} beside it (a later build in this "
            "folder stopped after writing it?); rebuild the shard",
            file=str(path),
        )
    text = _decode_pool(blob, path)
    return Pool.from_lines(text.split("\n"), file=str(path))  # not splitlines: U+2028 in text


def _decode_pool(blob: bytes, path: Path) -> str:
    """The pool's text; an InputError naming the line of a bad byte (a manifest without
    `pool_sha256`, as older builds wrote, lets a corrupt pool get this far)."""
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"shard pool is not UTF-8 text (byte {blob[exc.start]:#04x}); rebuild the shard",
            file=str(path),
            line=blob.count(b"\n", 0, exc.start) + 1,
        ) from None


def merge_counts(a: dict, b: dict) -> dict:
    """Sum nested count dicts (numbers add, dicts recurse, anything else: the first kept)."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict):
            out[key] = merge_counts(out.get(key, {}) or {}, value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = out.get(key, 0) + value
        else:
            out.setdefault(key, value)
    return out


def shard_pair(folder: Path, manifest: BuildManifest) -> tuple[int, int]:
    """The manifest's (index, count), checked: a hand-edited or foreign `shard` must be refused
    naming its manifest, not crash the set check or pass it with a shard no build makes."""
    file = str(folder / MANIFEST_NAME)
    values: dict[str, int] = {}
    for key in ("count", "index"):
        value = manifest.shard.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            why = f"must be an integer, got {value!r}" if key in manifest.shard else "is missing"
            raise InputError(f"shard {key} {why}", file=file, field=f"shard.{key}")
        values[key] = value
    index, count = values["index"], values["count"]
    if count < 1:
        raise InputError(f"shard count must be >= 1, got {count!r}", file=file, field="shard.count")
    if not 0 <= index < count:
        raise InputError(
            f"shard index {index!r} cannot exist in a build of {count!r} shards (0 <= index < count)",
            file=file,
            field="shard.index",
        )
    return index, count


def check_shard_set(folders: list[Path], manifests: list[BuildManifest]) -> None:
    """One build's shards, each once, all of them; else an InputError naming the manifest."""
    first = manifests[0]
    for folder, m in zip(folders[1:], manifests[1:]):
        if m.config_hash != first.config_hash:
            raise InputError(
                f"config differs from {folders[0]} (config_hash {m.config_hash[:12]} vs "
                f"{first.config_hash[:12]}); only shards of one build can be merged",
                file=str(folder / MANIFEST_NAME),
                field="config_hash",
            )
    pairs = [shard_pair(f, m) for f, m in zip(folders, manifests, strict=True)]
    count = pairs[0][1]
    seen: dict[int, Path] = {}
    for folder, (index, shard_count) in zip(folders, pairs, strict=True):
        if shard_count != count:
            raise InputError(
                f"shard count {shard_count!r} differs from {count!r} in {folders[0]}",
                file=str(folder / MANIFEST_NAME),
                field="shard.count",
            )
        if index in seen:
            raise InputError(
                f"shard {index}/{count} given twice (also {seen[index]})",
                file=str(folder / MANIFEST_NAME),
                field="shard.index",
            )
        seen[index] = folder
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        raise InputError(
            f"shards {', '.join(f'{i}/{count}' for i in missing)} are missing; give all {count}",
            field="shard",
        )


def build_config(folder: Path, manifest: BuildManifest, output: Path) -> BuildConfig:
    """The config the shards were built with, for the merged output; an InputError naming the
    key when this version of the builder no longer accepts it (the shards are another's)."""
    try:
        return BuildConfig.model_validate({**manifest.config, "output": str(output), "shard": None})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        cause = (err.get("ctx") or {}).get("error")
        key = cause.field if isinstance(cause, FieldError) else ".".join(map(str, err["loc"]))
        raise InputError(
            f"the recorded config is not valid here ({err['msg']}): the shards were written by "
            "another version of the builder; rebuild them with this one",
            file=str(folder / MANIFEST_NAME),
            field=f"config.{key}" if key else "config",
        ) from None


def merge(folders: list[Path], output: Path, *, overwrite: bool = False) -> BuildManifest:
    """Merge shard folders into `output`; returns the merged manifest. The output folder is
    held (`FolderHold`, as a build holds it) from the start when it exists, else from its
    creation: a build or another merge into it stops instead of interleaving their files."""
    if not folders:
        raise InputError(USAGE)
    check_output(output, overwrite=overwrite, inputs=folders)
    with ExitStack() as held:
        hold = FolderHold(held, output, who="merge", field="output")
        return _merge(folders, output, hold)


def _merge(folders: list[Path], output: Path, hold: FolderHold) -> BuildManifest:
    manifests = [_read_manifest(f) for f in folders]
    check_shard_set(folders, manifests)
    first = manifests[0]
    cfg = build_config(folders[0], first, output)
    pool = Pool()
    for folder, manifest in zip(folders, manifests, strict=True):
        pool = pool.merged(_read_pool(folder, manifest))
    files, emitted = emit_stage.emit(pool, cfg.emit, seed=cfg.seed, balanced=cfg.analyses.balanced)
    # a shard may finish empty (its slice held no usable rows); the union may not
    empty = empty_training_files(files)
    if empty:
        raise BuildFailed(
            f"no training rows: {', '.join(empty)} would be empty in the union of the "
            f"{len(folders)} shards (analyses kept per shard: "
            + ", ".join(
                f"{m.shard.get('index')}/{m.shard.get('count')}: "
                f"{m.counts.get('analyses', {}).get('kept', 0)}"
                for m in manifests
            )
            + "). Nothing was written."
        )
    counts: dict = {"select": first.counts["select"]}
    timings: dict = {}
    calls: dict = {}
    failures: list = []
    for m in manifests:
        stage_counts = {k: v for k, v in m.counts.items() if k not in ("select", "emit")}
        counts = merge_counts(counts, stage_counts)
        timings = merge_counts(timings, m.timings_s)
        calls = merge_counts(calls, m.calls)
        failures.extend(m.failed_calls)
    counts["emit"] = dict(sorted(emitted.counts.items()))
    datasets_yaml = emit_stage.datasets_block(files, str(output).rstrip("/"))
    open_output(output, hold)
    previous = retire_previous(output)
    pool_sha256 = pool.save(output / STATE_DIR / POOL_FILE)
    manifest = first.model_copy(
        update={
            "files": {name: spec.entry() for name, spec in files.items()},
            "pool_sha256": pool_sha256,
            "shard": {"index": 0, "count": 1, "merged_from": [str(f) for f in folders]},
            "config": cfg.model_dump(mode="json"),
            "counts": counts,
            "analysis_classes": analysis_classes(counts),
            "calls": calls,
            "failed_calls": failures,
            "timings_s": timings,
        }
    )
    write_outputs(output, files, manifest, datasets_yaml, previous)
    return manifest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cli = configio.parse_command_line(argv, MergeArgs, config_flag=False, positionals=True)
        if cli.help:
            print(USAGE)
            print(__doc__)
            return 0
        if "output" not in cli.overrides:
            raise InputError(f"--output is required; {USAGE}", field="output")
        args = configio.validate(MergeArgs, {}, overrides=cli)
        folders = [Path(p) for p in cli.positionals]
        output = Path(args.output)
        manifest = merge(folders, output, overwrite=args.overwrite)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BuildFailed as exc:
        print(f"error: merge failed: {exc}", file=sys.stderr)
        return 1
    rows = ", ".join(f"{k}: {v.rows}" for k, v in manifest.files.items())
    print(f"merged {len(folders)} shards into {output} ({rows})")
    for name in empty_baseline_files(manifest.files):
        print(f"warning: {name} was asked for but holds no rows in the union", file=sys.stderr)
    if manifest.failed_calls:  # the shards' own, within their budget: said as a build says it
        print(
            f"warning: {len(manifest.failed_calls)} model calls of the shards failed (listed "
            "in manifest.json 'failed_calls'); rerun those shards' builds to retry them, then "
            "merge again",
            file=sys.stderr,
        )
    print(emit_stage.datasets_block_from_manifest(manifest.files, str(output).rstrip("/")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
