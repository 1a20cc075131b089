"""`python -m dataset_builders.merge OUT_A OUT_B ... --output MERGED`: combine shard outputs.

Emits the union of the shards' pools with the same emit stage a single run uses, so the JSONL
files are byte-identical to an unsharded run; the manifest's counts are summed. Refuses shards
of different configs or an incomplete/duplicated shard set. Never calls a model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dataset_builders.config import BuildConfig
from axolotl_mistake.errors import InputError
from dataset_builders.manifest import MANIFEST, PRODUCED_BY, merge_counts
from dataset_builders.pipeline import POOL_FILE, STATE_DIR, analysis_classes, write_outputs
from dataset_builders.fileio import write_atomic
from dataset_builders.stages import emit as emit_stage
from dataset_builders.stages.emit import Pool

USAGE = "usage: python -m dataset_builders.merge SHARD_DIR [SHARD_DIR ...] --output MERGED_DIR"


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError("not a build output (manifest.json missing)", file=str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(f"manifest is not valid JSON: {exc}", file=str(path), line=line) from None
    if data.get("produced_by") != PRODUCED_BY:
        raise InputError(f"not produced by {PRODUCED_BY}", file=str(path), field="produced_by")
    return data


def _read_pool(folder: Path) -> Pool:
    path = folder / STATE_DIR / POOL_FILE
    if not path.is_file():
        raise InputError("shard pool missing (was the build finished?)", file=str(path))
    with path.open(encoding="utf-8") as fh:
        return Pool.from_lines(fh)


def merge(folders: list[Path], output: Path) -> dict:
    """Merge shard folders into `output`; returns the merged manifest."""
    if not folders:
        raise InputError(USAGE)
    manifests = [_read_manifest(f) for f in folders]
    first = manifests[0]
    for folder, m in zip(folders[1:], manifests[1:]):
        if m.get("config_hash") != first.get("config_hash"):
            raise InputError(
                f"config differs from {folders[0]} (config_hash {m.get('config_hash', '')[:12]} vs "
                f"{first.get('config_hash', '')[:12]}); only shards of one build can be merged",
                file=str(folder / MANIFEST),
                field="config_hash",
            )
    count = first["shard"]["count"]
    seen: dict[int, Path] = {}
    for folder, m in zip(folders, manifests):
        shard = m.get("shard", {})
        if shard.get("count") != count:
            raise InputError(
                f"shard count {shard.get('count')} differs from {count}",
                file=str(folder / MANIFEST), field="shard.count",
            )
        if shard.get("index") in seen:
            raise InputError(
                f"shard {shard.get('index')}/{count} given twice (also {seen[shard['index']]})",
                file=str(folder / MANIFEST), field="shard.index",
            )
        seen[shard.get("index")] = folder
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        raise InputError(
            f"shards {', '.join(f'{i}/{count}' for i in missing)} are missing; give all {count}",
            field="shard",
        )
    cfg = BuildConfig.model_validate({**first["config"], "output": str(output), "shard": None})
    pool = Pool()
    for folder in folders:
        pool = pool.merged(_read_pool(folder))
    files, emitted = emit_stage.emit(pool, cfg.emit, seed=cfg.seed, balanced=cfg.analyses.balanced)
    counts: dict = {"select": first["counts"]["select"]}
    timings: dict = {}
    calls: dict = {}
    failures: list = []
    for m in manifests:
        stage_counts = {k: v for k, v in m["counts"].items() if k not in ("select", "emit")}
        counts = merge_counts(counts, stage_counts)
        timings = merge_counts(timings, m.get("timings_s", {}))
        calls = merge_counts(calls, m.get("calls", {}))
        failures.extend(m.get("failed_calls", []))
    counts["emit"] = dict(sorted(emitted.counts.items()))
    datasets_yaml = emit_stage.datasets_block(files, str(output).rstrip("/"))
    manifest = dict(first)
    manifest.update(
        files={name: spec.entry() for name, spec in files.items()},
        shard={"index": 0, "count": 1, "merged_from": [str(f) for f in folders]},
        config=cfg.model_dump(mode="json"),
        counts=counts,
        analysis_classes=analysis_classes(counts),
        calls=calls,
        failed_calls=failures,
        timings_s=timings,
    )
    output.mkdir(parents=True, exist_ok=True)
    write_atomic(output / STATE_DIR / POOL_FILE, "".join(pool.to_lines()).encode("utf-8"))
    write_outputs(output, files, manifest, datasets_yaml)
    return manifest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        print(__doc__)
        return 0
    folders: list[Path] = []
    output: Path | None = None
    i = 0
    try:
        while i < len(argv):
            if argv[i] == "--output" or argv[i].startswith("--output="):
                value = argv[i].split("=", 1)[1] if "=" in argv[i] else (argv[i + 1] if i + 1 < len(argv) else None)
                if not value:
                    raise InputError("--output needs a folder", field="output")
                output = Path(value)
                i += 1 if "=" in argv[i] else 2
                continue
            if argv[i].startswith("--"):
                raise InputError(f"unknown option {argv[i]}; {USAGE}", field=argv[i][2:])
            folders.append(Path(argv[i]))
            i += 1
        if output is None:
            raise InputError(f"--output is required; {USAGE}", field="output")
        manifest = merge(folders, output)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = ", ".join(f"{k}: {v['rows']}" for k, v in manifest["files"].items())
    print(f"merged {len(folders)} shards into {output} ({rows})")
    print(emit_stage.datasets_block_from_manifest(manifest, str(output).rstrip("/")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
