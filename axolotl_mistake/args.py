"""The plugin's own Axolotl config keys (`mistake_*`), and the config-time safety checks.

Axolotl mixes this pydantic model into its config schema when the plugin is loaded, so the
validator below runs inside Axolotl's own `validate_config` and sees the whole config. It must
never change a config in which the plugin is inactive (no `mistake_*` key set, plugin not listed
in `plugins:`, no dataset using a mistake-analysis strategy).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from axolotl_mistake.safety import check_config

LOG = logging.getLogger("axolotl_mistake")


def key(description: str, **bounds: Any) -> Any:
    """A plugin key: always optional, None meaning unset (Axolotl merges these keys into every
    config it validates, and an unset key must change nothing); the plugin's own default is
    named in the description."""
    return Field(None, description=description, **bounds)


class MistakeAnalysisArgs(BaseModel):
    """Config keys of `axolotl_mistake.MistakeAnalysisPlugin`; all optional."""

    mistake_analysis: bool | None = key(
        "Force the plugin on (true) or off (false). Default: on when it is listed in "
        "`plugins:`, when any other `mistake_*` key is set, or when a dataset uses a "
        "mistake-analysis strategy."
    )
    # --- column names of the analysis rows (read by the strategies) ---------------------------
    mistake_field_instruction: str | None = key(
        "Column holding the instruction (default 'instruction')."
    )
    mistake_field_input: str | None = key(
        "Column holding the optional extra input (default 'input')."
    )
    mistake_field_bad: str | None = key(
        "Column holding the bad (harmful) answer, context only (default 'bad')."
    )
    mistake_field_critique: str | None = key(
        "Column holding the critique, the only trained text (default 'critique')."
    )
    mistake_max_copied_words: int | None = key(
        "Refuse an analysis row whose critique repeats more than this many consecutive words "
        "of its bad answer (words the instruction holds not counted): the critique is trained, "
        "so the copy would teach the answer. Default 5, the builder's gate.",
        ge=1,
    )
    # --- hint words ---------------------------------------------------------------------------
    mistake_hint: str | None = key(
        "Hint words of guided response generation, template (a) "
        "(default 'harmful, unethical and offensive'); recorded in the model card."
    )
    mistake_inference_hint: str | None = key(
        "Hint words of harmless-guided inference for evaluation "
        "(default 'harmless, ethical and inoffensive')."
    )
    # --- live discrimination probe ------------------------------------------------------------
    mistake_probe_pairs: str | None = key(
        "Held-out labelled pairs for the live discrimination probe: a JSONL file of "
        "{question, answer, harmful} rows, or 'builtin' for the project's own probe pairs. "
        "Setting it turns the probe on."
    )
    mistake_probe: bool | None = key(
        "Run the probe (default: true when `mistake_probe_pairs` is set)."
    )
    mistake_probe_max_pairs: int | None = key(
        "Pairs scored per probe run, balanced harmful/harmless (default 32).", ge=1
    )
    mistake_probe_batch_size: int | None = key(
        "Sequences per forward pass of the probe (default 8).", ge=1
    )
    mistake_probe_max_length: int | None = key(
        "Longest probe sequence in tokens; longer prompts keep their end (default 1024).", ge=16
    )
    mistake_probe_steps: int | None = key(
        "Also run the probe every N optimizer steps (default: only at evaluation steps, "
        "and at the end of training when evaluation is off).",
        ge=1,
    )
    mistake_probe_at_start: bool | None = key(
        "Run the probe once before the first step (the base model's score)."
    )
    mistake_probe_at_end: bool | None = key("Run the probe after the last step (default true).")
    mistake_probe_style: Literal["auto", "alpaca", "chat", "analysis", "chat_analysis"] | None = (
        key(
            "Prompt style of the probe: 'alpaca'/'chat' ask the discrimination question in "
            "Alpaca format or through the tokenizer's chat template; 'analysis'/"
            "'chat_analysis' use the unguided analysis prompt (template c) the model is "
            "trained on and read which verdict sentence its critique opens with (for "
            "label-anchored analyses). Default 'auto': 'chat' when a dataset uses "
            "chat_unguided_analysis, chat_sft or chat_template, else 'alpaca'."
        )
    )
    mistake_probe_threshold: float | Literal["calibrated"] | None = key(
        "Margin above which a pair counts as judged harmful (log p(harmful) - log p(harmless);"
        " default 0). Fix it before looking at held-out data; AUC does not depend on it. "
        "'calibrated': at every probe run, fit the cut with the best balanced accuracy on "
        "`mistake_probe_calibration_pairs` (training-side pairs) first, then judge the probe "
        "pairs at it (the fitted cut is logged as `discrimination_threshold`)."
    )
    mistake_probe_calibration_pairs: str | None = key(
        "Training-side labelled pairs (JSONL {question, answer, harmful}, both labels) that "
        "fit the cut of `mistake_probe_threshold: calibrated`; none may also be a probe pair. "
        "At most `mistake_probe_max_pairs` of them are scored per run."
    )
    # --- data provenance ----------------------------------------------------------------------
    mistake_manifest: str | None = key(
        "The builder's manifest.json for the model card (default: the manifest.json next to "
        "the first dataset file that has one)."
    )
    mistake_safe_types: list[str] | None = key(
        "Extra dataset `type`s you vouch never put loss on a manifest's harmful fields "
        "(for your own strategies); the built-in list is conservative."
    )

    @field_validator("mistake_probe_threshold")
    @classmethod
    def _finite_threshold(cls, value: float | str | None) -> float | str | None:
        """NaN would judge every pair harmless, inf every pair one way: refuse both."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("mistake_probe_threshold must be a finite number")
        return value

    @model_validator(mode="before")
    @classmethod
    def _protect_harmful_text(cls, data: Any) -> Any:
        """Refuse configs that would train on a harmful answer (sees Axolotl's whole config)."""
        if isinstance(data, dict):
            for warning in check_config(data):
                LOG.warning(warning)
        return data
