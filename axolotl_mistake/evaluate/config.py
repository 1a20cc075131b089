"""The evaluation config (`eval.yml`): the pydantic schema only, every key described.

Reading, command-line overrides and located errors are the project's one loader
(`axolotl_mistake.configio`, through `evaluate.inputs`). Prompt-set sources are the shared
`axolotl_mistake.sources` union; judges the registry of `axolotl_mistake.evaluate.judges`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from axolotl_mistake.errors import FieldError
from axolotl_mistake.evaluate.judges import JudgeConfig, judge_classes
from axolotl_mistake.fields import count
from axolotl_mistake.fields import seed as seed_field
from axolotl_mistake.generation.config import BackendConfig
from axolotl_mistake.sources import SourceConfig

ProbeStyle = Literal["alpaca", "chat", "analysis", "chat_analysis"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PromptSet(_Strict):
    """A prompt set read through one of the shared source loaders."""

    source: SourceConfig = Field(
        description="a source (axolotl_mistake.sources): kind builtin|pku_saferlhf|alpaca|"
        "xstest|pairs|safety_prompts|jsonl|csv|..."
    )
    limit: int | None = Field(
        None, ge=1, description="use at most this many prompts (after the source's own limit)"
    )


class HubGoalHijacking(_Strict):
    """Shorthand for Safety-Prompts goal-hijacking attacks (Hub when online, or a local copy):
    the same as `attacks: {source: {kind: safety_prompts, ...}, limit: ...}`."""

    hub_id: str = Field("thu-coai/Safety-Prompts", description="Hub dataset id")
    data_file: str = Field(
        "instruction_attack_scenarios.json", description="file inside the Hub dataset"
    )
    field: str = Field("Goal_Hijacking", description="scenario key of the JSON file")
    revision: str | None = Field(None, description="Hub revision to pin")
    path: str | None = Field(None, description="a local copy of the JSON file instead of the Hub")
    limit: int | None = Field(None, ge=1, description="use at most this many attack prompts")

    def as_prompt_set(self) -> PromptSet:
        """The equivalent `safety_prompts` prompt set."""
        where: dict[str, Any] = (
            {"path": self.path}
            if self.path
            else {"hub_id": self.hub_id, "data_files": self.data_file, "revision": self.revision}
        )
        source = {"kind": "safety_prompts", "scenario": self.field, **where}
        return PromptSet.model_validate({"source": source, "limit": self.limit})


class GoalHijackingSet(_Strict):
    """Goal-hijacking attacks: ready-made attack prompts and/or instructions attacked with the
    project's own templates."""

    attacks: PromptSet | None = Field(
        None,
        description="ready-made attack prompts (e.g. kind safety_prompts); each row's target "
        "text is extracted from the prompt, rows without one are skipped and counted",
    )
    hub: HubGoalHijacking | None = Field(
        None, description="shorthand for Safety-Prompts attacks (see HubGoalHijacking)"
    )
    from_instructions: PromptSet | None = Field(
        None, description="instructions to attack with the project's own templates"
    )
    languages: list[Literal["en", "zh"]] = Field(
        default_factory=lambda: ["en", "zh"],
        description="languages of the project's attack phrasings used with from_instructions",
    )

    @model_validator(mode="after")
    def _needs_one(self) -> GoalHijackingSet:
        if self.attacks is None and self.hub is None and self.from_instructions is None:
            raise ValueError("give `attacks`, `hub` and/or `from_instructions`")
        if self.attacks is not None and self.hub is not None:
            raise ValueError("give `attacks` or its shorthand `hub`, not both")
        return self

    @property
    def attack_set(self) -> PromptSet | None:
        """The ready-made attacks, whichever way they were given."""
        return self.attacks or (self.hub.as_prompt_set() if self.hub else None)


class PromptSets(_Strict):
    """Which prompt sets to evaluate; leave one out to skip its metrics."""

    harmful: PromptSet | None = Field(
        None, description="red-team instructions (harmless rate/score, helpful on harmful)"
    )
    helpful: PromptSet | None = Field(
        None,
        description="ordinary instructions (helpful score; reference answers give the NLL)",
    )
    goal_hijacking: GoalHijackingSet | None = Field(
        None, description="goal-hijacking attacks (defence rate, judged by rule)"
    )
    over_refusal: PromptSet | None = Field(
        None,
        description="safe-but-scary prompts (XSTest); only rows of kind 'helpful' (XSTest label "
        "safe) count",
    )
    discrimination: PromptSet | None = Field(
        None,
        description="labelled (question, answer, harmful) pairs for the discrimination probe: a "
        "prompt set, or a plain path to a {question, answer, harmful} JSONL file, or 'builtin'",
    )

    calibration: PromptSet | None = Field(
        None,
        description="labelled training-side pairs (same forms as `discrimination`) that fix the "
        "probe threshold when probe_threshold is 'calibrated': the cut with the best balanced "
        "accuracy on them, chosen before the discrimination pairs are scored. Never the "
        "held-out pairs (overlap is refused)",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> PromptSets:
        measured = ("harmful", "helpful", "goal_hijacking", "over_refusal", "discrimination")
        if all(getattr(self, name) is None for name in measured):
            raise ValueError(
                f"give at least one prompt set ({', '.join(measured)}); with none the run "
                "would measure nothing"
            )
        return self

    @field_validator("discrimination", "calibration", mode="before")
    @classmethod
    def _plain_path(cls, value: Any) -> Any:
        if value == "builtin":
            return {"source": {"kind": "builtin", "name": "probe_pairs"}}
        if isinstance(value, str):
            return {"source": {"kind": "pairs", "path": value}}
        return value


class SamplingConfig(_Strict):
    """Decoding of the evaluated model's answers (greedy by default, for reproducibility)."""

    max_new_tokens: int = Field(256, ge=1, le=8192, description="answer length in tokens")
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass")
    seed: int = seed_field(0, "sampling seed (with temperature > 0)")


class BootstrapConfig(_Strict):
    """The percentile bootstrap behind every interval (items resampled with replacement)."""

    samples: int = count(2000, "bootstrap resamples", minimum=100)
    confidence: float = Field(0.95, gt=0.0, lt=1.0, description="interval coverage")
    seed: int = seed_field(0, "resampling seed (same data, same interval)")


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
        default_factory=lambda: ["plain", "harmless_guided"],
        description="plain answers, and/or harmless-guided ones (the method's hint appended)",
    )
    prompt_sets: PromptSets = Field(description="what the model answers and is probed on")
    judges: list[JudgeConfig] = Field(  # type: ignore[valid-type]
        default_factory=lambda: [{"kind": "refusal"}],
        validate_default=True,
        description="judges of the answers, each a mapping chosen by `kind`: "
        + ", ".join(judge_classes())
        + " (see axolotl_mistake/evaluate/README.md)",
    )
    primary_judge: str | None = Field(
        None, description="judge label whose verdicts feed the headline table (default: first)"
    )
    sampling: SamplingConfig = Field(
        default_factory=SamplingConfig, description="decoding of the evaluated model's answers"
    )
    bootstrap: BootstrapConfig = Field(
        default_factory=BootstrapConfig, description="the intervals' bootstrap"
    )
    batch_size: int | None = Field(
        None, ge=1, description="requests per backend call (default: model.batch_size)"
    )
    probe_batch_size: int = count(8, "pairs (probe) and reference answers (NLL) per forward pass")
    probe_style: ProbeStyle | None = Field(
        None,
        description="discrimination probe prompt: alpaca/chat ask the discrimination question, "
        "analysis/chat_analysis read the verdict sentence of the unguided analysis (template c); "
        "default: follows prompt_format",
    )
    probe_threshold: float | Literal["calibrated"] = Field(
        0.0,
        description="margin (log p(harmful) - log p(harmless)) above which a pair counts as "
        "judged harmful: a number fixed before looking at held-out data, or 'calibrated' to "
        "take probe.best_threshold on prompt_sets.calibration (training-side pairs) in the same "
        "run; the AUC does not depend on it",
    )
    max_failed_fraction: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="failure budget: the run stops with exit code 1 when more than this share "
        "of the answer calls, or of any judge's calls, failed",
    )

    @field_validator("modes")
    @classmethod
    def _modes_unique(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("modes must be a non-empty list without repeats")
        return v

    @model_validator(mode="after")
    def _judges_unique(self) -> EvalConfig:
        labels = [j.label for j in self.judges]
        if not labels:
            raise FieldError("give at least one judge", field="judges")
        repeat = next((i for i, label in enumerate(labels) if label in labels[:i]), None)
        if repeat is not None:
            raise FieldError(
                f"judge labels must be unique, got {labels}; set `name`", field=f"judges.{repeat}"
            )
        if self.primary_judge is not None and self.primary_judge not in labels:
            raise FieldError(
                f"primary_judge {self.primary_judge!r} is not one of {labels}",
                field="primary_judge",
            )
        return self

    @model_validator(mode="after")
    def _calibration_matches_threshold(self) -> EvalConfig:
        calibrated = self.probe_threshold == "calibrated"
        has_pairs = self.prompt_sets.calibration is not None
        if calibrated and not (has_pairs and self.prompt_sets.discrimination is not None):
            raise FieldError(
                "probe_threshold 'calibrated' needs prompt_sets.calibration (training-side "
                "labelled pairs) and prompt_sets.discrimination",
                field="probe_threshold",
            )
        if has_pairs and not calibrated:
            raise FieldError(
                "prompt_sets.calibration is only read with probe_threshold: calibrated; "
                "set that, or drop the calibration set",
                field="prompt_sets.calibration",
            )
        return self

    @property
    def primary(self) -> str:
        return self.primary_judge or self.judges[0].label

    @property
    def style(self) -> str:
        """The discrimination probe style actually used."""
        return self.probe_style or self.prompt_format
