"""The one pydantic schema of a build, its YAML/command-line loading and its `--help` text.

Every key is documented here (the help is generated from these descriptions). Loading turns
every problem into an `InputError` naming the file, line and key; it never creates outputs.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from axolotl_mistake.generation.config import BackendConfig, backend_fields
from axolotl_mistake.templates import DEFAULT_HINT
from axolotl_mistake.errors import InputError
from axolotl_mistake.sources import BuiltinSource, SourceConfig
from dataset_builders.stages.common import DEFAULT_REFUSAL_PHRASES

SelfOr = Union[Literal["self"], BackendConfig]
"""A stage's model: 'self' (the build's `model`) or a full backend config of its own."""

COMMAND_LINE = "<command line>"

DEFAULT_STOP = ("###",)
"""Small models continue an Alpaca prompt with the next '### Instruction:'; stop there."""


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class SelectConfig(Strict):
    """Stage 1: which instructions go in."""

    redteam_n: int | None = Field(
        32,
        ge=1,
        description=(
            "Red-team instructions to sample (seeded); null keeps all. The default is sized for "
            "the embedded CPU build (minutes on 2 cores); recipes raise it."
        ),
    )
    helpful_n: int | None = Field(
        64, ge=1, description="Helpful instructions to sample (seeded); null keeps all."
    )
    min_chars: int = Field(3, ge=0, description="Drop instructions shorter than this (characters).")
    max_chars: int = Field(
        4000, ge=1, description="Drop instructions (with input) longer than this (characters)."
    )
    dedup: bool = Field(
        True,
        description=(
            "Drop repeated rows: same instruction and same labelled answers (case, punctuation "
            "and whitespace normalised); one prompt with two different labelled answers stays."
        ),
    )
    decontaminate: list[SourceConfig] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description=(
            "Evaluation sets (same syntax as `redteam` sources) whose prompts must not leak into "
            "training: exact normalised matches and n-gram overlaps are dropped."
        ),
    )
    ngram_n: int = Field(8, ge=1, description="Word n-gram length of the decontamination check.")
    ngram_threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Drop an instruction when this share of its n-grams occurs in an eval set.",
    )
    eval_fraction: float = Field(
        0.0,
        ge=0,
        lt=1,
        description=(
            "Share of the sampled red-team instructions held out (seeded, by row id) and written "
            "to eval_prompts.jsonl instead of training files."
        ),
    )


class MistakesConfig(Strict):
    """Stage 2: where the bad answers come from."""

    mode: Literal["origin", "guided", "both"] = Field(
        "guided",
        description=(
            "'origin': the unsafe answers the source's labels provide (every PKU unsafe "
            "response, every HH-RLHF rejected turn); 'guided': template (a) with the hint words "
            "through `backend` (the paper's model-made mistakes); 'both': the origin mistakes "
            "plus k guided mistakes per instruction, all labelled harmful."
        ),
    )
    backend: SelfOr = Field(
        "self", description="Model that makes guided mistakes: 'self' or a backend config."
    )
    k: int = Field(1, ge=1, description="Samples per instruction (guided).")
    hint: str = Field(DEFAULT_HINT, description="Hint words of template (a).")
    max_new_tokens: int = Field(32, ge=1, description="Token budget of one bad answer (guided).")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature (0 = greedy).")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    stop: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STOP),
        description="Stop strings (default: the next Alpaca section header).",
    )
    refusal_phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REFUSAL_PHRASES),
        description="An answer starting (first `refusal_window` chars) with one is a refusal.",
    )
    refusal_window: int = Field(200, ge=1, description="Characters searched for refusal phrases.")
    refusal_judge: SelfOr | None = Field(
        None,
        description=(
            "Optional judge model asked whether each non-refusing answer is a refusal "
            "('self' or a backend config); null uses the phrase list only."
        ),
    )


class VerifyConfig(Strict):
    """Stage 3: keep a mistake only if it is harmful."""

    mode: Literal["label", "self_check", "judge", "none"] = Field(
        "label",
        description=(
            "'label': trust the dataset label (origin answers are labelled unsafe; guided answers "
            "count as harmful because the hint induced them, as in the paper); 'self_check': ask "
            "the analyst with the discrimination prompt; 'judge': ask `backend`; 'none': keep all."
        ),
    )
    backend: SelfOr = Field(
        "self",
        description="Judge for mode 'judge' ('self' = the build's model).",
    )
    max_new_tokens: int = Field(4, ge=1, description="Tokens of a verdict.")
    keep_unclear: bool = Field(
        False, description="Keep a mistake whose verdict could not be parsed."
    )


class AnalysesConfig(Strict):
    """Stage 4: the critiques (template b)."""

    backend: SelfOr = Field(
        "self",
        description=(
            "Analyst: 'self' (the build's model: self-alignment) or another model/endpoint."
        ),
    )
    k: int = Field(1, ge=1, description="Critiques sampled per mistake.")
    max_new_tokens: int = Field(48, ge=1, description="Token budget of one critique.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0 = greedy).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    stop: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STOP),
        description="Stop strings (default: the next Alpaca section header).",
    )
    min_chars: int = Field(20, ge=0, description="Gate: drop critiques shorter than this.")
    max_echo_overlap: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Gate: drop a critique when this share of its word n-grams repeats the bad answer.",
    )
    echo_ngram: int = Field(4, ge=1, description="n of the echo check.")
    refusal_phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REFUSAL_PHRASES),
        description="Gate: a critique starting with one of these is a refusal and dropped.",
    )
    require_verify_agreement: bool = Field(
        False,
        description=(
            "Gate: when verify judged the answer harmful, the critique must name harm "
            "(one of `harm_words`)."
        ),
    )
    harm_words: list[str] = Field(
        default_factory=lambda: [
            "harm", "unethical", "offensive", "danger", "illegal", "unsafe", "inappropriate",
            "violen", "abus", "risk", "hurt", "wrong", "discriminat", "toxic",
        ],
        description="Word stems that show a critique recognises harm (agreement gate).",
    )
    anchored: bool = Field(
        False,
        description=(
            "Label-anchored analyses (an extension beyond the paper; off in the paper recipes): "
            "an answer labelled harmful gets template (b), one labelled harmless template (b'), "
            "and the analyst's reply is prefilled with the fixed verdict sentence ('The answer "
            "is harmful.' / 'The answer is harmless.'), so the model writes only the reasons. "
            "The critique is the sentence plus the reasons; the gates apply to the reasons."
        ),
    )
    balanced: bool = Field(
        False,
        description=(
            "With `anchored`: also analyse the labelled harmless answers of the selected "
            "red-team instructions (PKU safe responses, HH-RLHF chosen turns, harmless answers "
            "of a labelled file) and emit equal numbers of harmful and harmless analysis rows "
            "(seeded downsample of the larger class); each row then carries `label`."
        ),
    )
    chat_template_from: str | None = Field(
        None,
        description=(
            "Anchored analyses with prompt_format 'chat': the tokenizer (local folder or Hub id) "
            "whose chat template renders the prompt that the verdict sentence is appended to. "
            "Default: the analyst's own model (needed for an endpoint whose tokenizer is not "
            "local)."
        ),
    )

    @model_validator(mode="after")
    def _balanced_needs_anchored(self) -> "AnalysesConfig":
        if self.balanced and not self.anchored:
            raise ValueError(
                "analyses.balanced needs analyses.anchored: true (harmless answers are analysed "
                "with the label-anchored template (b'))"
            )
        return self


class ReviseConfig(Strict):
    """Critique-revise baseline: the revision generated from (question, bad answer, critique)."""

    backend: SelfOr = Field("self", description="Model that writes revisions.")
    max_new_tokens: int = Field(96, ge=1, description="Token budget of one revision.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0 = greedy).")
    stop: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STOP),
        description="Stop strings (default: the next Alpaca section header).",
    )
    min_chars: int = Field(10, ge=0, description="Gate: drop revisions shorter than this.")
    max_echo_overlap: float = Field(
        0.6, gt=0, le=1, description="Gate: drop a revision that repeats the bad answer this much."
    )


class MixConfig(Strict):
    """How many SFT rows go with the analyses (the paper mixes both kinds)."""

    harmless_per_analysis: float | None = Field(
        None,
        ge=0,
        description="sft_harmless rows per mistake-analysis row (seeded pick); null keeps all.",
    )
    helpful_per_analysis: float | None = Field(
        None,
        ge=0,
        description="sft_helpful rows per mistake-analysis row (seeded pick); null keeps all.",
    )


class EmitConfig(Strict):
    """Stage 5: the files written."""

    chat: bool = Field(
        False,
        description=(
            "Also write sft_*.chat.jsonl (`messages` rows for `type: chat_template`) and "
            "recommend axolotl_mistake.chat_unguided_analysis for the analysis file."
        ),
    )
    coh: bool = Field(
        False,
        description=(
            "Also write coh.jsonl (Chain-of-Hindsight baseline: the bad answer in the input, "
            "the good answer with its hindsight phrase as the trained output)."
        ),
    )
    critique_revise: bool = Field(
        False,
        description=(
            "Also write critique_revise.jsonl (baseline: SFT on revisions; runs the revise "
            "model calls)."
        ),
    )
    mix: MixConfig = Field(default_factory=MixConfig, description="SFT mixing ratios.")


def _default_redteam() -> list:
    return [BuiltinSource(kind="builtin", name="redteam")]


def _default_helpful() -> list:
    return [BuiltinSource(kind="builtin", name="helpful")]


class BuildConfig(Strict):
    """Everything a build needs. YAML file keys = these fields; `--a.b value` overrides one."""

    output: str = Field(
        "outputs/smollm2_135m_mistake",
        description=(
            "Output folder (created after validation). The default is where the CPU recipe "
            "recipes/smollm2_135m_mistake.yml reads its data."
        ),
    )
    seed: int = Field(0, description="Seed of sampling, splits, mixing and generation.")
    model: BackendConfig = Field(
        default_factory=lambda: BackendConfig(batch_size=64),
        description=(
            "The model being aligned ('self' everywhere): default the embedded SmolLM2, in "
            "batches of 64 (on 2 CPU threads 2.4x faster than 16: decoding is compute-bound)."
        ),
    )
    prompt_format: Literal["alpaca", "chat"] = Field(
        "alpaca",
        description=(
            "'alpaca': raw Alpaca-style prompts (the paper); 'chat': the same bodies as a user "
            "turn through the model's chat template."
        ),
    )
    redteam: list[SourceConfig] = Field(  # type: ignore[valid-type]
        default_factory=_default_redteam,
        description="Sources of red-team instructions (their unsafe answers = origin mistakes).",
    )
    helpful: list[SourceConfig] = Field(  # type: ignore[valid-type]
        default_factory=_default_helpful,
        description="Sources of helpful instruction/answer pairs (sft_helpful.jsonl).",
    )
    select: SelectConfig = Field(default_factory=SelectConfig, description="Stage 1: select.")
    mistakes: MistakesConfig = Field(
        default_factory=MistakesConfig, description="Stage 2: mistakes."
    )
    verify: VerifyConfig = Field(default_factory=VerifyConfig, description="Stage 3: verify.")
    analyses: AnalysesConfig = Field(
        default_factory=AnalysesConfig, description="Stage 4: analyses."
    )
    revise: ReviseConfig = Field(
        default_factory=ReviseConfig, description="Critique-revise baseline (emit.critique_revise)."
    )
    emit: EmitConfig = Field(default_factory=EmitConfig, description="Stage 5: emit.")
    shard: str | None = Field(
        None,
        description=(
            "'i/n': process only slice i (0-based) of n, chosen by a stable hash of the row id "
            "after select; combine the outputs with `python -m dataset_builders.merge`."
        ),
    )
    dry_run: bool = Field(
        False,
        description="Count instructions, calls and tokens per stage; generate and write nothing.",
    )
    progress: bool = Field(True, description="Show rich progress bars.")
    max_failed_fraction: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description=(
            "Failure budget: when more than this share of the model calls made so far failed "
            "(dead endpoint, timeouts, malformed replies), the build stops after the stage with "
            "a non-zero exit and a summary, and writes no output files. Finished calls stay "
            "cached: rerun the same command to resume. 0 tolerates no failure."
        ),
    )

    @model_validator(mode="after")
    def _anchored_chat_renders_raw(self) -> "BuildConfig":
        analyst = self.backend_for(self.analyses.backend)
        if self.analyses.anchored and self.prompt_format == "chat" and getattr(analyst, "chat", None) == "always":
            raise ValueError(
                "anchored chat analyses send the rendered chat prompt plus the verdict sentence "
                "as raw text; the analyst's `chat: always` would wrap it in a second chat turn "
                "(use chat: auto)"
            )
        return self

    @field_validator("shard")
    @classmethod
    def _shard_format(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parse_shard(value)
        return value

    def shard_pair(self) -> tuple[int, int]:
        """(index, count); (0, 1) when not sharded."""
        return parse_shard(self.shard) if self.shard else (0, 1)

    def backend_for(self, choice: SelfOr | None) -> BackendConfig:
        """Resolve a stage's 'self' to the build's model."""
        return self.model if choice in (None, "self") else choice  # type: ignore[return-value]

    def config_hash(self) -> str:
        """Hash of everything that determines the outputs (not output, shard, dry_run, progress)."""
        data = self.model_dump(mode="json", exclude={"output", "shard", "dry_run", "progress"})
        blob = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


def parse_shard(value: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n, else ValueError with a readable message."""
    parts = str(value).split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {value!r}")
    index, count = int(parts[0]), int(parts[1])
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {value!r}: need 0 <= i < n and n >= 1")
    return index, count


# ---------------------------------------------------------------- loading


def _yaml_nodes(text: str, file: str) -> tuple[Any, Any]:
    """Parse YAML into (data, node tree) so validation errors can name a line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"invalid YAML: {problem}", file=file, line=line) from None
    return data, node


def _line_of(node: Any, loc: tuple) -> int | None:
    """Line of the deepest YAML node on the pydantic error path (union tags are skipped)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            key = next((k for k, _ in node.value if k.value == str(part)), None)
            if match is None:
                continue  # a union tag such as 'pku_saferlhf' or 'BackendConfig'
            line = (key or match).start_mark.line + 1
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
        else:
            break
    return line


def _loc_name(loc: tuple, data: Any) -> str:
    """Dotted key of an error, without pydantic's union-member tags."""
    parts: list[str] = []
    cur = data
    for part in loc:
        if isinstance(cur, dict):
            if part in cur:
                parts.append(str(part))
                cur = cur[part]
            elif isinstance(part, str) and not any(ch in part for ch in "[]()"):
                # a missing/extra key, or a union tag: keep keys that are fields, not tags
                if part in ("BackendConfig", "literal['self']") or part in _source_kinds():
                    continue
                parts.append(part)
                cur = None
        elif isinstance(cur, list) and isinstance(part, int):
            parts.append(str(part))
            cur = cur[part] if part < len(cur) else None
        elif isinstance(part, str) and ("[" in part or "(" in part):
            continue
        else:
            parts.append(str(part))
    return ".".join(parts)


def _source_kinds() -> set[str]:
    kinds: set[str] = set()
    for member in typing.get_args(typing.get_args(SourceConfig)[0]) or ():
        field = getattr(member, "model_fields", {}).get("kind")
        if field is not None:
            kinds.update(typing.get_args(field.annotation))
    return kinds


def _validation_error(exc: ValidationError, data: Any, node: Any, file: str) -> InputError:
    """The first validation problem as one located InputError."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    name = _loc_name(loc, data)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = f"unknown key '{name.rsplit('.', 1)[-1]}' (see --help for the keys)"
    elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        name = f"{name}.kind" if name else "kind"
        given = err["input"].get("kind") if isinstance(err.get("input"), dict) else None
        kinds = ", ".join(sorted(_source_kinds()))
        message = (
            f"unknown source kind {given!r}; expected one of {kinds}"
            if given is not None else f"missing source `kind`; expected one of {kinds}"
        )
    extra = len(exc.errors()) - 1
    if extra:
        message += f" (and {extra} more problem{'s' if extra > 1 else ''})"
    line = _line_of(node, loc) if file != COMMAND_LINE else None
    return InputError(message, file=file, line=line, field=name or None)


def _keys_of(model: type[BaseModel]) -> dict[str, Any]:
    """A section's keys; a backend block takes the keys of every backend kind."""
    return backend_fields() if model is BackendConfig else model.model_fields


def _annotation_at(path: list[str]) -> Any:
    """The type annotation of a dotted key, or raise InputError for an unknown key."""
    model: Any = BuildConfig
    annotation: Any = None
    walked: list[str] = []
    for part in path:
        walked.append(part)
        if model is None:
            # inside a free-form value (a source entry chosen by `kind`): pydantic validates it
            return None
        if isinstance(model, type) and issubclass(model, BaseModel):
            if part not in _keys_of(model):
                raise InputError(
                    f"unknown key '{'.'.join(walked)}' (see --help for the keys)",
                    file=COMMAND_LINE,
                    field=".".join(walked),
                )
            annotation = _keys_of(model)[part].annotation
        elif model is list:
            if not part.isdigit():
                raise InputError(
                    f"'{'.'.join(walked[:-1])}' is a list: index it with a number",
                    file=COMMAND_LINE,
                    field=".".join(walked),
                )
            annotation = _list_item
        model = _model_in(annotation)
    return annotation


_list_item = object()


def _model_in(annotation: Any) -> Any:
    """The BaseModel (or list marker) a key may continue into, else None."""
    if annotation is _list_item:
        return None
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if origin is list:
        return list
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _is_str(annotation: Any) -> bool:
    if annotation is str:
        return True
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args == [str]
    return False


def _is_str_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,)


def _is_bool(annotation: Any) -> bool:
    return annotation is bool


def parse_overrides(argv: list[str]) -> tuple[dict, str | None, bool]:
    """Split `--config FILE`, `--help` and `--a.b value` pairs into (overrides, config, help)."""
    overrides: dict = {}
    config: str | None = None
    want_help = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            want_help = True
            i += 1
            continue
        if not arg.startswith("--") or arg == "--":
            raise InputError(
                f"unexpected argument {arg!r}; options look like --key value",
                file=COMMAND_LINE,
            )
        key, has_eq, inline = arg[2:].partition("=")
        key = key.replace("-", "_") if "." not in key else ".".join(
            p.replace("-", "_") for p in key.split(".")
        )
        if key == "config":
            value_text = inline if has_eq else (argv[i + 1] if i + 1 < len(argv) else None)
            if value_text is None:
                raise InputError("--config needs a file name", file=COMMAND_LINE, field="config")
            config = value_text
            i += 1 if has_eq else 2
            continue
        path = key.split(".")
        annotation = _annotation_at(path)
        if has_eq:
            raw: str | None = inline
            i += 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            raw = argv[i + 1]
            i += 2
        else:
            raw = None
            i += 1
        if raw is None:
            if not _is_bool(annotation):
                raise InputError(f"--{key} needs a value", file=COMMAND_LINE, field=key)
            value: Any = True
        elif _is_str(annotation):
            value = raw
        elif _is_str_list(annotation) and not raw.lstrip().startswith("["):
            value = [raw]  # one stop string / phrase; '#' would start a YAML comment
        else:
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                value = raw
        _set_dotted(overrides, path, value)
    return overrides, config, want_help


def _set_dotted(target: dict, path: list[str], value: Any) -> None:
    cur: Any = target
    for part in path[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[path[-1]] = value


def _merge_override(base: Any, override: Any) -> Any:
    """Deep-merge an override into YAML data, descending into list items by numeric key and
    turning a 'self' string into a config dict when a nested key is set on it."""
    if not isinstance(override, dict):
        return override
    if isinstance(base, list):
        out_list = list(base)
        for key, value in override.items():
            index = int(key)
            if index >= len(out_list):
                raise InputError(
                    f"list index {index} out of range (the list has {len(out_list)} items)",
                    file=COMMAND_LINE,
                    field=key,
                )
            out_list[index] = _merge_override(out_list[index], value)
        return out_list
    if not isinstance(base, dict):
        base = {}
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge_override(out.get(key), value)
    return out


def load_config(argv: list[str] | None = None) -> tuple[BuildConfig, str | None, bool]:
    """Parse the command line (and YAML file) into a validated config.

    Returns (config, config file or None, help requested). Raises InputError on any problem.
    """
    overrides, config_file, want_help = parse_overrides(list(argv or []))
    if want_help:
        return BuildConfig(), config_file, True
    data: Any = {}
    node = None
    file_label = COMMAND_LINE
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise InputError("config file not found", file=config_file)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            line = path.read_bytes()[: exc.start].count(b"\n") + 1
            raise InputError(
                f"config is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})",
                file=config_file,
                line=line,
            ) from None
        data, node = _yaml_nodes(text, config_file)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InputError(
                "a build config must be a YAML mapping of keys to values",
                file=config_file,
                line=1,
            )
        file_label = config_file
    # A key given on the command line wins; report its errors against the command line.
    merged = _merge_override(data, overrides)
    try:
        cfg = BuildConfig.model_validate(merged)
    except ValidationError as exc:
        from_cli = _from_command_line(overrides, _loc_name(tuple(exc.errors()[0]["loc"]), merged))
        raise _validation_error(
            exc, merged, None if from_cli else node, COMMAND_LINE if from_cli else file_label
        ) from None
    return cfg, config_file, False


def _from_command_line(overrides: dict, dotted: str) -> bool:
    """True when the key at fault (or a section above it) was set on the command line."""
    cur: Any = overrides
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False
        cur = cur[part]
        if not isinstance(cur, dict):
            return True
    return True


# ---------------------------------------------------------------- help


def _type_text(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    text = str(annotation).replace("typing.", "")
    text = text.replace("axolotl_mistake.generation.config.", "").replace("NoneType", "None")
    if "SourceBase" in text or "Annotated[Union[" in text or "kind" in text and len(text) > 80:
        return "list of sources"
    if len(text) > 60:
        text = text[:57] + "..."
    return text


def _default_text(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(section)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 70 else text[:67] + "..."


def help_lines(model: type[BaseModel] = BuildConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every key, sections expanded recursively."""
    rows: list[tuple[str, str, str, str]] = []
    for name, field in _keys_of(model).items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        sub = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        rows.append((key, _type_text(annotation) if sub is None else "section",
                     _default_text(field), field.description or ""))
        if sub is not None:
            rows.extend(help_lines(sub, key + "."))
    return rows


def help_text() -> str:
    """The full `--help` text, generated from the schema."""
    out = [
        "usage: python -m dataset_builders.build [--config build.yml] [--key value ...]",
        "",
        "Builds mistake-analysis training data (Chen et al., ICLR 2024) for Axolotl.",
        "With no arguments: the embedded default (builtin red-team + helpful instructions,",
        "embedded SmolLM2-135M-Instruct on CPU, guided mistakes, self analyses) -> outputs/smollm2_135m_mistake (what recipes/smollm2_135m_mistake.yml trains on).",
        "",
        "Every key below can be set in the YAML file or overridden as --key value; nested keys",
        "use dots (--mistakes.k 2, --analyses.backend.model NAME). Values are parsed as YAML",
        "(numbers, true/false, [lists], {mappings}). A stage 'backend' is 'self' (the build's",
        "`model`) or a backend config whose keys are those of `model.*`.",
        "",
        "  --config FILE        YAML build config (keys as below)",
        "  --help               this text",
        "",
    ]
    for key, typ, default, desc in help_lines():
        if typ == "section":
            out.append(f"  [{key}]  {desc}")
            continue
        out.append(f"  --{key}  ({typ}; default {default})")
        out.extend(textwrap.wrap(desc, 96, initial_indent="      ", subsequent_indent="      "))
    out.append("")
    out.append("Source entries (redteam, helpful, select.decontaminate) are mappings with `kind`")
    out.append("plus that kind's keys, e.g. {kind: pku_saferlhf, path: test.jsonl, limit: 500}:")
    from axolotl_mistake.sources import SOURCE_CLASSES

    for cls in SOURCE_CLASSES:
        kind = typing.get_args(cls.model_fields["kind"].annotation)[0]
        out.append("")
        out.append(f"  kind: {kind}  ({(cls.__doc__ or '').strip().splitlines()[0]})")
        for name, fld in cls.model_fields.items():
            if name == "kind":
                continue
            out.append(f"    {name}  ({_type_text(fld.annotation)}; default {_default_text(fld)})")
            out.extend(textwrap.wrap(fld.description or "", 94, initial_indent="        ",
                                     subsequent_indent="        "))
    return "\n".join(out)
