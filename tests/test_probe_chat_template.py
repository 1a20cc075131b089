"""The live probe reads chat data with the chat template the training data is rendered with.

Axolotl sets the tokenizer's chat template only from the config's top-level `chat_template`; a
dataset's own `chat_template` (the usual way with a base model) is applied by the dataset's
strategy alone. Through Axolotl's real `load_cfg`, the plugin's own callback and a real Trainer.
"""

from __future__ import annotations

import pytest

pytest.importorskip("axolotl")

from axolotl.cli.config import load_cfg

from axolotl_mistake.plugin import MistakeAnalysisPlugin
from axolotl_mistake.templates import discrimination_messages
from tests.test_plugin_config import MISTAKE_DS, SFT_DS, config_file, workdir  # noqa: F401

pytestmark = pytest.mark.usefixtures("fresh_plugin_manager")


def test_chat_probe_uses_the_datasets_chat_template(workdir, tiny_model_dir):
    from axolotl.prompt_strategies import load
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    chat = {
        **MISTAKE_DS,
        "type": "axolotl_mistake.chat_unguided_analysis",
        "chat_template": "llama3",
    }
    cfg = load_cfg(
        str(
            config_file(
                workdir,
                tiny_model_dir,
                datasets=[chat, SFT_DS],
                mistake_probe_pairs="builtin",
                mistake_probe_max_pairs=2,
            )
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None  # a base model: only the dataset names a template
    # the template the analysis rows are trained with (Axolotl's loader, the real path)
    trained_with = load(chat["type"], tokenizer, cfg, cfg.datasets[0]).chat_template
    assert "<|start_header_id|>" in trained_with

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = tokenizer("Hello there.")["input_ids"]
    rows = [{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": ids}] * 2
    args = TrainingArguments(
        output_dir=str(workdir / "trainer"),
        max_steps=1,
        per_device_train_batch_size=2,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)
    (callback,) = MistakeAnalysisPlugin().add_callbacks_post_trainer(cfg, trainer)
    assert callback.probe.style == "chat"
    pair = callback.probe.pairs[0]
    expected = tokenizer.apply_chat_template(
        discrimination_messages(pair.question, pair.answer[: callback.probe.max_answer_chars]),
        chat_template=trained_with,
        tokenize=False,
        add_generation_prompt=True,
    )
    assert callback.probe.render(pair, tokenizer) == (expected, False)
    trainer.add_callback(callback)
    trainer.train()  # the probe at the last step: no "needs a chat template" crash
    assert [h for h in trainer.state.log_history if "discrimination_auc" in h]


def test_a_probe_that_cannot_render_fails_before_training(workdir, tiny_model_dir):
    """`mistake_probe_style: chat` with no chat template anywhere: the error must come when the
    callback is made, not at the first probe run (the end of training, before the adapter is
    saved), which would lose the whole run."""
    from transformers import AutoTokenizer

    cfg = load_cfg(
        str(
            config_file(
                workdir, tiny_model_dir, mistake_probe_pairs="builtin", mistake_probe_style="chat"
            )
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None

    class Trainer:  # what the plugin reads of a Trainer before training
        processing_class = tokenizer
        model = None

    with pytest.raises(ValueError, match="needs a tokenizer with a chat template"):
        MistakeAnalysisPlugin().add_callbacks_post_trainer(cfg, Trainer())


def test_chat_probe_passes_the_chat_template_kwargs(workdir, tiny_model_dir):
    """`chat_template_kwargs` (e.g. `enable_thinking: false`) reach the analysis rows' template,
    so they reach the probe's too: it scores the format the model is trained on."""
    from transformers import AutoTokenizer

    from tests.test_strategies import THINKING_TEMPLATE

    cfg = load_cfg(
        str(
            config_file(
                workdir,
                tiny_model_dir,
                datasets=[{**MISTAKE_DS, "type": "axolotl_mistake.chat_unguided_analysis"}, SFT_DS],
                chat_template="jinja",
                chat_template_jinja=THINKING_TEMPLATE,
                chat_template_kwargs={"enable_thinking": False},
                mistake_probe_pairs="builtin",
                mistake_probe_style="chat_analysis",
            )
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = THINKING_TEMPLATE  # Axolotl sets the top-level template

    class Trainer:  # what the plugin reads of a Trainer before training
        processing_class = tokenizer
        model = None

    (callback,) = MistakeAnalysisPlugin().add_callbacks_post_trainer(cfg, Trainer())
    text, _ = callback.probe.render(callback.probe.pairs[0], tokenizer)
    assert text.endswith("<|im_start|>assistant\n<think></think>")
