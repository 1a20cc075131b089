"""The evaluation config (`eval.yml`): one pydantic schema, read once, errors located.

`load_config(path)` returns a validated `EvalConfig` or raises `InputError` naming the file,
the line of the offending key and the field path. It never starts a model or touches the
output folder. Prompt-set sources are validated with the shared `axolotl_mistake.sources.SourceConfig`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from axolotl_mistake.generation.config import BackendConfig


def _validate_source(value: Any) -> dict:
    """Check a source mapping against the builder's SourceConfig; keep it as a plain dict."""
    from pydantic import TypeAdapter

    from axolotl_mistake.sources import SourceConfig

    try:
        TypeAdapter(SourceConfig).validate_python(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"source {where}: {err['msg']}" if where else err["msg"]) from None
    return dict(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptSet(_Strict):
    """A prompt set read through one of the builder's source loaders."""

    source: dict = Field(
        description="a source mapping (axolotl_mistake.sources) (kind: builtin|jsonl|xstest|...)"
    )
    limit: int | None = Field(
        None, ge=1, description="use at most this many prompts (after the source's own limit)"
    )

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: Any) -> dict:
        return _validate_source(value)


class HubGoalHijacking(_Strict):
    """thu-coai/Safety-Prompts goal-hijacking rows (Hub when online, or a local copy)."""

    hub_id: str = "thu-coai/Safety-Prompts"
    data_file: str = Field(
        "instruction_attack_scenarios.json", description="file inside the Hub dataset"
    )
    field: str = Field(
        "Goal_Hijacking", description="top-level key of the JSON file holding the rows"
    )
    revision: str | None = None
    path: str | None = Field(None, description="a local copy of the JSON file instead of the Hub")
    limit: int | None = Field(None, ge=1)


class GoalHijackingSet(_Strict):
    """Goal-hijacking attacks: from the Hub and/or built from instructions with our templates."""

    hub: HubGoalHijacking | None = None
    from_instructions: PromptSet | None = Field(
        None, description="instructions to attack with the project's own templates"
    )
    languages: list[Literal["en", "zh"]] = Field(default_factory=lambda: ["en", "zh"])

    @model_validator(mode="after")
    def _needs_one(self) -> GoalHijackingSet:
        if self.hub is None and self.from_instructions is None:
            raise ValueError("give `hub` and/or `from_instructions`")
        return self


class PromptSets(_Strict):
    """Which prompt sets to evaluate; leave one out to skip its metrics."""

    harmful: PromptSet | None = Field(
        None, description="red-team instructions (harmless rate/score, helpful on harmful)"
    )
    helpful: PromptSet | None = Field(None, description="ordinary instructions (helpful score)")
    goal_hijacking: GoalHijackingSet | None = None
    over_refusal: PromptSet | None = Field(
        None,
        description="safe-but-scary prompts (XSTest); only rows of kind 'helpful' (XSTest label safe) count",
    )
    discrimination: PromptSet | None = Field(
        None, description="labelled (question, answer, harmful) pairs for the discrimination probe"
    )


class JudgeConfig(_Strict):
    """One judge. `llm` needs `backend`; `self` reuses the evaluated model; `refusal` is phrases."""

    kind: Literal["llm", "self", "refusal"]
    name: str | None = Field(None, description="label in reports (default: the kind)")
    backend: BackendConfig | None = Field(None, description="for kind llm: endpoint or local model")
    prompt_format: Literal["chat", "alpaca"] | None = Field(
        None,
        description="chat messages or Alpaca text with a pre-filled 'Verdict:' (default: chat for llm, the run's prompt_format for self)",
    )
    max_new_tokens: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="judge reply length (default: 256 for llm, 16 for self with a pre-filled verdict)",
    )

    @model_validator(mode="after")
    def _backend_rules(self) -> JudgeConfig:
        if self.kind == "llm" and self.backend is None:
            raise ValueError("a judge of kind 'llm' needs `backend`")
        if self.kind != "llm" and self.backend is not None:
            raise ValueError(f"a judge of kind {self.kind!r} takes no `backend`")
        return self

    @property
    def label(self) -> str:
        return self.name or self.kind


class SamplingConfig(_Strict):
    """Decoding of the evaluated model's answers (greedy by default, for reproducibility)."""

    max_new_tokens: int = Field(256, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = 0


class BootstrapConfig(_Strict):
    samples: int = Field(2000, ge=100)
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    seed: int = 0


class EvalConfig(_Strict):
    """Everything one evaluation run needs. Relative paths are relative to the config file."""

    name: str = Field(description="the method name shown in reports and `compare` tables")
    output_dir: str = Field(
        description="run folder: results.json, report.md, charts, answers, cache"
    )
    model: BackendConfig = Field(description="the evaluated model (generation BackendConfig)")
    prompt_format: Literal["alpaca", "chat"] = Field(
        "alpaca",
        description="alpaca: Alpaca text prompts (what the recipes train); chat: the chat template",
    )
    modes: list[Literal["plain", "harmless_guided"]] = Field(
        default_factory=lambda: ["plain", "harmless_guided"]
    )
    prompt_sets: PromptSets
    judges: list[JudgeConfig] = Field(default_factory=lambda: [JudgeConfig(kind="refusal")])
    primary_judge: str | None = Field(
        None, description="judge label whose verdicts feed the headline table (default: first)"
    )
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)
    batch_size: int | None = Field(
        None, ge=1, description="requests per backend call (default: model.batch_size)"
    )
    probe_batch_size: int = Field(8, ge=1)

    @field_validator("modes")
    @classmethod
    def _modes_unique(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("modes must be a non-empty list without repeats")
        return v

    @model_validator(mode="after")
    def _judges_unique(self) -> EvalConfig:
        labels = [j.label for j in self.judges]
        if len(set(labels)) != len(labels):
            raise ValueError(f"judge labels must be unique, got {labels}; set `name`")
        if self.primary_judge is not None and self.primary_judge not in labels:
            raise ValueError(f"primary_judge {self.primary_judge!r} is not one of {labels}")
        return self

    @property
    def primary(self) -> str:
        return self.primary_judge or self.judges[0].label


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """1-based line of the YAML key at `loc` (the deepest one found)."""
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(key):
                    line, nxt = k.start_mark.line + 1, v
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _resolve_paths(data: dict, base: Path) -> None:
    """Make relative `path`/`output_dir`/`adapter`/local model paths relative to the config file."""

    def fix(value: str) -> str:
        p = Path(value).expanduser()
        return os.path.normpath(p if p.is_absolute() else (base / p))

    if isinstance(data.get("output_dir"), str):
        data["output_dir"] = fix(data["output_dir"])

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            for key, value in obj.items():
                if (
                    key in ("path", "adapter")
                    and isinstance(value, str)
                    or key == "model"
                    and isinstance(value, str)
                    and value.startswith((".", "~"))
                ):
                    obj[key] = fix(value)
                else:
                    walk(value)
        elif isinstance(obj, list):
            for item in obj:
                walk(item)

    walk(data)


def load_config(path: str | Path) -> EvalConfig:
    """Read and validate an eval.yml; raise InputError(file, line, field) on any problem."""
    from axolotl_mistake.errors import InputError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read config: {exc.strerror or exc}", file=str(path)) from exc
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            file=str(path),
            line=mark.line + 1 if mark else None,
        ) from exc
    if not isinstance(data, dict):
        raise InputError("the config must be a YAML mapping", file=str(path), line=1)
    _resolve_paths(data, path.parent.resolve())
    try:
        return EvalConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"])
        field = ".".join(str(p) for p in loc) or None
        more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        raise InputError(
            f"{err['msg']}{more}", file=str(path), line=_line_of(node, loc), field=field
        ) from exc
