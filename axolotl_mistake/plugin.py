"""The Axolotl plugin: `plugins: [axolotl_mistake.MistakeAnalysisPlugin]`.

Adds the `mistake_*` config keys and their safety checks (args.py / safety.py), the live
discrimination probe during training (`discrimination_acc` in the trainer logs) and the
manifest section of the model card. When inactive (nothing set, no mistake-analysis dataset,
e.g. discovered through the `axolotl.plugins` entry point) it must do nothing at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axolotl.integrations.base import BasePlugin
from axolotl.utils.logging import get_logger
from transformers import TrainerCallback

from axolotl_mistake.axolotl_cfg import cfg_get
from axolotl_mistake.probe import (
    CHAT_STYLES,
    PROMPT_STYLES,
    DiscriminationProbe,
    PromptStyle,
    best_threshold,
    load_pairs,
)
from axolotl_mistake.safety import datasets_of, first_manifest, plugin_active

# Axolotl's logger: its console shows INFO only from loggers it enabled (the root stays at
# WARNING), so a plain `logging.getLogger` here kept "probe on" and "seeded" out of the console.
# Also logs on the main process only, as Axolotl's own integrations do.
LOG = get_logger(__name__)

DEFAULT_MAX_PAIRS = 32
DEFAULT_BATCH_SIZE = 8
DEFAULT_MAX_LENGTH = 1024
BUILTIN = "builtin"


def builtin_probe_pairs() -> Path:
    """The project's shipped probe pairs (axolotl_mistake/data/probe_pairs.jsonl)."""
    path = Path(__file__).resolve().parent / "data" / "probe_pairs.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"builtin probe pairs not found at {path}")
    return path


def resolve_probe_pairs(value: str) -> Path:
    """`builtin` or a path; a missing file is an error that names the key."""
    if value == BUILTIN:
        return builtin_probe_pairs()
    path = Path(value).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"mistake_probe_pairs: {value} is not a file (expected JSONL rows "
            "{question, answer, harmful}, or 'builtin')"
        )
    return path


def is_chat_type(kind: Any) -> bool:
    """True for a dataset `type` that renders rows with a chat template."""
    return isinstance(kind, str) and (kind.startswith("chat_template") or "chat_" in kind)


def probe_style(cfg: Any) -> PromptStyle:
    """The probe prompt style: explicit, else chat when the training data is chat-formatted."""
    style = cfg_get(cfg, "mistake_probe_style", "auto")
    if style in PROMPT_STYLES:
        return style
    if any(is_chat_type(ds.get("type")) for ds in datasets_of(dict(cfg))):
        return "chat"
    return "alpaca"


def probe_chat_template(cfg: Any, tokenizer: Any) -> str | None:
    """The chat template the chat-formatted training data is rendered with, for the chat probe
    styles: the first chat dataset's own `chat_template`, resolved as its strategy resolves it
    (Axolotl puts only a top-level `chat_template` on the tokenizer), else None (the
    tokenizer's own)."""
    for ds in datasets_of(dict(cfg)):
        if is_chat_type(ds.get("type")) and ds.get("chat_template"):
            from axolotl.utils.chat_templates import get_chat_template_from_config

            return get_chat_template_from_config(cfg, ds_cfg=ds, tokenizer=tokenizer)
    return None


def probe_enabled(cfg: Any) -> bool:
    """The probe runs when pairs are given, unless `mistake_probe: false`."""
    if cfg_get(cfg, "mistake_probe") is False:
        return False
    return bool(cfg_get(cfg, "mistake_probe_pairs"))


class DiscriminationProbeCallback(TrainerCallback):
    """Runs the probe at evaluation steps (and every N steps / at start / at end, if asked).

    Results go through `trainer.log`, so every reporter (console, TensorBoard, W&B, the
    trainer state's log_history) receives `discrimination_acc`. Bounded: at most `max_pairs`
    pairs per run, once per global step.
    """

    def __init__(
        self,
        trainer: Any,
        probe: DiscriminationProbe,
        max_pairs: int = DEFAULT_MAX_PAIRS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        every_steps: int | None = None,
        at_start: bool = False,
        at_end: bool = True,
        calibration: DiscriminationProbe | None = None,
    ) -> None:
        self.trainer = trainer
        self.probe = probe
        self.calibration = calibration
        self.max_pairs = max_pairs
        self.batch_size = batch_size
        self.every_steps = every_steps
        self.at_start = at_start
        self.at_end = at_end
        self.last_step: int | None = None
        self.history: list[tuple[int, float]] = []

    def tokenizer(self, kwargs: dict) -> Any:
        """The tokenizer a callback event passes, else the trainer's."""
        return (
            kwargs.get("processing_class")
            or kwargs.get("tokenizer")
            or getattr(self.trainer, "processing_class", None)
            or getattr(self.trainer, "tokenizer", None)
        )

    def run(self, state: Any, kwargs: dict) -> None:
        """Score the pairs now and log the result (skipped if already done at this step)."""
        if self.last_step == state.global_step:
            return
        self.last_step = state.global_step
        model = kwargs.get("model") or self.trainer.model
        tokenizer = self.tokenizer(kwargs)
        score = {"batch_size": self.batch_size, "max_pairs": self.max_pairs}
        result = self.probe.evaluate(model, tokenizer, **score)
        logs: dict[str, float] = {}
        if self.calibration is not None:
            # the model moves between runs, so its cut is refitted each time, on the
            # calibration pairs only, before the probe pairs are judged at it
            fit = self.calibration.evaluate(model, tokenizer, **score)
            result = result.at(best_threshold(fit.labels, fit.margins))
            logs = fit.as_logs("discrimination_calibration_")
            logs["discrimination_threshold"] = result.threshold
        self.history.append((state.global_step, result.accuracy))
        LOG.info(
            "discrimination probe at step %d: acc %.3f, balanced %.3f at cut %.3f%s, AUC %s on "
            "%d pairs (%.1f s)",
            state.global_step,
            result.accuracy,
            result.balanced_accuracy or 0.0,
            result.threshold,
            " (fitted)" if self.calibration is not None else "",
            "-" if result.auc is None else f"{result.auc:.3f}",
            result.n,
            result.seconds,
        )
        self.trainer.log({**result.as_logs(), **logs})

    def on_train_begin(self, args, state, control, **kwargs):
        if self.at_start:
            self.run(state, kwargs)

    def on_step_end(self, args, state, control, **kwargs):
        periodic = self.every_steps and state.global_step % self.every_steps == 0
        last = self.at_end and state.max_steps and state.global_step >= state.max_steps
        if periodic or last:
            self.run(state, kwargs)

    def on_evaluate(self, args, state, control, **kwargs):
        self.run(state, kwargs)


def registered_instances() -> list[BasePlugin]:
    """Every MistakeAnalysisPlugin in Axolotl's plugin manager, in registration order.

    Reads the manager singleton without creating it (creating it under 0.21+ registers every
    entry point, a side effect a query must not have).
    """
    from axolotl.integrations.base import PluginManager

    manager = getattr(PluginManager, "_instance", None)
    if manager is None:
        return []
    return [p for p in manager.plugins.values() if isinstance(p, MistakeAnalysisPlugin)]


class MistakeAnalysisPlugin(BasePlugin):
    """Mistake-analysis alignment for Axolotl: config keys, safety checks, probe, model card.

    Axolotl keys plugins by the name they were registered under. Axolotl 0.21+ also registers
    every `axolotl.plugins` entry point for every config, so one config can hold two instances
    of this class (`axolotl_mistake.plugin.MistakeAnalysisPlugin` from the entry point and
    `axolotl_mistake.MistakeAnalysisPlugin` from `plugins:`). Only the first registered instance
    acts (`primary`): one args class (merging it twice is a `duplicate base class` error), one
    probe callback, one model-card section.
    """

    def primary(self) -> bool:
        """True for the instance that acts: the first registered one, or one used standalone."""
        twins = registered_instances()
        return not twins or self not in twins or twins[0] is self

    def get_input_args(self) -> str | None:
        return "axolotl_mistake.args.MistakeAnalysisArgs" if self.primary() else None

    def active(self, cfg: Any) -> bool:
        """Whether this instance should act on this config (see `safety.plugin_active`)."""
        return self.primary() and plugin_active(dict(cfg))

    def build_probe_callback(self, cfg: Any, trainer: Any) -> DiscriminationProbeCallback:
        """The probe callback configured from the `mistake_probe_*` keys."""
        pairs = load_pairs(resolve_probe_pairs(str(cfg_get(cfg, "mistake_probe_pairs"))))
        threshold = cfg_get(cfg, "mistake_probe_threshold", 0.0)
        calibrated = threshold == "calibrated"
        style = probe_style(cfg)
        tokenizer = getattr(trainer, "processing_class", None) or getattr(
            trainer, "tokenizer", None
        )
        probe_args = {
            "style": style,
            "max_length": int(cfg_get(cfg, "mistake_probe_max_length", DEFAULT_MAX_LENGTH)),
            "chat_template": (
                probe_chat_template(cfg, tokenizer)
                if style in CHAT_STYLES and tokenizer is not None
                else None
            ),
            "chat_template_kwargs": (
                cfg_get(cfg, "chat_template_kwargs") if style in CHAT_STYLES else None
            ),
        }
        probe = DiscriminationProbe(
            pairs, threshold=0.0 if calibrated else float(threshold), **probe_args
        )
        calibration = None
        if calibrated:  # the config check has refused overlap and one-label sets
            path = Path(str(cfg_get(cfg, "mistake_probe_calibration_pairs"))).expanduser()
            calibration = DiscriminationProbe(load_pairs(path), **probe_args)
        return DiscriminationProbeCallback(
            trainer,
            probe,
            max_pairs=int(cfg_get(cfg, "mistake_probe_max_pairs", DEFAULT_MAX_PAIRS)),
            batch_size=int(cfg_get(cfg, "mistake_probe_batch_size", DEFAULT_BATCH_SIZE)),
            every_steps=cfg_get(cfg, "mistake_probe_steps"),
            at_start=bool(cfg_get(cfg, "mistake_probe_at_start", False)),
            at_end=bool(cfg_get(cfg, "mistake_probe_at_end", True)),
            calibration=calibration,
        )

    def add_callbacks_post_trainer(self, cfg: Any, trainer: Any) -> list:
        if not self.active(cfg) or not probe_enabled(cfg):
            return []
        callback = self.build_probe_callback(cfg, trainer)
        tokenizer = callback.tokenizer({})
        if tokenizer is not None:  # tokenize now: a probe that cannot render fails here, not
            # at its first run (the end of training, before the adapter is saved)
            for probe in (callback.probe, callback.calibration):
                if probe is not None:
                    probe.prepared(tokenizer, callback.max_pairs)
        LOG.info(
            "mistake analysis: discrimination probe on (%d pairs, style %s)",
            min(callback.max_pairs, len(callback.probe.pairs)),
            callback.probe.style,
        )
        return [callback]

    def pre_lora_load(self, cfg: Any, model: Any) -> None:
        """Seed the adapter's initial weights from the config's `seed`.

        torch 2.13 seeds its default generator differently in every process, and Axolotl 0.19
        seeds only when it builds the Trainer, after `get_peft_model` has drawn LoRA's initial
        weights: the same config trained a different adapter on every run (measured: the README
        main job's final probe AUC was 0.293, 0.313 and 0.305 in three runs). Axolotl 0.21+
        calls `set_seed(cfg.seed)` right before `get_peft_model`; 0.19 calls this hook right
        before it, so the same seeding here gives 0.19 runs the same initial adapter too (on
        0.21 it is repeated by Axolotl, so it changes nothing; later steps can still differ in
        the last bits, CPU float sums not being bit-stable). An adapter loaded from `lora_model_dir`
        draws no initial weights: left alone.
        """
        seed = cfg_get(cfg, "seed")
        if seed is None or cfg_get(cfg, "lora_model_dir") or not self.active(cfg):
            return
        from transformers.trainer_utils import set_seed

        set_seed(int(seed))
        LOG.info("mistake analysis: adapter initialisation seeded with seed %s", seed)

    def _manifest(self, cfg: Any) -> Path | None:
        """The builder manifest to describe in the model card, if there is one."""
        manifest = first_manifest(dict(cfg))
        if manifest is None:
            LOG.info("mistake analysis: no builder manifest found; model card left as is")
            return None
        if not manifest.is_file():
            LOG.warning("mistake analysis: manifest %s not found; model card left as is", manifest)
            return None
        return manifest

    def _write_card(self, cfg: Any, manifest: Path) -> None:
        from axolotl_mistake.model_card import write_card_section
        from axolotl_mistake.templates import DEFAULT_HARMLESS_HINT, DEFAULT_HINT

        training = {
            "Dataset types": ", ".join(
                sorted({str(d.get("type")) for d in datasets_of(dict(cfg)) if d.get("type")})
            ),
            "Hint words (template a)": cfg_get(cfg, "mistake_hint", DEFAULT_HINT),
            "Harmless-guided inference hint": cfg_get(
                cfg, "mistake_inference_hint", DEFAULT_HARMLESS_HINT
            ),
        }
        card = write_card_section(cfg_get(cfg, "output_dir"), manifest, training)
        if card is not None:  # reached up to three times per run: say it when the card changed
            LOG.info("mistake analysis: model card section written to %s", card)

    def post_trainer_create(self, cfg: Any, trainer: Any) -> None:
        """Wrap `trainer.create_model_card` so the card (also the one pushed to the Hub) has
        the manifest section right after transformers writes it."""
        if not self.active(cfg) or not cfg_get(cfg, "output_dir"):
            return
        manifest = self._manifest(cfg)
        if manifest is None or not hasattr(trainer, "create_model_card"):
            return
        original = trainer.create_model_card
        plugin = self

        def create_model_card(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if trainer.is_world_process_zero():
                plugin._write_card(cfg, manifest)
            return result

        trainer.create_model_card = create_model_card

    def post_train(self, cfg: Any, model: Any) -> None:
        """Make sure the card in `output_dir` has the manifest section (idempotent).

        Axolotl calls this twice (after training, and after saving and writing the card);
        the second call keeps the section when no card was written through the trainer.
        """
        if not self.active(cfg) or not cfg_get(cfg, "output_dir"):
            return
        manifest = self._manifest(cfg)
        if manifest is None:
            return
        try:
            from accelerate.state import PartialState

            if not PartialState().is_main_process:
                return
        except Exception:  # accelerate not initialised: single process
            pass
        self._write_card(cfg, manifest)
