"""One loader for every command's configuration: a pydantic schema, a YAML file, dotted
command-line overrides and `--help`, with every problem an `InputError` naming file:line and key.

Config modules hold only their schema (pydantic models with a `description` on every field);
this module reads, merges, validates and documents them. It never creates outputs, loads models
or reads data files. The API (small on purpose):

- `read_yaml(path) -> YamlDoc`: a mapping plus its node tree; errors for a missing, non-UTF-8,
  malformed or non-mapping file, or a key given twice in one mapping, with the line.
- `parse_command_line(argv, schema)`: `--config FILE`, `-h/--help`, `--a.b value` / `--a.b=value`
  (nested keys by dots, list items by index: `--redteam.0.limit 5`) and bare `--flag` for booleans.
  Values are parsed as YAML with YAML 1.2's plain scalars (`010` is ten, `no` and `2024-01-01`
  are text), except for string keys (kept verbatim). A flag given twice
  (`--seed 1 --seed 2`, `--dry-run --dry_run false`), two `--config`s, or a key and a key below
  it are refused with an error naming the flag.
- `validate(schema, data, file=..., node=..., overrides=...)`: merge overrides into the file's
  data and validate; the first problem becomes one InputError located in the file (line) or on
  the command line, whichever set the key.
- `load(schema, argv)`: the three above for a CLI; returns `Loaded(config, config_file, help)`.
- `help_rows(schema)` / `help_text(schema, usage=..., intro=..., footer=...)` and
  `describe_model(cls)`: documentation generated from the schema's descriptions.
- `validation_error(exc, data, node, file, prefix=...)`: any pydantic ValidationError as one
  located InputError (for callers that validate on their own).

Schema conventions it understands: a section is a field whose type is a BaseModel (or a union
of BaseModels, which takes the keys of every member); a section
class with subclasses is polymorphic (a union chosen by a tag such as `kind`): its keys are those
of the class and of every subclass; union tags pydantic puts in error locations are skipped.
"""

from __future__ import annotations

import json
import re
import textwrap
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, Union

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from axolotl_mistake.errors import FieldError, InputError

COMMAND_LINE = "<command line>"
"""The `file` of errors about command-line flags."""

M = TypeVar("M", bound=BaseModel)


# ---------------------------------------------------------------- YAML


@dataclass
class YamlDoc:
    """A YAML mapping, its node tree (for line numbers) and the file it came from."""

    data: dict
    node: Any
    file: str


def read_yaml(path: str | Path, *, what: str = "config") -> YamlDoc:
    """Read a YAML mapping; InputError for a missing file, bad UTF-8, bad YAML or a non-mapping."""
    file = str(path)
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file not found" if not p.exists() else "is not a file", file=file)
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            file=file,
            line=raw[: exc.start].count(b"\n") + 1,
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"invalid YAML: {problem}", file=file, line=line) from None
    if data is None:
        return YamlDoc({}, None, file)
    if not isinstance(data, dict):
        raise InputError(f"a {what} must be a YAML mapping of keys to values", file=file, line=1)
    duplicate = first_duplicate_key(node)
    if duplicate is not None:
        key, first, again = duplicate
        raise InputError(
            f"key {key!r} is given twice (lines {first} and {again}); YAML would keep only the "
            "last, silently dropping the first",
            file=file,
            line=again,
            field=key,
        )
    return YamlDoc(data, node, file)


def first_duplicate_key(node: Any) -> tuple[str, int, int] | None:
    """(dotted key, line of its first use, line of the repeat) for the first key repeated in
    one mapping of a YAML node tree, else None. PyYAML keeps the last silently, so a second
    `select:` block would replace the first without a word (merge keys `<<` are left alone)."""
    seen: set[int] = set()

    def walk(n: Any, path: tuple[str, ...]) -> tuple[str, int, int] | None:
        if id(n) in seen:  # an alias: the anchored node was checked where it was defined
            return None
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            lines: dict[str, int] = {}
            for k, v in n.value:
                name = str(k.value)
                line = k.start_mark.line + 1
                if name != "<<" and isinstance(k, yaml.ScalarNode):
                    if name in lines:
                        return ".".join((*path, name)), lines[name], line
                    lines[name] = line
                found = walk(v, (*path, name))
                if found:
                    return found
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                found = walk(item, (*path, str(i)))
                if found:
                    return found
        return None

    return walk(node, ())


def line_of(node: Any, loc: tuple) -> int | None:
    """The line of the deepest key of `loc` found in a YAML node tree (union tags skipped)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                continue
            line = pair[0].start_mark.line + 1
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
        else:
            break
    return line


# ---------------------------------------------------------------- schema walking


def fields_of(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A section's keys: its fields, plus those of every subclass when it is polymorphic, or
    what the section's own `config_fields()` says when it defines one (a polymorphic section
    can mark which kinds take a key, as the backend block does)."""
    own = getattr(model, "config_fields", None)
    if callable(own):
        return dict(own())
    out = dict(model.model_fields)
    todo = list(model.__subclasses__())
    while todo:
        sub = todo.pop(0)
        for name, info in sub.model_fields.items():
            out.setdefault(name, info)
        todo.extend(sub.__subclasses__())
    return out


def _section(annotation: Any) -> type[BaseModel] | None:
    """The model class a key continues into (`a.b` where `a` is a section), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _section(arg)
            if found is not None:
                return found
    return None


def _sections(annotation: Any) -> list[type[BaseModel]]:
    """Every model class a key may continue into: the section's, or each member's of a union
    of sections (the evaluator's `prompt_sets.*.source`: one model per source kind)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) is typing.Annotated:
        return _sections(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _sections(a)]
    return []


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation))
    return False


_FREE = object()
"""Marker: inside a value the schema does not describe key by key (pydantic validates it)."""


def annotation_at(schema: type[BaseModel], path: list[str]) -> Any:
    """The type annotation of a dotted key (`_FREE` inside list items or free-form values);
    InputError for a key the schema does not have."""
    models: Any = [schema]
    annotation: Any = None
    for depth, part in enumerate(path):
        walked = ".".join(path[: depth + 1])
        if models is None:
            return _FREE
        if models is list:
            if not part.isdigit():
                raise InputError(
                    f"'{'.'.join(path[:depth])}' is a list: index it with a number",
                    file=COMMAND_LINE,
                    field=walked,
                )
            models = None
            annotation = _FREE
            continue
        keys: dict[str, FieldInfo] = {}
        for model in models:  # a union of sections takes the keys of every member
            for name, info in fields_of(model).items():
                keys.setdefault(name, info)
        if part not in keys:
            raise InputError(
                f"unknown key '{walked}' (see --help for the keys)", file=COMMAND_LINE, field=walked
            )
        annotation = keys[part].annotation
        models = _sections(annotation) or (list if _is_list(annotation) else None)
    return annotation


def _is_str(annotation: Any) -> bool:
    if annotation is str:
        return True
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)] == [str]
    return False


def _is_str_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,)


# ---------------------------------------------------------------- command line


@dataclass
class CommandLine:
    """A parsed command line: the config file, dotted overrides as nested data, positionals."""

    config: str | None = None
    overrides: dict = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    """The dotted keys set, in order (to tell which errors the command line caused)."""
    positionals: list[str] = field(default_factory=list)
    help: bool = False


def _flag_key(text: str) -> str:
    return ".".join(p.replace("-", "_") for p in text.split("."))


def parse_command_line(
    argv: list[str],
    schema: type[BaseModel],
    *,
    config_flag: bool = True,
    positionals: bool = False,
) -> CommandLine:
    """Split argv into `--config FILE`, `--help`, dotted overrides and (if allowed) positionals.

    Refuses a flag given twice (after `-`/`_` folding), a key together with a key below it
    (`--model X --model.batch_size 2`), and unknown keys, each with an error naming the flag.
    With `positionals`, a boolean flag takes a value only as `--flag=value`: the word after
    it is a positional (a folder named `0` is not `false`).
    """
    out = CommandLine()
    seen: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            out.help = True
            i += 1
            continue
        if not arg.startswith("--") or arg == "--":
            if positionals and not arg.startswith("-"):
                out.positionals.append(arg)
                i += 1
                continue
            raise InputError(
                f"unexpected argument {arg!r}; options look like --key value", file=COMMAND_LINE
            )
        name, has_eq, inline = arg[2:].partition("=")
        key = _flag_key(name)
        bare = (  # with positionals, `--overwrite 0 1` names two folders: a bool needs `=`
            positionals
            and not has_eq
            and not (key == "config" and config_flag)
            and annotation_at(schema, key.split(".")) is bool
        )
        if has_eq:
            raw: str | None = inline
            i += 1
        elif not bare and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            raw = argv[i + 1]
            i += 2
        else:
            raw = None
            i += 1
        _refuse_repeats(key, arg, seen)
        if key == "config" and config_flag:
            if not raw:
                raise InputError("--config needs a file name", file=COMMAND_LINE, field="config")
            out.config = raw
            continue
        path = key.split(".")
        annotation = annotation_at(schema, path)
        out.flags.append(key)
        _set_dotted(out.overrides, path, _value(key, raw, annotation))
    return out


def _refuse_repeats(key: str, arg: str, seen: dict[str, str]) -> None:
    for other, other_arg in seen.items():
        if other == key:
            this, before = arg.split("=")[0], other_arg.split("=")[0]
            spelt = "" if this == before else f" (as {before} and {this})"
            raise InputError(
                f"{this} is given twice{spelt}; give each option once",
                file=COMMAND_LINE,
                field=key,
            )
        if other.startswith(key + ".") or key.startswith(other + "."):
            raise InputError(
                f"--{other} and --{key} set the same key twice; give only one of them",
                file=COMMAND_LINE,
                field=min(key, other, key=len),
            )
    seen[key] = arg


_YAML_1_1_TYPES = (":bool", ":int", ":float", ":timestamp")


class _FlagLoader(yaml.SafeLoader):
    """YAML for one command-line value, with YAML 1.2's plain scalars instead of YAML 1.1's:
    what was typed is what is meant. `010` is ten (1.1 read octal 8, yet `09` as nine), `1:30`
    is text (1.1: the number 90), `2024-01-01` is text (1.1: a date no string key takes), and
    yes/no/on/off are words (1.1: booleans, so `--words '[no, on]'` failed; a bool key still
    takes the words). Numbers, `0x`/`0o` integers, true/false, null, lists and mappings are
    as in YAML."""


_FlagLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if not tag.endswith(_YAML_1_1_TYPES)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FlagLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_FlagLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_FlagLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _flag_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text[:2] in ("0x", "0o"):
        return int(text[2:], 16 if text[1] == "x" else 8)
    return int(text, 10)  # leading zeros are decimal: 010 is ten


_FlagLoader.add_constructor("tag:yaml.org,2002:int", _flag_int)


def _value(key: str, raw: str | None, annotation: Any) -> Any:
    if raw is None:
        if annotation is not bool:
            raise InputError(f"--{key} needs a value", file=COMMAND_LINE, field=key)
        return True
    if _is_str(annotation):
        return raw
    if _is_str_list(annotation) and not raw.lstrip().startswith("["):
        return [raw]  # one stop string / phrase; '#' would start a YAML comment
    try:
        return yaml.load(raw, Loader=_FlagLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError:
        return raw


class Whole(dict):
    """A mapping given whole on the command line (`--prompt_sets '{}'`): it replaces the file's
    mapping at its key; the mappings a dotted flag's path makes merge into the file's."""


def _set_dotted(target: dict, path: list[str], value: Any) -> None:
    cur = target
    for part in path[:-1]:
        cur = cur.setdefault(part, {})
    cur[path[-1]] = Whole(value) if isinstance(value, dict) else value


def merge(base: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    """Deep-merge command-line overrides into file data: into list items by numeric key, and a
    scalar (such as 'self') becomes a mapping when a key below it is set. A `Whole` mapping
    replaces what is there."""
    if isinstance(override, Whole):
        return dict(override)
    if not isinstance(override, dict):
        return override
    if isinstance(base, list):
        items = list(base)
        for key, value in override.items():
            index = int(key)
            if index >= len(items):
                raise InputError(
                    f"list index {index} out of range (the list has {len(items)} items)",
                    file=COMMAND_LINE,
                    field=".".join((*path, key)),
                )
            items[index] = merge(items[index], value, (*path, key))
        return items
    out = dict(base) if isinstance(base, dict) else {}
    for key, value in override.items():
        out[key] = merge(out.get(key), value, (*path, key))
    return out


def with_list_defaults(schema: type[BaseModel], data: dict, override: dict) -> dict:
    """`data` with the schema's default list put in where the command line indexes into a list
    the file leaves out (`--redteam.0.limit 5` with the default sources), so the flag edits
    that list instead of replacing it with a mapping."""
    out = dict(data)
    fields = fields_of(schema)
    for key, value in override.items():
        info = fields.get(key)
        if info is None or not isinstance(value, dict):
            continue
        if key not in out and _is_list(info.annotation) and not info.is_required():
            if all(str(k).isdigit() for k in value):
                default = info.get_default(call_default_factory=True)
                if isinstance(default, list):
                    out[key] = [d.model_dump() if isinstance(d, BaseModel) else d for d in default]
            continue
        sub = _section(info.annotation)
        inner = out.get(key)
        if sub is not None and isinstance(inner, dict | None):
            filled = with_list_defaults(sub, inner or {}, value)
            if filled != (inner or {}):
                out[key] = filled
    return out


# ---------------------------------------------------------------- validation


def first_error(exc: ValidationError) -> dict:
    """The error to report: the most specific (longest location), the first among equals.

    A value that fails a union fails every member; the member it was meant for (a mapping for a
    section) goes deepest, the others ('should be self') stop at the union itself.
    """
    errors = exc.errors(include_url=False)
    return max(errors, key=lambda e: len(e["loc"]))


def _is_name(part: Any) -> bool:
    return isinstance(part, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part) is not None


def loc_name(loc: tuple, data: Any, error_type: str = "") -> str:
    """Dotted key of an error location, with pydantic's union-member tags left out.

    Walks the location through the validated data: a part that is not a key there is a tag
    (skipped), except the last part of a 'missing' error, which is the missing key.
    """
    parts: list[str] = []
    cur = data
    for depth, part in enumerate(loc):
        last = depth == len(loc) - 1
        if isinstance(cur, dict):
            if part in cur:
                parts.append(str(part))
                cur = cur[part]
            elif last and error_type == "missing" and _is_name(part):
                parts.append(str(part))
        elif isinstance(cur, list) and isinstance(part, int):
            parts.append(str(part))
            cur = cur[part] if part < len(cur) else None
    return ".".join(parts)


def error_loc(err: Any) -> tuple:
    """Where a pydantic error points: its `loc`, extended by the key a `FieldError` blames (a
    check across keys raised in a model validator, whose own loc is the whole model)."""
    loc = tuple(err["loc"])
    blamed = (err.get("ctx") or {}).get("error")
    if isinstance(blamed, FieldError):
        loc += tuple(int(p) if p.isdigit() else p for p in blamed.field.split("."))
    return loc


def validation_error(
    exc: ValidationError,
    data: Any,
    node: Any,
    file: str | None,
    *,
    prefix: str = "",
    tag_noun: str = "",
) -> InputError:
    """The first problem of a ValidationError as one InputError: file:line (from `node`) and the
    dotted key (after `prefix`), with a readable message for unknown keys and union tags
    (`tag_noun` names what the tag chooses, e.g. 'source': "unknown source kind 'x'")."""
    errors = exc.errors(include_url=False)
    err = first_error(exc)
    loc = error_loc(err)
    ctx = err.get("ctx") or {}
    name = loc_name(loc, data, err["type"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        key = name.rsplit(".", 1)[-1] if name else str(loc[-1])
        message = f"unknown key '{key}' (see --help for the keys)"
    elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        tag = str(ctx.get("discriminator", "'kind'")).strip("'")
        name = f"{name}.{tag}" if name else tag
        expected = str(ctx.get("expected_tags", "")).replace("'", "")
        # pydantic names the expected tags only for a wrong one, not for a missing one
        choices = f"expected one of {expected}" if expected else "see --help for its values"
        noun = f"{tag_noun} " if tag_noun else ""
        message = (
            f"unknown {noun}{tag} {ctx['tag']!r}; {choices}"
            if "tag" in ctx
            else f"missing {noun}`{tag}`; {choices}"
        )
    if len(errors) > 1:
        more = len(errors) - 1
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    field_name = ".".join(p for p in (prefix, name) if p) or None
    line = line_of(node, loc) if node is not None else None
    return InputError(message, file=file, line=line, field=field_name)


def _set_by(flags: list[str], dotted: str) -> bool:
    """True when the key at fault, or a key above or below it, was set on the command line."""
    return (
        any(f == dotted or dotted.startswith(f + ".") or f.startswith(dotted + ".") for f in flags)
        if dotted
        else False
    )


def _lookup(data: Any, dotted: str) -> Any:
    """The value at a dotted key of nested mappings and lists, else None."""
    cur = data
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def validate(
    schema: type[M],
    data: dict,
    *,
    file: str | None = None,
    node: Any = None,
    overrides: CommandLine | None = None,
) -> M:
    """Merge the command line's overrides into `data` and validate against `schema`.

    An error in a key the command line set, or a key missing from a section that only the
    command line made, is reported against the command line, any other against `file` (with
    its line when `node` is given).
    """
    flags = overrides.flags if overrides else []
    merged = (
        merge(with_list_defaults(schema, data, overrides.overrides), overrides.overrides)
        if overrides
        else data
    )
    try:
        return schema.model_validate(merged)
    except ValidationError as exc:
        err = first_error(exc)
        dotted = loc_name(error_loc(err), merged, err["type"])
        missing_from = dotted.rpartition(".")[0] if err["type"] == "missing" else ""
        made_by_flags = (  # a key missing from a section the file never wrote, a flag made
            bool(missing_from)
            and not isinstance(_lookup(data, missing_from), dict)
            and _set_by(flags, missing_from)
        )
        if _set_by(flags, dotted) or made_by_flags or file is None:
            raise validation_error(exc, merged, None, COMMAND_LINE) from None
        raise validation_error(exc, merged, node, file) from None


def locate(exc: Exception, config_file: str | None, flags: list[str]) -> Exception:
    """An InputError a later step raised about a config key (a model that cannot load, a
    source that is empty), blamed where that key was set: the command line when a flag set
    it or a key above it (or made the section the key belongs to, which the file never
    wrote), else the config file at the key's line. An error that
    already names another file (a data file at its line) is returned as it is."""
    if not isinstance(exc, InputError) or not exc.field or exc.file not in (None, config_file):
        return exc
    dotted = exc.field
    if not config_file or any(dotted == f or dotted.startswith(f + ".") for f in flags):
        return InputError(exc.message, file=COMMAND_LINE, field=dotted)
    if exc.line is not None:
        return exc
    loc = tuple(int(p) if p.isdigit() else p for p in dotted.split("."))
    try:
        doc: YamlDoc | None = read_yaml(config_file)
    except InputError:
        doc = None
    section = dotted.rpartition(".")[0]
    if (  # a key of a section the file never wrote, that flags made
        doc is not None
        and section
        and _lookup(doc.data, dotted) is None
        and not isinstance(_lookup(doc.data, section), dict)
        and _set_by(flags, section)
    ):
        return InputError(exc.message, file=COMMAND_LINE, field=dotted)
    line = line_of(doc.node, loc) if doc is not None else None
    return InputError(exc.message, file=config_file, line=line, field=dotted)


@dataclass
class Loaded(Generic[M]):
    """A validated config, the config file it came from (or None), whether help was asked,
    and the dotted keys the command line set (for `locate`)."""

    config: M
    config_file: str | None
    help: bool
    flags: list[str] = field(default_factory=list)


def load(schema: type[M], argv: list[str]) -> Loaded[M]:
    """`[--config FILE] [--a.b value ...]` -> validated config (defaults when help is asked)."""
    cli = parse_command_line(list(argv), schema)
    if cli.help:
        return Loaded(schema(), cli.config, True, cli.flags)
    doc = read_yaml(cli.config) if cli.config else YamlDoc({}, None, COMMAND_LINE)
    file = cli.config if cli.config else None
    config = validate(schema, doc.data, file=file, node=doc.node, overrides=cli)
    return Loaded(config, cli.config, False, cli.flags)


# ---------------------------------------------------------------- help


def type_text(annotation: Any) -> str:
    """A short human name of a field type."""
    origin = typing.get_origin(annotation)
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        return annotation.__name__
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        disc = next(
            (getattr(e, "discriminator", None) for e in extra if getattr(e, "discriminator", None)),
            None,
        )
        return f"mapping chosen by `{disc}`" if isinstance(disc, str) else type_text(inner)
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " | ".join(type_text(a) for a in typing.get_args(annotation))
    if origin is list:
        args = typing.get_args(annotation)
        return f"list of {type_text(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    text = str(annotation).replace("typing.", "")
    return text if len(text) <= 60 else text[:57] + "..."


def default_text(info: FieldInfo) -> str:
    """A field's default as JSON ('required' when it has none)."""
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    return _json_text(value)


def _json_text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 70 else text[:67] + "..."


def help_rows(
    schema: type[BaseModel], prefix: str = "", defaults: BaseModel | None = None
) -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, description) of every key, sections expanded in place;
    a section row has type 'section' and default 'required' or '(section)'. A section whose default is an instance with its own
    values (the build's `model` block batches 64, not the class's 16) shows those values."""
    rows: list[tuple[str, str, str, str]] = []
    for name, info in fields_of(schema).items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        sub = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
        if sub is None:
            default = default_text(info)
            if defaults is not None and name in type(defaults).model_fields:
                default = _json_text(getattr(defaults, name))
            rows.append((key, type_text(annotation), default, info.description or ""))
            continue
        kind = "required" if info.is_required() else "(section)"
        rows.append((key, "section", kind, info.description or ""))
        rows.extend(help_rows(sub, key + ".", _default_value(info)))
    return rows


def _default_value(info: FieldInfo) -> BaseModel | None:
    """A section field's default instance, if it has one."""
    value = None if info.is_required() else info.get_default(call_default_factory=True)
    return value if isinstance(value, BaseModel) else None


def help_text(
    schema: type[BaseModel], *, usage: str, intro: list[str] = (), footer: list[str] = ()
) -> str:
    """A command's full --help: usage, intro lines, every key of the schema, footer lines."""
    out = [
        usage,
        "",
        *intro,
        "",
        "  --config FILE        YAML config (keys as below)",
        "  --help               this text",
        "",
    ]
    for key, typ, default, desc in help_rows(schema):
        if typ == "section":
            # a required section must appear, in the file or as one of its flags
            need = "  (required: set it in the config or by one of its flags)"
            out.append(f"  [{key}]{need if default == 'required' else ''}  {desc}")
            continue
        out.append(f"  --{key}  ({typ}; default {default})")
        out.extend(textwrap.wrap(desc, 96, initial_indent="      ", subsequent_indent="      "))
    if footer:
        out += ["", *footer]
    return "\n".join(out)


def describe_model(
    cls: type[BaseModel], *, skip: tuple[str, ...] = (), width: int = 96
) -> list[str]:
    """`key (default)` then its wrapped description, for every field of one model class."""
    out: list[str] = []
    for name, info in fields_of(cls).items():
        if name in skip:
            continue
        out.append(f"    {name} ({default_text(info)})")
        out.extend(
            textwrap.wrap(
                info.description or "", width, initial_indent=" " * 8, subsequent_indent=" " * 8
            )
        )
    return out
