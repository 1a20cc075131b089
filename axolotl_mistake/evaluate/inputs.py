"""Read an evaluation's config and check its inputs, before anything is created.

The config goes through the project's one loader (`axolotl_mistake.configio`: YAML with
file:line errors, `--a.b value` overrides, repeated flags refused, help from the schema). Relative
paths are made absolute (file keys against the config's folder, command-line keys against the
working directory), then every local file or folder the run will read is checked to exist. Never
loads a model, reads data rows or writes anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from axolotl_mistake import configio
from axolotl_mistake.errors import InputError
from axolotl_mistake.evaluate.config import EvalConfig, PromptSet

PATH_KEYS = ("path", "adapter")
"""Keys whose string values are file or folder paths wherever they appear."""

PAIR_SETS = ("discrimination", "calibration")
"""Prompt sets that may be given as a plain path to a pairs file."""


def _folder_beside(backend: dict, value: str, base: Path) -> bool:
    """Whether a bare relative `model` ('merged/run1') of a local kind names a folder under
    `base`. Without a folder there it stays what it was (a Hub id, or a folder transformers
    finds from the working directory); an endpoint's `model` is a served name, never a path."""
    from axolotl_mistake.generation.config import DEFAULT_KIND, backend_classes

    if value == "embedded" or os.path.isabs(value) or not (base / value).is_dir():
        return False
    kind = backend.get("kind", DEFAULT_KIND)
    cls = backend_classes().get(kind) if isinstance(kind, str) else None
    return bool(getattr(cls, "local", False))


def resolve_paths(data: dict, base: Path) -> None:
    """Make relative paths in `data` absolute against `base`, in place: `output_dir`, every
    `path`/`adapter`, a local `model` ('./...', '~/...', or a folder that exists under
    `base`), a discrimination or calibration set given as a path. Source `data_files` and
    `hub_id` go to `datasets` as given (a Hub repo's paths are relative to the repo)."""

    def fix(value: str) -> str:
        p = Path(value).expanduser()
        return os.path.normpath(p if p.is_absolute() else (base / p))

    if isinstance(data.get("output_dir"), str):
        data["output_dir"] = fix(data["output_dir"])
    sets = data.get("prompt_sets")
    for name in PAIR_SETS:  # a pairs set may be a plain path (see PromptSets._plain_path)
        value = sets.get(name) if isinstance(sets, dict) else None
        if isinstance(value, str) and value != "builtin":
            sets[name] = fix(value)

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            for key, value in obj.items():
                local_model = key == "model" and isinstance(value, str)
                if (
                    key in PATH_KEYS
                    and isinstance(value, str)
                    or local_model
                    and (value.startswith((".", "~")) or _folder_beside(obj, value, base))
                ):
                    obj[key] = fix(value)
                else:
                    walk(value)
        elif isinstance(obj, list):
            for item in obj:
                walk(item)

    walk(data)


def missing_inputs(cfg: EvalConfig) -> list[tuple[tuple, str]]:
    """(key path, problem) for every local file or folder the run needs but cannot find.

    Model folders given as paths (local kinds), LoRA adapter folders (with adapter_config.json)
    and the prompt-set files; Hub ids and 'embedded' are not checked here.
    """
    problems: list[tuple[tuple, str]] = []
    backends = [(("model",), cfg.model)] + [
        (("judges", i, "backend"), b)
        for i, judge in enumerate(cfg.judges)
        for b in judge.backend_configs()
    ]
    for where, backend in backends:
        model = getattr(backend, "model", None)
        local = getattr(backend, "local", False)  # runs in this process: `model` may be a path
        if local and isinstance(model, str) and os.path.isabs(model) and not Path(model).exists():
            problems.append(((*where, "model"), f"model folder not found: {model}"))
        adapter = getattr(backend, "adapter", None)
        if adapter and not (Path(adapter) / "adapter_config.json").is_file():
            problems.append(
                (
                    (*where, "adapter"),
                    f"not a LoRA adapter folder (no adapter_config.json): {adapter}",
                )
            )
    sets = cfg.prompt_sets
    named: list[tuple[tuple, PromptSet | None]] = [
        (("prompt_sets", name), getattr(sets, name))
        for name in ("harmful", "helpful", "over_refusal", *PAIR_SETS)
    ]
    if sets.goal_hijacking is not None:
        gh = sets.goal_hijacking
        named.append((("prompt_sets", "goal_hijacking", "attacks"), gh.attacks))
        named.append((("prompt_sets", "goal_hijacking", "from_instructions"), gh.from_instructions))
        if gh.hub is not None and gh.hub.path and not Path(gh.hub.path).is_file():
            where = ("prompt_sets", "goal_hijacking", "hub", "path")
            problems.append((where, f"file not found: {gh.hub.path}"))
    for where, prompt_set in named:
        path = getattr(prompt_set.source, "path", None) if prompt_set else None
        if path and not Path(path).is_file():
            problems.append(((*where, "source", "path"), f"file not found: {path}"))
    return problems


def load(cli: configio.CommandLine) -> EvalConfig:
    """The validated config of a parsed command line (`--config FILE` and/or overrides), with
    paths resolved and inputs checked; InputError (file:line, key) on any problem."""
    if cli.config is None and not cli.overrides:
        raise InputError("give --config FILE (an eval.yml); see --help", file=configio.COMMAND_LINE)
    doc = (
        configio.read_yaml(cli.config)
        if cli.config
        else configio.YamlDoc({}, None, configio.COMMAND_LINE)
    )
    if cli.config:
        resolve_paths(doc.data, Path(cli.config).parent.resolve())
    resolve_paths(cli.overrides, Path.cwd())
    cfg = configio.validate(EvalConfig, doc.data, file=cli.config, node=doc.node, overrides=cli)
    problems = missing_inputs(cfg)
    if problems:
        loc, message = problems[0]
        more = f" (and {len(problems) - 1} more missing input(s))" if len(problems) > 1 else ""
        dotted = ".".join(str(p) for p in loc)
        set_here = any(dotted == f or dotted.startswith(f + ".") for f in cli.flags)
        raise InputError(
            message + more,
            file=configio.COMMAND_LINE if set_here or not cli.config else cli.config,
            line=None if set_here else configio.line_of(doc.node, loc),
            field=dotted,
        )
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> EvalConfig:
    """An eval.yml (plus optional `--key value` overrides) as a checked EvalConfig."""
    argv = ["--config", str(path), *(overrides or [])]
    return load(configio.parse_command_line(argv, EvalConfig))
