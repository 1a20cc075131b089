"""The manifest a build writes: what each file is, how it was made, from what, with which models.

Assembled from the config, the emitted files and the stages' counts; rendered to JSON by
`axolotl_mistake.manifest.BuildManifest`. Holds only the NAME of an API-key env var, never a
secret. Never writes files itself.
"""

from __future__ import annotations

from pathlib import Path

from axolotl_mistake.manifest import BuildManifest, project_version, versions
from axolotl_mistake.redact import redact_urls
from dataset_builders.backends import label_of, model_info, needed_backends
from dataset_builders.config import BuildConfig
from dataset_builders.selection import source_info
from dataset_builders.stages.emit import FileSpec
from dataset_builders.stages.mistakes import guided


def analysis_classes(counts: dict) -> dict[str, int]:
    """Emitted analysis rows per label (harmful, harmless), from emit's counts."""
    emitted = counts.get("emit", {})
    return {label: emitted.get(f"analyses_{label}", 0) for label in ("harmful", "harmless")}


def mistake_source(cfg: BuildConfig) -> str:
    """'origin', the model that made the mistakes, or both joined by '+'."""
    model = label_of(cfg.backend_for(cfg.mistakes.backend))
    if not guided(cfg.mistakes):
        return "origin"
    return model if cfg.mistakes.mode == "guided" else f"origin+{model}"


def models_used(cfg: BuildConfig) -> dict[str, dict]:
    """The build's model and each stage's own backend (config key's section -> model info)."""
    models = {"model": model_info(cfg.model)}
    for where, bcfg in needed_backends(cfg):
        models[where.split(".")[0]] = model_info(bcfg)
    return models


def sources_read(cfg: BuildConfig) -> list[dict]:
    """Provenance of every source the build read, with the role it was read for."""
    roles = (
        ("redteam", cfg.redteam),
        ("helpful", cfg.helpful),
        ("decontaminate", cfg.select.decontaminate),
    )
    return [source_info(source, role) for role, sources in roles for source in sources]


def build_manifest(
    cfg: BuildConfig,
    config_file: str | None,
    files: dict[str, FileSpec],
    counts: dict,
    timings: dict,
    calls: dict,
    failures: list[dict],
    shard: dict,
    pool_sha256: str | None = None,
) -> BuildManifest:
    """The build's manifest."""
    return BuildManifest(
        version=project_version(),
        files={name: spec.entry() for name, spec in files.items()},
        mistake_source=mistake_source(cfg),
        analyst=label_of(cfg.backend_for(cfg.analyses.backend)),
        anchored=cfg.analyses.anchored,
        balanced=cfg.analyses.balanced,
        analysis_classes=analysis_classes(counts),
        prompt_format=cfg.prompt_format,
        seed=cfg.seed,
        shard=shard,
        pool_sha256=pool_sha256,
        config_file=Path(config_file).name if config_file else None,
        config_hash=cfg.config_hash(),
        config=redact_urls(cfg.model_dump(mode="json")),
        models=redact_urls(models_used(cfg)),
        data=redact_urls(sources_read(cfg)),
        counts=counts,
        calls=calls,
        failed_calls=failures,
        timings_s=timings,
        versions=versions(),
    )
