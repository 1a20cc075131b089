"""Shared tokenization for the mistake-analysis Axolotl strategies.

Turns {instruction, input?, bad, critique} rows into input_ids/labels where ONLY the critique
and its EOS carry loss. The bad answer is context: this module must never emit a label for it,
and it refuses `train_on_inputs: true` outright instead of silently honouring it. Nor may the
critique carry the answer: a row whose critique repeats more than `mistake_max_copied_words`
(default 5) consecutive words of the bad answer is refused (`axolotl_mistake.copying`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from axolotl.prompt_tokenizers import PromptTokenizingStrategy

from axolotl_mistake.axolotl_cfg import cfg_get
from axolotl_mistake.copying import MAX_COPIED_WORDS, copy_problem
from axolotl_mistake.templates import ChatMessage, question

LOG = logging.getLogger("axolotl_mistake")

IGNORE_INDEX = -100

MISTAKE_STRATEGIES: tuple[str, ...] = (
    "axolotl_mistake.unguided_analysis",
    "axolotl_mistake.guided_analysis",
    "axolotl_mistake.chat_unguided_analysis",
)
"""The `type:` names of this package's strategies (the plugin's validation uses them)."""

TRAINED_FIELDS: dict[str, tuple[str, ...]] = {name: ("critique",) for name in MISTAKE_STRATEGIES}
"""Which row fields receive loss under each strategy: the critique, nothing else."""

REQUIRED_FIELDS = ("instruction", "bad", "critique")
OPTIONAL_FIELDS = ("input",)


class MistakeRowError(ValueError):
    """A training row is malformed (missing, empty or non-string field)."""


class TrainOnInputsError(ValueError):
    """`train_on_inputs: true` would put loss on the bad answer."""


def refuse_train_on_inputs(cfg: Any, strategy: str) -> None:
    """Raise if the config asks to train on the prompt (which contains the harmful answer)."""
    if cfg_get(cfg, "train_on_inputs", False):
        raise TrainOnInputsError(
            f"`train_on_inputs: true` is not allowed with `type: {strategy}`: the prompt holds "
            "the harmful answer being analysed, and its tokens must never receive loss. "
            "Set `train_on_inputs: false` (the default)."
        )


def field_map(ds_cfg: Any = None, cfg: Any = None) -> dict[str, str]:
    """Row column names: dataset `field_<name>` > plugin arg `mistake_field_<name>` > default.

    Axolotl drops unknown keys on dataset entries, so the plugin's top-level keys are how a
    YAML user renames columns (`mistake_field_bad: response`).
    """
    mapping = {name: name for name in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)}
    for name in mapping:
        override = cfg_get(ds_cfg, f"field_{name}") or cfg_get(cfg, f"mistake_field_{name}")
        if override:
            mapping[name] = override
    return mapping


def _columns(row: Mapping[str, Any]) -> str:
    """The row's column names, never its values: the values hold harmful text."""
    return "columns: " + (", ".join(repr(str(k)) for k in list(row)[:12]) or "none")


def max_copied_words(cfg: Any = None) -> int:
    """The config's `mistake_max_copied_words`, else the project's default."""
    value = cfg_get(cfg, "mistake_max_copied_words")
    return MAX_COPIED_WORDS if value is None else int(value)


def row_problem(
    row: Mapping[str, Any], fields: Mapping[str, str], copy_limit: int = MAX_COPIED_WORDS
) -> str | None:
    """What is wrong with an analysis row (naming the column, never quoting a value), else None.

    Shared by the tokenizer and the plugin's config-time check, which adds file and line. A
    critique that copies the answer is wrong too: its loss would fall on the answer's words.
    """
    for name in REQUIRED_FIELDS:
        key = fields[name]
        value = row.get(key)
        if value is None:
            return f"field '{key}' is missing ({_columns(row)})"
        if not isinstance(value, str):
            return f"field '{key}' must be a string, got {type(value).__name__}"
        if not value.strip():
            return f"field '{key}' is empty"
    extra = row.get(fields["input"])
    if extra is not None and not isinstance(extra, str):
        return f"field '{fields['input']}' must be a string, got {type(extra).__name__}"
    if fields["critique"] == fields["bad"]:
        return (
            f"field '{fields['bad']}' is both the critique and the bad answer (a column "
            f"rename names the answer's column): training it would put loss on "
            f"['{fields['bad']}'], the answer itself"
        )
    context = question(row[fields["instruction"]], extra)
    copied = copy_problem(row[fields["critique"]], row[fields["bad"]], context, copy_limit)
    if copied is not None:
        return (
            f"field '{fields['critique']}' {copied} in field '{fields['bad']}'. Rewrite the "
            "critique in its own words, or rebuild with `python -m dataset_builders.build` "
            "(its gate drops such critiques)"
        )
    return None


def validate_row(
    row: Mapping[str, Any], fields: Mapping[str, str], copy_limit: int = MAX_COPIED_WORDS
) -> dict[str, str]:
    """Return {instruction, input, bad, critique} or raise naming the bad field (not its text)."""
    problem = row_problem(row, fields, copy_limit)
    if problem is not None:
        raise MistakeRowError(f"analysis row: {problem}")
    out = {name: str(row[fields[name]]) for name in REQUIRED_FIELDS}
    out["input"] = row.get(fields["input"]) or ""
    return out


class MistakeAnalysisTokenizingStrategy(PromptTokenizingStrategy):
    """Batched tokenizer for analysis rows: prompt (masked) + critique + EOS (trained).

    Subclasses only say how a row becomes a prompt: `render_prompt` (text) or, for chat
    models, `prompt_ids` (token ids). Rows whose critique would not fit in `sequence_len`
    are dropped and counted, so no emitted row is all -100.
    """

    strategy_name = "axolotl_mistake"

    def __init__(
        self,
        prompter: Any,
        tokenizer: Any,
        train_on_inputs: bool = False,
        sequence_len: int = 2048,
        fields: Mapping[str, str] | None = None,
        excess_length_strategy: str | None = None,
        copy_limit: int = MAX_COPIED_WORDS,
    ) -> None:
        if train_on_inputs:
            refuse_train_on_inputs({"train_on_inputs": True}, self.strategy_name)
        super().__init__(prompter, tokenizer, False, sequence_len)
        self.fields = dict(fields or field_map(None))
        strategy = (excess_length_strategy or "drop").lower()
        self.truncate = strategy == "truncate"
        self.raise_on_long = strategy == "raise"
        self.copy_limit = copy_limit
        self.dropped = 0

    @property
    def supports_batched(self) -> bool:
        return True

    # --- what subclasses define -------------------------------------------------------
    def render_prompt(self, row: dict[str, str]) -> str:
        raise NotImplementedError

    def prompt_ids_batch(self, rows: Sequence[dict[str, str]]) -> list[list[int]]:
        """Token ids of each row's prompt (default: tokenize `render_prompt` as Axolotl does)."""
        texts = [self.render_prompt(r) for r in rows]
        return self.tokenizer(texts, add_special_tokens=True)["input_ids"]

    # --- the shared machinery ---------------------------------------------------------
    def response_ids_batch(self, critiques: Sequence[str]) -> list[list[int]]:
        """Critique ids with EOS appended (no BOS): the only trained tokens."""
        eos = self.tokenizer.eos_token_id
        ids = self.tokenizer(list(critiques), add_special_tokens=False)["input_ids"]
        return [seq + [eos] if not seq or seq[-1] != eos else seq for seq in ids]

    def tokenize_prompt(self, prompt: Mapping[str, Any]) -> dict[str, list]:
        """Tokenize one row or a batch (dict of columns), as Axolotl's map passes it."""
        first = next(iter(prompt.values()), None)
        probe = prompt.get(self.fields["critique"], prompt.get(self.fields["instruction"], first))
        batched = isinstance(probe, list)
        if not batched:
            out = self._tokenize_rows([dict(prompt)])
            return {k: (v[0] if v else []) for k, v in out.items()}
        keys = list(prompt.keys())
        n = len(prompt[keys[0]])
        rows = [{k: prompt[k][i] for k in keys} for i in range(n)]
        return self._tokenize_rows(rows)

    def token_spans(
        self, rows: Sequence[dict[str, str]]
    ) -> list[tuple[list[int], list[int], list[int]]]:
        """(prompt ids, trained ids, untrained tail ids) of each validated row.

        The hook a subclass overrides when its prompt and response cannot be tokenized apart
        (chat templates); the fitting, truncating, dropping and labelling stay shared.
        """
        prompts = self.prompt_ids_batch(rows)
        responses = self.response_ids_batch([r["critique"] for r in rows])
        return [(list(p), list(r), []) for p, r in zip(prompts, responses)]

    def _tokenize_rows(self, raw_rows: list[dict[str, Any]]) -> dict[str, list]:
        rows = [validate_row(r, self.fields, self.copy_limit) for r in raw_rows]
        result: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
        dropped = 0
        for number, (p_ids, r_ids, after) in enumerate(self.token_spans(rows)):
            if len(p_ids) + len(r_ids) > self.sequence_len:
                if self.raise_on_long:  # as Axolotl's own `raise`: sizes, never the text
                    raise ValueError(
                        f"{self.strategy_name}: row {number} of this batch has "
                        f"{len(p_ids) + len(r_ids)} tokens (prompt {len(p_ids)}, critique "
                        f"{len(r_ids)}), which exceeds the maximum {self.sequence_len} "
                        "(`excess_length_strategy: raise`)."
                    )
                room = self.sequence_len - len(p_ids)
                if not self.truncate or room <= 0:
                    dropped += 1
                    continue
                r_ids, after = r_ids[:room], []
            ids = (p_ids + r_ids + after)[: self.sequence_len]
            labels = [IGNORE_INDEX] * len(p_ids) + r_ids + [IGNORE_INDEX] * len(after)
            result["input_ids"].append(ids)
            result["attention_mask"].append([1] * len(ids))
            result["labels"].append(labels[: len(ids)])
        if dropped:
            self.dropped += dropped
            LOG.warning(
                "%s: dropped %d row(s) whose critique does not fit in sequence_len=%d "
                "(%d dropped so far in this process)",
                self.strategy_name,
                dropped,
                self.sequence_len,
                self.dropped,
            )
        return result


_WARNED_NO_PLUGIN: list[bool] = []


def warn_if_plugin_missing() -> None:
    """Say once per process when a strategy runs without the plugin registered (Axolotl 0.19
    with no `plugins:` entry): Axolotl's schema then drops every `mistake_*` key without a word
    (column renames, the probe) and the config-time safety checks never ran. The strategy
    itself still trains the critique only. Axolotl 0.21+ always registers the plugin."""
    from axolotl_mistake.plugin import registered_instances

    if registered_instances() or _WARNED_NO_PLUGIN:
        return
    _WARNED_NO_PLUGIN.append(True)
    LOG.warning(
        "axolotl_mistake strategies are used without the plugin: Axolotl ignores every "
        "`mistake_*` key in this config (column renames, the discrimination probe) and the "
        "plugin's config-time safety checks did not run. Add "
        "`plugins: [axolotl_mistake.MistakeAnalysisPlugin]` to the config."
    )


def build_strategy(
    cls: type[MistakeAnalysisTokenizingStrategy],
    tokenizer: Any,
    cfg: Any,
    ds_cfg: Any = None,
    **kwargs: Any,
) -> MistakeAnalysisTokenizingStrategy:
    """The body of every `load()`: refuse unsafe config, read field names and lengths."""
    refuse_train_on_inputs(cfg, cls.strategy_name)
    warn_if_plugin_missing()
    return cls(
        None,
        tokenizer,
        train_on_inputs=False,
        sequence_len=int(cfg_get(cfg, "sequence_len", 2048)),
        fields=field_map(ds_cfg, cfg),
        excess_length_strategy=cfg_get(cfg, "excess_length_strategy"),
        copy_limit=max_copied_words(cfg),
        **kwargs,
    )


class AlpacaAnalysisStrategy(MistakeAnalysisTokenizingStrategy):
    """A strategy whose prompt is one Alpaca-style template of (instruction, bad answer,
    input): a subclass sets `strategy_name` and `template`, and its module exports its `load`."""

    template: Callable[[str, str, str], str]

    def render_prompt(self, row: dict[str, str]) -> str:
        return self.template(row["instruction"], row["bad"], row["input"])

    @classmethod
    def load(
        cls, tokenizer: Any, cfg: Any, ds_cfg: Any = None, processor: Any = None
    ) -> MistakeAnalysisTokenizingStrategy:
        """The `load()` Axolotl calls for `type: <strategy_name>`."""
        return build_strategy(cls, tokenizer, cfg, ds_cfg)


MessagesRenderer = Callable[[str, str, str], list[ChatMessage]]
