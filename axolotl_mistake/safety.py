"""Config-time checks that keep loss off harmful text, run inside Axolotl's config validation.

Reads a raw Axolotl config dict (and the builder's manifest.json next to dataset files) and
either raises ValueError with what is wrong and how to fix it, or returns warnings. It must never
modify the config; when the plugin is inactive (see `plugin_active`) it refuses only sure hits,
a type that trains a column holding harmful text (with `train_on_inputs`, every column the
prompt shows), and otherwise does nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from axolotl_mistake.fileio import file_sha256
from axolotl_mistake.manifest import MANIFEST_NAME, FileEntry, read_manifest

PLUGIN_NAMES = (
    "axolotl_mistake.MistakeAnalysisPlugin",
    "axolotl_mistake.plugin.MistakeAnalysisPlugin",
    "axolotl_mistake:MistakeAnalysisPlugin",
    "axolotl_mistake.plugin:MistakeAnalysisPlugin",
)
"""How `plugins:` can name this plugin."""

ALPACA_LIKE_TYPES = ("alpaca",)
"""Axolotl types that, with train_on_inputs false, train only on the output column (also as
`alpaca:<prompt style>`, the same handler with another prompt style)."""

COMPLETION_TYPES = ("completion",)
"""Axolotl types that train every token of one column (`field`, default `text`)."""

CHAT_TYPES = ("chat_template", "axolotl_mistake.chat_sft")
"""Axolotl's conversation type, and this package's (Axolotl's plus a stop token after the last
reply): loss on the turns of `roles_to_train` (default assistant)."""

PREFERRED_FIELD: dict[str, tuple[str, str]] = {
    "dpo": ("field_chosen", "chosen"),
    "ipo": ("field_chosen", "chosen"),
    "simpo": ("field_chosen", "chosen"),
    "orpo": ("field_chosen", "chosen"),
    "kto": ("field_completion", "completion"),
}
"""Under `rl:`, the column each preference method trains the model toward (DPO-like: the chosen
answer; KTO: the completion), as (the key that renames it, its default name)."""


def mistake_strategies() -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(strategy type names, trained row fields per type) from the strategies' own module."""
    from axolotl_mistake.strategies_common import MISTAKE_STRATEGIES, TRAINED_FIELDS

    return MISTAKE_STRATEGIES, TRAINED_FIELDS


def _type_name(ds: Mapping[str, Any]) -> str | None:
    kind = ds.get("type")
    return kind if isinstance(kind, str) else None


def is_mistake_type(kind: str | None) -> bool:
    """True for `axolotl_mistake.<strategy>` (optionally with a `:variant` suffix)."""
    if not kind:
        return False
    names, _ = mistake_strategies()
    return kind in names or kind.split(":", 1)[0] in names


def datasets_of(cfg: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The training dataset entries as dicts (Axolotl may already hold them as pydantic models)."""
    out: list[Mapping[str, Any]] = []
    for entry in cfg.get("datasets") or []:
        if isinstance(entry, BaseModel):
            entry = entry.model_dump(exclude_none=True)
        if isinstance(entry, Mapping):
            out.append(entry)
    return out


def plugin_listed(cfg: Mapping[str, Any]) -> bool:
    """True when `plugins:` names this plugin (explicit opt-in under Axolotl 0.19)."""
    return any(p in PLUGIN_NAMES for p in (cfg.get("plugins") or []) if isinstance(p, str))


def own_keys_set(cfg: Mapping[str, Any]) -> bool:
    """True when any `mistake_*` key has a value."""
    return any(k.startswith("mistake_") and v is not None for k, v in cfg.items())


def plugin_active(cfg: Mapping[str, Any]) -> bool:
    """Whether the plugin should act on this config at all.

    Active when `mistake_analysis: true`, or (unless `mistake_analysis: false`) when the plugin
    is listed in `plugins:`, any `mistake_*` key is set, or a dataset uses our strategies.
    Discovered through the `axolotl.plugins` entry point with none of that: inactive.
    """
    explicit = cfg.get("mistake_analysis")
    if explicit is not None:
        return bool(explicit)
    return (
        plugin_listed(cfg)
        or own_keys_set(cfg)
        or any(is_mistake_type(_type_name(d)) for d in datasets_of(cfg))
    )


GLOB_CHARS = frozenset("*?[")


def _dataset_files(ds: Mapping[str, Any]) -> Iterator[Path]:
    """Local files a dataset entry may read (nothing for Hub ids), erring on the side of more.

    A folder is read with its subfolders (as `datasets.load_dataset(folder)` does); a
    `data_files` name or glob is looked up both under `path` and from the working directory
    (Axolotl 0.19 resolves it from the working directory for a local folder).
    """
    path = ds.get("path")
    if not isinstance(path, str) or not path:
        return
    base = Path(path).expanduser()
    data_files = ds.get("data_files")
    if isinstance(data_files, str):
        data_files = [data_files]
    named = [str(n) for n in data_files] if isinstance(data_files, list) else []
    seen: set[Path] = set()

    def fresh(files: Iterator[Path]) -> Iterator[Path]:
        for file in files:
            key = file.absolute()
            if file.is_file() and key not in seen:
                seen.add(key)
                yield file

    if base.is_file():
        yield from fresh(iter([base]))
    elif base.is_dir() and not named:
        yield from fresh(p for p in sorted(base.rglob("*")) if not _hidden(p, base))
    for name in named:
        for root in ([base] if base.is_dir() else []) + [Path(".")]:
            candidate = Path(name).expanduser()
            if GLOB_CHARS & set(name):
                if candidate.is_absolute():
                    yield from fresh(iter(sorted(Path(candidate.anchor).glob(name[1:]))))
                else:
                    yield from fresh(iter(sorted(root.glob(name))))
            else:
                yield from fresh(iter([candidate if candidate.is_absolute() else root / candidate]))


def _hidden(file: Path, base: Path) -> bool:
    """A dot-file or a file under a dot-folder (caches, .git): not data `load_dataset` reads."""
    return any(part.startswith(".") for part in file.relative_to(base).parts)


ManifestHit = tuple[Path, FileEntry]
"""(the manifest's path, the entry that describes a dataset file)."""


def manifest_entry(file: Path) -> ManifestHit | None:
    """The builder's manifest entry of `file`, by its name, when the builder produced it."""
    manifest = read_manifest(file.parent)
    if manifest is None or file.name not in manifest.files:
        return None
    return file.parent / MANIFEST_NAME, manifest.files[file.name]


def manifest_entry_by_content(file: Path) -> ManifestHit | None:
    """Like `manifest_entry`, but for a renamed copy: the entry whose recorded sha256 matches."""
    manifest = read_manifest(file.parent)
    if manifest is None or not any(e.sha256 for e in manifest.files.values()):
        return None
    digest = file_sha256(file)
    for entry in manifest.files.values():
        if entry.sha256 == digest:
            return file.parent / MANIFEST_NAME, entry
    return None


def find_entry(file: Path) -> ManifestHit | None:
    """The manifest entry of `file` by name, else by content."""
    return manifest_entry(file) or manifest_entry_by_content(file)


SCAN_BYTES = 64 << 20
"""How much of a local dataset file the content check reads (every row within it): enough for
any file this project builds, and a bound on config-time cost for a large SFT file."""


_READ_ONCE: ContextVar[dict[tuple[str, int, int], list] | None] = ContextVar(
    "axolotl_mistake_read_once", default=None
)


@contextmanager
def read_once() -> Iterator[None]:
    """Within it, the rows of a file read with `keep=True` are parsed once (keyed by path,
    mtime and size).

    One config check reads an analysis file's rows twice (are they well formed, do they hold
    harmful text), and one the manifest does not name was parsed each time. Only the reader that
    knows a second read follows keeps the rows, so a large SFT file read once is never held
    whole; and the cache ends with the block, because the check runs inside the training
    process, which must not keep parsed rows for the whole run.
    """
    token = _READ_ONCE.set({})
    try:
        yield
    finally:
        _READ_ONCE.reset(token)


def located_json_rows(
    file: Path, *, keep: bool = False
) -> Iterator[tuple[str, Mapping[str, Any] | None]]:
    """("line N" or "row N", the object or None when that line is not a JSON object) for each
    row of a JSONL or JSON-array file within SCAN_BYTES, whatever its name (`.ndjson`, no
    suffix); nothing for other formats (or an array that does not parse). Lazily, unless rows
    kept earlier in the `read_once` block are there; `keep`: keep them for a later reader."""
    cache = _READ_ONCE.get()
    if cache is None:
        return _scan_rows(file)
    try:
        stat = file.stat()
    except OSError:
        return _scan_rows(file)
    key = (str(file.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in cache:
        if not keep:
            return _scan_rows(file)
        cache[key] = list(_scan_rows(file))
    return iter(cache[key])


def _scan_rows(file: Path) -> Iterator[tuple[str, Mapping[str, Any] | None]]:
    """`located_json_rows` without the cache."""
    try:
        with file.open("rb") as handle:
            head = handle.read(SCAN_BYTES)
    except OSError:
        return
    text = head.decode("utf-8", errors="replace")
    start = text.lstrip()[:1]
    if start == "[":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError:
            return
        if isinstance(rows, list):
            for number, row in enumerate(rows, 1):
                yield f"row {number}", row if isinstance(row, Mapping) else None
        return
    if start != "{":
        return
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            yield f"line {number}", row if isinstance(row, Mapping) else None


def json_rows(file: Path) -> Iterator[Mapping[str, Any]]:
    """The JSON objects of a file as `located_json_rows` reads it. A line that does not parse
    is skipped: reporting it is the loader's job (or `check_analysis_rows`'), this only looks
    for harmful text."""
    return (row for _, row in located_json_rows(file) if row is not None)


def has_rows(file: Path) -> bool:
    """True when a local dataset file holds at least one non-blank line."""
    try:
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 16):
                if chunk.strip():
                    return True
    except OSError:
        return True  # unreadable: let the loader report it
    return False


def harmful_fields_by_content(
    file: Path, ds: Mapping[str, Any], cfg: Mapping[str, Any], found: ManifestHit | None
) -> tuple[str, list[str]] | None:
    """(how it was recognised, harmful columns) for a file that carries the builder's harmful
    text, whatever it is called or wherever it was copied; None when nothing marks it.

    Recognised by the manifest entry of its name, by a manifest entry with the same sha256 (a
    renamed copy), or by its rows: an analysis row (instruction + bad + critique, under the
    configured column names) holds a harmful answer in `bad`; a Chain-of-Hindsight row shows
    its bad answer after the fixed hindsight phrase in `input`. `found`: `find_entry(file)`,
    which the caller needs too (by content it hashes the whole file).
    """
    if found is not None and found[1].harmful_fields:
        return f"per {found[0]}", list(found[1].harmful_fields)
    from axolotl_mistake.strategies_common import field_map
    from axolotl_mistake.templates import COH_BAD_PHRASE

    layouts = (
        field_map(ds, cfg),
        {"instruction": "instruction", "bad": "bad", "critique": "critique"},
    )
    harmful: list[str] = []
    for row in json_rows(file):  # every row: a merged file may open with clean ones
        for names in layouts:
            if (
                all(names[k] in row for k in ("instruction", "bad", "critique"))
                and names["bad"] not in harmful
            ):
                harmful.append(names["bad"])
        for column, value in row.items():
            if isinstance(value, str) and COH_BAD_PHRASE in value and column not in harmful:
                harmful.append(str(column))
    return (f"by its rows ({file.name})", harmful) if harmful else None


def first_manifest(cfg: Mapping[str, Any]) -> Path | None:
    """`mistake_manifest`, else the manifest next to the first builder-made dataset file."""
    explicit = cfg.get("mistake_manifest")
    if explicit:
        return Path(str(explicit)).expanduser()
    for ds in datasets_of(cfg):
        for file in _dataset_files(ds):
            found = manifest_entry(file)
            if found is not None:
                return found[0]
    return None


def trained_columns(ds: Mapping[str, Any], cfg: Mapping[str, Any]) -> set[str] | None:
    """Row columns that receive loss under this entry's `type`, or None if not known."""
    kind = ds.get("type")
    train_on_inputs = bool(cfg.get("train_on_inputs") or ds.get("train_on_inputs"))
    if isinstance(kind, str) and is_mistake_type(kind):
        from axolotl_mistake.strategies_common import field_map

        _, trained = mistake_strategies()
        fields = field_map(ds, cfg)
        return {fields[name] for name in trained.get(kind.split(":", 1)[0], ("critique",))}
    rl = cfg.get("rl")
    if rl:  # preference data: types and field keys of their own, never the SFT format's
        return _preferred_columns(ds, str(getattr(rl, "value", rl)))
    if isinstance(kind, str) and kind in CHAT_TYPES:
        return _chat_trained_columns(ds, train_on_inputs)
    if isinstance(kind, str) and kind in COMPLETION_TYPES:
        return {str(ds.get("field") or "text")}
    if isinstance(kind, str) and kind.split(":", 1)[0] in ALPACA_LIKE_TYPES:
        spec: Mapping[str, Any] = ds
    elif isinstance(kind, Mapping):  # Axolotl's user-defined instruction format
        spec = {**ds, **kind}
    else:
        return None  # unknown type: what it trains is not known
    output = {str(spec.get("field_output") or "output")}
    if not train_on_inputs:
        return output
    # train_on_inputs: every column the prompt shows is trained too, a sure hit on harmful
    # text there (the plugin refuses it even when it is not active)
    shown = {str(spec.get(f"field_{name}") or name) for name in ("instruction", "input", "system")}
    return output | shown


def _preferred_columns(ds: Mapping[str, Any], rl: str) -> set[str] | None:
    """The column a preference method raises the likelihood of (None for a method not known):
    its default name, and the names the dataset entry or its user-defined type give it."""
    if rl not in PREFERRED_FIELD:
        return None
    key, default = PREFERRED_FIELD[rl]
    kind = ds.get("type")
    sources = (ds, kind) if isinstance(kind, Mapping) else (ds,)
    return {default} | {str(s[key]) for s in sources if s.get(key)}


def _chat_trained_columns(ds: Mapping[str, Any], train_on_inputs: bool) -> set[str]:
    """For `type: chat_template`: {the messages column} when a prompt-side turn may get loss,
    else no column. The builder marks a chat file's `messages` harmful for what its *prompt*
    turns show (red-team context); its assistant turns are the safe answers SFT trains on.

    Prompt turns get loss with `train_on_inputs`, with a `roles_to_train` naming any role but
    assistant, or with a `roles` remapping (it can make a user turn an assistant one); a row's
    own per-turn `training` flag would too, and the builder writes none.
    """
    roles = ds.get("roles_to_train")
    roles = ["assistant"] if roles is None else list(roles)
    prompt_trained = (
        train_on_inputs or bool(ds.get("roles")) or any(r != "assistant" for r in roles)
    )
    return {str(ds.get("field_messages") or "messages")} if prompt_trained else set()


def _describe(ds: Mapping[str, Any], index: int) -> str:
    return f"datasets[{index}] (path: {ds.get('path')}, type: {ds.get('type')})"


def check_harmful_columns(
    cfg: Mapping[str, Any], datasets: list[Mapping[str, Any]], strict: bool
) -> None:
    """Refuse any dataset entry that would put loss on a column holding harmful text.

    `strict` (plugin active): also refuse types not known to keep loss off those columns.
    Otherwise (Axolotl 0.21 registers the plugin for every config) refuse only definite hits,
    so an unrelated config is never changed.
    """
    safe_extra = set(cfg.get("mistake_safe_types") or [])
    for index, ds in enumerate(datasets):
        if isinstance(ds.get("type"), str) and ds.get("type") in safe_extra:
            continue
        for file in _dataset_files(ds):
            hit = find_entry(file)
            found = harmful_fields_by_content(file, ds, cfg, hit)
            if found is None:
                continue
            where, harmful = found
            trained = trained_columns(ds, cfg)
            recommended = (
                hit[1].recommended_type if hit else None
            ) or "axolotl_mistake.unguided_analysis"
            keeps = "on the critique only" if is_mistake_type(recommended) else "off the prompt"
            fix = (
                f"Fix: use `type: {recommended}` (the manifest's recommended type, which keeps "
                f"loss {keeps}) with `train_on_inputs: false`"
                + (" and `roles_to_train: [assistant]`" if recommended in CHAT_TYPES else "")
                + "; if this is your own "
                "strategy and it never trains on those fields, list it in `mistake_safe_types`."
            )
            if trained is not None:
                hit = sorted(trained & set(harmful))
                if hit:
                    raise ValueError(
                        f"{_describe(ds, index)}: this type would put loss on {hit}, which holds "
                        f"harmful text in {file.name} ({where}): the model would learn to write "
                        f"the harmful answers. {fix}"
                    )
            if not strict:
                continue
            if trained is None:
                raise ValueError(
                    f"{_describe(ds, index)}: {file.name} holds harmful text in field(s) "
                    f"{harmful} ({where}), and this type/train_on_inputs setting is "
                    f"not known to keep loss off those fields. {fix}"
                )
            kind = ds.get("type")
            # `alpaca:<style>` is the alpaca handler with another prompt style: same columns;
            # the chat types train the same turns (ours adds only a stop token)
            same_handler = isinstance(kind, str) and (
                kind.split(":", 1)[0] == recommended
                or (kind in CHAT_TYPES and recommended in CHAT_TYPES)
            )
            if isinstance(kind, str) and not is_mistake_type(kind) and not same_handler:
                raise ValueError(
                    f"{_describe(ds, index)}: {file.name} holds harmful text in field(s) "
                    f"{harmful} ({where}) and was built for `type: {recommended}`; "
                    f"`type: {kind}` is not known to keep loss off those fields. {fix}"
                )


def check_analysis_rows(ds: Mapping[str, Any], index: int, cfg: Mapping[str, Any]) -> None:
    """Refuse a malformed row of an analysis dataset (or one whose critique copies its answer)
    now, as `file:line: field`, instead of as two tracebacks from inside the tokenizing map;
    the message never quotes the row (its text is a harmful answer). Reads the files the entry
    names (a file, or `data_files`): a bare folder holds the builder's other files too, and
    loading it is the loader's business.
    """
    from axolotl_mistake.strategies_common import (
        REQUIRED_FIELDS,
        field_map,
        max_copied_words,
        row_problem,
    )

    path = ds.get("path")
    if isinstance(path, str) and Path(path).expanduser().is_dir() and not ds.get("data_files"):
        return
    fields = field_map(ds, cfg)
    limit = max_copied_words(cfg)
    needed = ", ".join(fields[name] for name in REQUIRED_FIELDS)
    for file in _dataset_files(ds):
        # kept: the harmful-text check reads the same rows next
        for where, row in located_json_rows(file, keep=True):
            problem = "not a JSON object" if row is None else row_problem(row, fields, limit)
            if problem is not None:
                raise ValueError(
                    f"{file}, {where}: {problem} ({_describe(ds, index)}; an analysis row "
                    f"needs non-empty string fields {needed}). Fix the row, or rebuild it "
                    "with `python -m dataset_builders.build`."
                )


def check_unknown_keys(cfg: Mapping[str, Any]) -> None:
    """Refuse a `mistake_*` key the plugin does not define: Axolotl's schema would drop it
    silently, so a misspelt `mistake_probe_pair` would quietly turn the probe off."""
    import difflib

    from axolotl_mistake.args import MistakeAnalysisArgs

    known = list(MistakeAnalysisArgs.model_fields)
    unknown = sorted(k for k in cfg if isinstance(k, str) and k.startswith("mistake_"))
    unknown = [k for k in unknown if k not in known]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
    raise ValueError(
        f"unknown mistake-analysis key(s): {', '.join(hints)}. Axolotl would ignore them "
        f"silently. The plugin's keys: {', '.join(known)}."
    )


def check_empty_datasets(datasets: list[Mapping[str, Any]], analyses: set[int]) -> None:
    """Refuse a dataset entry that holds no row: an analysis entry (index in `analyses`) with any
    empty file, any other entry whose files are all empty. Axolotl would stop loading it with a
    bare `StopIteration` from `datasets`; the builder writes such a file when its build failed or
    a stage it was asked for kept nothing (e.g. every revision failed its gate)."""
    for index, ds in enumerate(datasets):
        files = list(_dataset_files(ds))
        empty = [file for file in files if not has_rows(file)]
        if not empty or (index not in analyses and len(empty) < len(files)):
            continue
        hit = find_entry(empty[0])
        source = f" (the build kept none: see the counts in {hit[0]})" if hit is not None else ""
        raise ValueError(
            f"{_describe(ds, index)}: {', '.join(map(str, empty))} has no rows{source}; Axolotl "
            "would stop loading it with a bare StopIteration. Rebuild it with `python -m "
            "dataset_builders.build` and check that the build exited 0, or remove the entry."
        )


def check_config(cfg: Mapping[str, Any]) -> list[str]:
    """Raise ValueError on a config that would train on harmful text; return warnings."""
    with read_once():
        return _check_config(cfg)


def _check_config(cfg: Mapping[str, Any]) -> list[str]:
    datasets = datasets_of(cfg)
    if not plugin_active(cfg):
        check_harmful_columns(cfg, datasets, strict=False)
        return []
    check_unknown_keys(cfg)
    uses_strategy = [i for i, d in enumerate(datasets) if is_mistake_type(_type_name(d))]
    if uses_strategy and bool(cfg.get("train_on_inputs")):
        names = ", ".join(_describe(datasets[i], i) for i in uses_strategy)
        raise ValueError(
            f"train_on_inputs: true is not allowed with a mistake-analysis strategy ({names}): "
            "the prompt of an analysis row contains the harmful answer, and training on inputs "
            "would teach the model to produce it. Fix: set `train_on_inputs: false` (the default)."
        )
    check_empty_datasets(datasets, set(uses_strategy))
    for index in uses_strategy:
        check_analysis_rows(datasets[index], index, cfg)
    check_harmful_columns(cfg, datasets, strict=True)
    for key in ("mistake_probe_pairs", "mistake_probe_calibration_pairs", "mistake_manifest"):
        value = cfg.get(key)
        if value and value != "builtin" and not Path(str(value)).expanduser().is_file():
            what = {
                "mistake_probe_pairs": "a JSONL file of {question, answer, harmful} rows, "
                "or 'builtin'",
                "mistake_probe_calibration_pairs": "a JSONL file of {question, answer, "
                "harmful} rows",
            }.get(key, "the manifest.json of a dataset build")
            raise ValueError(
                f"{key}: {value} is not a file (relative paths are read from the directory "
                f"`axolotl train` runs in). Give {what}."
            )
    pairs = cfg.get("mistake_probe_pairs")
    if cfg.get("mistake_probe") is True and not pairs:
        raise ValueError(
            "mistake_probe: true needs `mistake_probe_pairs`: 'builtin' (the project's own "
            "pairs) or a JSONL file of {question, answer, harmful} rows; without it no probe runs."
        )
    probe_pairs = None
    if pairs and pairs != "builtin" and cfg.get("mistake_probe") is not False:
        from axolotl_mistake.probe import load_pairs

        try:  # now, not at the first probe run after the model has loaded
            probe_pairs = load_pairs(Path(str(pairs)).expanduser())
        except Exception as err:  # InputError/ValueError naming file:line and field
            raise ValueError(f"mistake_probe_pairs: {err}") from None
    check_probe_calibration(cfg, probe_pairs)
    warnings: list[str] = []
    if datasets and len(uses_strategy) == len(datasets):
        warnings.append(
            "mistake analysis: no SFT data in the mix: every dataset is a mistake-analysis "
            "strategy. The method mixes the analyses with ordinary SFT rows (the builder's "
            "sft_harmless.jsonl and sft_helpful.jsonl, `type: alpaca`, or their .chat variants "
            "with `type: chat_template`); without them helpfulness usually drops."
        )
    return warnings


def check_probe_calibration(cfg: dict[str, Any], probe_pairs: list | None = None) -> None:
    """`mistake_probe_threshold: calibrated` needs training-side calibration pairs with both
    labels and none shared with the probe pairs (a cut fitted on the pairs it then judges
    would inflate the accuracy); calibration pairs without it would be silently unused.
    `probe_pairs`: the probe pairs if already read (None: read here, e.g. 'builtin')."""
    calibrated = cfg.get("mistake_probe_threshold") == "calibrated"
    path = cfg.get("mistake_probe_calibration_pairs")
    if cfg.get("mistake_probe") is False or not cfg.get("mistake_probe_pairs"):
        return
    if not calibrated:
        if path:
            raise ValueError(
                "mistake_probe_calibration_pairs is set but mistake_probe_threshold is not "
                "'calibrated': set `mistake_probe_threshold: calibrated` or drop the key."
            )
        return
    if not path:
        raise ValueError(
            "mistake_probe_threshold: calibrated needs `mistake_probe_calibration_pairs`: "
            "training-side labelled pairs (JSONL {question, answer, harmful}) to fit the cut on."
        )
    from axolotl_mistake.plugin import resolve_probe_pairs
    from axolotl_mistake.probe import load_pairs

    try:
        calibration = load_pairs(Path(str(path)).expanduser())
        probe = probe_pairs or load_pairs(resolve_probe_pairs(str(cfg["mistake_probe_pairs"])))
    except Exception as err:  # InputError naming file:line and field
        raise ValueError(f"mistake_probe_calibration_pairs: {err}") from None
    scored = {(p.question, p.answer) for p in probe}
    shared = [p for p in calibration if (p.question, p.answer) in scored]
    if shared:
        raise ValueError(
            f"mistake_probe_calibration_pairs: {len(shared)} pair(s) are also probe pairs "
            f"(first: {shared[0].question[:60]!r}); calibrate on training-side pairs only."
        )
    if len({p.harmful for p in calibration}) < 2:
        raise ValueError(
            f"mistake_probe_calibration_pairs: {path} has {len(calibration)} pair(s) and not "
            "both labels; a cut needs harmful and harmless answers."
        )
