"""The one pydantic schema of a build: every key, its default and its description.

Only schema: YAML, command-line overrides, errors and `--help` come from the project's one
loader, `axolotl_mistake.configio`. Never reads data, loads models or creates outputs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from axolotl_mistake import configio
from axolotl_mistake.copying import MAX_COPIED_WORDS
from axolotl_mistake.errors import FieldError
from axolotl_mistake.fields import count, share
from axolotl_mistake.fields import seed as seed_field
from axolotl_mistake.generation.config import BackendConfig
from axolotl_mistake.sources import SourceConfig
from axolotl_mistake.sources.builtin import BuiltinSource
from axolotl_mistake.templates import DEFAULT_HINT
from axolotl_mistake.verdicts import REFUSAL_PHRASES, REFUSAL_WINDOW

SelfOr = Literal["self"] | BackendConfig
"""A stage's model: 'self' (the build's `model`) or a full backend config of its own."""

DEFAULT_STOP = ("###",)
"""Small models continue an Alpaca prompt with the next '### Instruction:'; stop there."""


def temperature_field(default: float) -> Any:
    return Field(default, ge=0, description="Sampling temperature (0 = greedy).")


def top_p_field(default: float) -> Any:
    return share(default, "Nucleus sampling mass.")


def stop_field() -> Any:
    return Field(
        default_factory=lambda: list(DEFAULT_STOP),
        description="Stop strings (default: the next Alpaca section header).",
    )


def refusal_phrases_field(description: str) -> Any:
    return Field(default_factory=lambda: list(REFUSAL_PHRASES), description=description)


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SelectConfig(Strict):
    """Stage 1: which instructions go in."""

    redteam_n: int | None = count(
        32,
        "Red-team instructions to sample (seeded); null keeps all. The default is sized for "
        "the embedded CPU build (minutes on 2 cores); recipes raise it.",
    )
    helpful_n: int | None = count(64, "Helpful instructions to sample (seeded); null keeps all.")
    min_chars: int = count(3, "Drop instructions shorter than this (characters).", minimum=0)
    max_chars: int = count(4000, "Drop instructions (with input) longer than this (characters).")
    endpoint_context_tokens: int | None = Field(
        None,
        ge=1,
        description=(
            "Context window (tokens) of endpoint models (kind openai), whose tokenizer is not "
            "local: an instruction whose prompt, plus the text still to be generated into it and "
            "its generation budget, would exceed it (at 3 characters per token) is dropped and "
            "counted before any call. Local models are always bounded by their own context "
            "(`max_context`, measured with their tokenizer). None: endpoints are not bounded "
            "here (the server refuses a too-long prompt, counted as a failed call)."
        ),
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
    ngram_n: int = count(8, "Word n-gram length of the decontamination check.")
    ngram_threshold: float = share(
        0.5,
        "Drop an instruction when this share of its n-grams occurs in an eval set, or when "
        "an eval prompt shorter than ngram_n words occurs whole in it as this share of its "
        "words.",
    )
    eval_fraction: float = Field(
        0.0,
        ge=0,
        lt=1,
        description=(
            "Share of the sampled red-team instructions held out (seeded, by normalised prompt: "
            "rows sharing a prompt stay together) and written to eval_prompts.jsonl instead of "
            "training files."
        ),
    )

    @field_validator("max_chars")
    @classmethod
    def _length_range(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_chars")
        if low is not None and low > value:
            raise ValueError(
                f"select.min_chars ({low}) is greater than select.max_chars ({value}): no "
                "instruction could pass; lower min_chars or raise max_chars"
            )
        return value


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
    k: int = count(1, "Samples per instruction (guided).")
    hint: str = Field(DEFAULT_HINT, description="Hint words of template (a).")
    max_new_tokens: int = count(32, "Token budget of one bad answer (guided).")
    temperature: float = temperature_field(0.7)
    top_p: float = top_p_field(0.95)
    stop: list[str] = stop_field()
    refusal_phrases: list[str] = refusal_phrases_field(
        "An answer starting (first `refusal_window` chars) with one is a refusal."
    )
    refusal_window: int = count(REFUSAL_WINDOW, "Characters searched for refusal phrases.")
    refusal_judge: SelfOr | None = Field(
        None,
        description=(
            "Optional judge model asked whether each non-refusing answer is a refusal "
            "('self' or a backend config); null uses the phrase list only."
        ),
    )
    max_answer_chars: int | None = count(
        None,
        "Labelled answers taken from the data (origin mistakes; with analyses.balanced also the "
        "harmless answers) longer than this are cut at a word boundary and end with '…': the "
        "analyst reads and the analysis row holds the cut answer, so prompts and training rows "
        "stay short on CPU. SFT answers are never cut. null: no cut.",
        minimum=40,
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
    max_new_tokens: int = count(4, "Tokens of a verdict.")
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
    k: int = count(1, "Critiques sampled per mistake.")
    max_new_tokens: int = count(48, "Token budget of one critique.")
    temperature: float = temperature_field(0.0)
    top_p: float = top_p_field(1.0)
    stop: list[str] = stop_field()
    min_chars: int = count(20, "Gate: drop critiques shorter than this.", minimum=0)
    max_echo_overlap: float = share(
        0.6, "Gate: drop a critique when this share of its word n-grams repeats the bad answer."
    )
    echo_ngram: int = count(4, "n of the echo check.")
    max_copied_words: int = count(
        MAX_COPIED_WORDS,
        "Gate: drop a critique that repeats more than this many consecutive words of the bad "
        "answer (words the instruction holds not counted): it would be loss on the answer's "
        "text. The training strategies refuse such rows at the same default.",
    )
    refusal_phrases: list[str] = refusal_phrases_field(
        "Gate: a critique starting with one of these is a refusal and dropped."
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
            "harm",
            "unethical",
            "offensive",
            "danger",
            "illegal",
            "unsafe",
            "inappropriate",
            "violen",
            "abus",
            "risk",
            "hurt",
            "wrong",
            "discriminat",
            "toxic",
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
            "local). A local analyst with a mistral-common tokenizer needs none: its requests "
            "carry the verdict as the reply's opening, encoded by mistral-common."
        ),
    )

    @model_validator(mode="after")
    def _balanced_needs_anchored(self) -> AnalysesConfig:
        if self.balanced and not self.anchored:
            raise ValueError(
                "analyses.balanced needs analyses.anchored: true (harmless answers are analysed "
                "with the label-anchored template (b'))"
            )
        if self.k > 1 and self.temperature == 0:
            raise ValueError(
                f"analyses.k {self.k} with temperature 0: greedy decoding gives the same critique "
                "k times, i.e. one training row repeated; set analyses.temperature > 0 (e.g. 0.7) "
                "or analyses.k 1"
            )
        return self


class ReviseConfig(Strict):
    """Critique-revise baseline: the revision generated from (question, bad answer, critique)."""

    backend: SelfOr = Field("self", description="Model that writes revisions.")
    max_new_tokens: int = count(96, "Token budget of one revision.")
    temperature: float = temperature_field(0.0)
    stop: list[str] = stop_field()
    min_chars: int = count(10, "Gate: drop revisions shorter than this.", minimum=0)
    max_echo_overlap: float = share(
        0.6, "Gate: drop a revision that repeats the bad answer this much."
    )
    max_copied_words: int = count(
        MAX_COPIED_WORDS,
        "Gate: drop a revision that repeats more than this many consecutive words of the bad "
        "answer (words the instruction holds not counted): a revision is trained.",
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
            "Also write sft_*.chat.jsonl (`messages` rows for `type: axolotl_mistake.chat_sft`, "
            "Axolotl's chat_template plus the stop token some templates leave out) and "
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


BUILD_BATCH_SIZE = 64
"""The build's batch for the local model (the class default, 16, suits the evaluation)."""


class BuildConfig(Strict):
    """Everything a build needs. YAML file keys = these fields; `--a.b value` overrides one."""

    output: str = Field(
        "outputs/smollm2_135m_mistake",
        description=(
            "Output folder (created after validation). The default is where the CPU recipe "
            "recipes/smollm2_135m_mistake.yml reads its data."
        ),
    )
    overwrite: bool = Field(
        False,
        description=(
            "Write into an existing `output` folder that this tool did not make (files of the "
            "same names, such as README.md and manifest.json, are replaced). Without it such a "
            "folder is refused; a folder an earlier build made is always rebuilt in place."
        ),
    )
    seed: int = seed_field(0, "Seed of sampling, splits, mixing and generation.")
    model: BackendConfig = Field(
        default_factory=lambda: BackendConfig(batch_size=BUILD_BATCH_SIZE),
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

    @field_validator("model", mode="before")
    @classmethod
    def _keep_the_build_batch(cls, value: Any) -> Any:
        """A `model:` block (or `--model.device cpu`) that leaves out batch_size keeps the
        build's 64 for the local model: without this, naming any other key silently fell back
        to the class default of 16, 2.4x slower on 2 CPU threads."""
        if isinstance(value, dict) and "batch_size" not in value:
            if value.get("kind", "transformers") == "transformers":
                return {**value, "batch_size": BUILD_BATCH_SIZE}
        return value

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
        description=(
            "Count instructions, calls and tokens per stage and check the output folder as the "
            "build would; generate and write nothing."
        ),
    )
    progress: bool = Field(True, description="Show rich progress bars.")
    max_failed_fraction: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description=(
            "Failure budget: when more than this share of the model calls made so far, or of "
            "one stage's own calls, failed (dead endpoint, timeouts, malformed replies), the "
            "build stops after the stage with "
            "a non-zero exit and a summary, and writes no output files. Finished calls stay "
            "cached: rerun the same command to resume. 0 tolerates no failure."
        ),
    )

    @model_validator(mode="after")
    def _anchored_chat_renders_raw(self) -> BuildConfig:
        analyst = self.backend_for(self.analyses.backend)
        if (
            self.analyses.anchored
            and self.prompt_format == "chat"
            and getattr(analyst, "chat", None) == "always"
        ):
            raise FieldError(
                "anchored chat analyses send the rendered chat prompt plus the verdict sentence "
                "as raw text; the analyst's `chat: always` would wrap it in a second chat turn "
                "(use chat: auto, which still puts every chat request through the template, a "
                "mistral-common one included)",
                field=f"{self.backend_key('analyses.backend')}.chat",
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

    def backend_key(self, key: str) -> str:
        """The config key a stage's backend (`mistakes.backend`, ...) really comes from:
        `model` when the stage says 'self' or nothing, so an error is blamed on the key the
        user set."""
        section, _, name = key.partition(".")
        choice = getattr(getattr(self, section, None), name, None)
        return "model" if choice in (None, "self") else key

    def config_hash(self) -> str:
        """Hash of everything that determines the outputs (not output, overwrite, shard, dry_run,
        progress)."""
        data = self.model_dump(
            mode="json", exclude={"output", "overwrite", "shard", "dry_run", "progress"}
        )
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


def load_config(argv: list[str] | None = None) -> tuple[BuildConfig, str | None, bool]:
    """(config, config file or None, help asked) from a build command line, through the
    project's one loader (`axolotl_mistake.configio`). Raises InputError on any problem."""
    loaded = configio.load(BuildConfig, list(argv or []))
    return loaded.config, loaded.config_file, loaded.help
