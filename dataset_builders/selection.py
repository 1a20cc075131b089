"""Read every configured source and run select: the build's first step, before any model.

Streams the sources through `stages.select` (flat memory) and refuses a selection the later
stages cannot use, with an InputError naming the config key. Never loads models or writes files.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from axolotl_mistake.errors import InputError
from axolotl_mistake.sources import iter_rows
from dataset_builders.config import BuildConfig
from dataset_builders.stages.common import Progress, StageResult, no_progress
from dataset_builders.stages.select import DecontaminationIndex, select


def _rows_of(sources: list, role: str, config_file: str | None = None) -> Iterator:
    for index, src in enumerate(sources):
        try:
            yield from iter_rows(src)
        except InputError as exc:
            raise located(exc, (*role.split("."), index), config_file) from None


def located(exc: InputError, key: tuple, config_file: str | None) -> InputError:
    """A source that cannot be opened or holds no records (a missing, unreadable or empty file,
    a Hub dataset that does not load or has no rows), named by the config key that gave it:
    the loader only knows the file or Hub id, and the same one may be configured twice
    (red-team and decontamination). An error inside its rows keeps its data file and line."""
    if exc.field not in ("path", "hub_id", "data_files") or exc.line is not None or not exc.file:
        return exc
    from axolotl_mistake.configio import locate

    field = ".".join(map(str, (*key, exc.field)))
    return locate(InputError(f"{exc.message}: {exc.file}", field=field), config_file, [])


def decontamination_index(
    cfg: BuildConfig, config_file: str | None = None
) -> DecontaminationIndex | None:
    """The evaluation prompts no training instruction may repeat (None: no eval sets)."""
    sel = cfg.select
    if not sel.decontaminate:
        return None
    index = DecontaminationIndex(n=sel.ngram_n)
    for row in _rows_of(sel.decontaminate, "select.decontaminate", config_file):
        index.add(row.question)
    return index


def read_and_select(
    cfg: BuildConfig, config_file: str | None, progress: Progress = no_progress
) -> StageResult:
    """Stream every source through select. Raises InputError for bad input or an unusable
    selection (nothing selected, no labels where the config needs them)."""
    sel = cfg.select
    check_source_tags(cfg)
    result = select(
        [
            ("redteam", _rows_of(cfg.redteam, "redteam", config_file)),
            ("helpful", _rows_of(cfg.helpful, "helpful", config_file)),
        ],
        seed=cfg.seed,
        n_per_role={"redteam": sel.redteam_n, "helpful": sel.helpful_n},
        min_chars=sel.min_chars,
        max_chars=sel.max_chars,
        dedup=sel.dedup,
        decontaminate=decontamination_index(cfg, config_file),
        ngram_threshold=sel.ngram_threshold,
        eval_fraction=sel.eval_fraction,
        progress=progress,
    )
    check_selection(cfg, result, config_file)
    return result


def check_source_tags(cfg: BuildConfig) -> None:
    """Two sources of one role must not share a row-id prefix (`tag`, by default
    `<kind>:<file name>`): their row ids would collide, and select drops a repeated id, so the
    second source's rows would vanish (two `train.jsonl` from different folders)."""
    for role, sources in (("redteam", cfg.redteam), ("helpful", cfg.helpful)):
        first: dict[str, int] = {}
        for index, src in enumerate(sources):
            tag = src.source_tag
            if tag in first:
                raise InputError(  # located by the caller (a flag may have set the sources)
                    f"{role}.{first[tag]} and {role}.{index} both give their rows the id "
                    f"prefix {tag!r} (a source's `tag`, by default <kind>:<file name>), so "
                    f"the rows of {role}.{index} would be dropped as repeated ids; set a "
                    "distinct `tag:` on one of them",
                    field=f"{role}.{index}.tag",
                )
            first[tag] = index


def check_selection(cfg: BuildConfig, result: StageResult, config_file: str | None) -> None:
    """The selection has red-team train items, with the labels the configured modes need."""
    train = [it for it in result.records if it.role == "redteam" and it.split == "train"]
    if not train:
        read = result.counts.get("redteam.read", 0)
        held_out = result.counts.get("redteam.eval", 0)
        if held_out:
            raise InputError(
                f"empty selection: all {held_out} selected red-team rows went to the eval split "
                f"(select.eval_fraction {cfg.select.eval_fraction:g}); lower it or select more "
                "rows (select.redteam_n)",
                file=config_file,
                field="select.eval_fraction",
            )
        why = (
            "no red-team sources are configured"
            if not cfg.redteam
            else f"read {read} red-team rows, none survived filtering, dedup and decontamination"
            if read
            else "the red-team sources yielded no rows"
        )
        raise InputError(f"empty selection: {why}", file=config_file, field="redteam")
    if cfg.analyses.balanced and not _any_answer(train, "safe_answer"):
        raise InputError(
            "analyses.balanced is on but no selected red-team row has a labelled harmless "
            "answer (use a source with safe answers: pku_saferlhf, hh_rlhf, a labelled file)",
            file=config_file,
            field="analyses.balanced",
        )
    if cfg.mistakes.mode == "origin" and not _any_answer(train, "unsafe_answer"):
        raise InputError(
            "mistakes.mode is 'origin' but no selected red-team row has an unsafe answer "
            "(use a labelled source such as pku_saferlhf or hh_rlhf, or mode 'guided')",
            file=config_file,
            field="mistakes.mode",
        )


def _any_answer(items: list, field: str) -> bool:
    return any((getattr(it.row, field) or "").strip() for it in items)


def source_info(src: Any, role: str) -> dict:
    """Provenance of one source: kind, tag, file sha256 or Hub revision (no absolute paths for
    the shipped data)."""
    from axolotl_mistake.sources.provenance import describe_source

    info = {"role": role, **describe_source(src)}
    if info.get("kind") == "builtin":
        info["location"] = info.get("tag")
    info.setdefault("revision", getattr(src, "revision", None))
    return info
