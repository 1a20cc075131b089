"""`axolotl preprocess` and `axolotl train` on YAML files that use the strategies (real CLI, CPU)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from axolotl_mistake.strategies_common import IGNORE_INDEX
from tests.axolotl_runner import FIXTURES, fixture_datasets, lora_config, run_axolotl, write_config


def _prepared_rows(prepared: Path):
    from datasets import load_from_disk

    [folder] = [p for p in prepared.iterdir() if p.is_dir()]
    return load_from_disk(str(folder))


def _expected_targets(eos: str) -> set[str]:
    rows = [json.loads(x) for x in (FIXTURES / "analysis_rows.jsonl").read_text().splitlines()]
    sft = [json.loads(x) for x in (FIXTURES / "sft_rows.jsonl").read_text().splitlines()]
    return {r["critique"] + eos for r in rows} | {r["output"] + eos for r in sft}


@pytest.mark.parametrize(
    "analysis_type",
    [
        "axolotl_mistake.unguided_analysis",
        "axolotl_mistake.guided_analysis",
        "axolotl_mistake.chat_unguided_analysis",
    ],
)
def test_preprocess_trains_only_critiques_and_sft_outputs(
    analysis_type, tiny_model_dir, embedded_tokenizer, tmp_path
):
    cfg = lora_config(tiny_model_dir, fixture_datasets(tmp_path, analysis_type), tmp_path)
    result = run_axolotl(
        ["preprocess", str(write_config(cfg, tmp_path / "cfg.yml")), "--debug"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = _prepared_rows(tmp_path / "prepared")
    assert len(rows) == 12
    tok = embedded_tokenizer
    bad_answers = [
        json.loads(x)["bad"] for x in (FIXTURES / "analysis_rows.jsonl").read_text().splitlines()
    ]
    targets = _expected_targets(tok.eos_token)
    seen = set()
    for row in rows:
        trained = [t for t, lab in zip(row["input_ids"], row["labels"]) if lab != IGNORE_INDEX]
        text = tok.decode(trained)
        assert text in targets, text
        seen.add(text)
        assert not any(bad in text for bad in bad_answers)
    assert seen == targets


@pytest.mark.parametrize("sft_type", ["chat_template", "axolotl_mistake.chat_sft"])
def test_preprocess_with_a_template_that_leaves_replies_open(
    sft_type, tiny_model_dir, embedded_tokenizer, tmp_path
):
    """GLM-4's template shape (a turn ends only where the next starts), through `axolotl
    preprocess`: the critiques end with EOS either way; the SFT replies only with
    `axolotl_mistake.chat_sft` (Axolotl's own `chat_template` leaves them without a stop token,
    so this test also shows why the type exists)."""
    from tests.test_strategies import GLM4_LIKE_TEMPLATE

    datasets = fixture_datasets(tmp_path, "axolotl_mistake.chat_unguided_analysis")
    sft = [json.loads(x) for x in (FIXTURES / "sft_rows.jsonl").read_text().splitlines()]
    chat = tmp_path / "sft.chat.jsonl"
    chat.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"{r['instruction']}\n\n{r['input']}".strip()},
                        {"role": "assistant", "content": r["output"]},
                    ]
                }
            )
            + "\n"
            for r in sft
        )
    )
    datasets[1] = {"path": str(chat), "ds_type": "json", "type": sft_type}
    cfg = lora_config(
        tiny_model_dir,
        datasets,
        tmp_path,
        chat_template="jinja",
        chat_template_jinja=GLM4_LIKE_TEMPLATE,
    )
    result = run_axolotl(["preprocess", str(write_config(cfg, tmp_path / "cfg.yml"))], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    tok = embedded_tokenizer
    replies = {r["output"] for r in sft}
    ends = {"critique": set(), "reply": set()}
    for row in _prepared_rows(tmp_path / "prepared"):
        trained = [t for t, lab in zip(row["input_ids"], row["labels"]) if lab != IGNORE_INDEX]
        text = tok.decode(trained).removesuffix(tok.eos_token).strip()
        kind = "reply" if text in replies else "critique"
        ends[kind].add(trained[-1] == tok.eos_token_id == row["input_ids"][-1])
    assert ends["critique"] == {True}
    assert ends["reply"] == {sft_type == "axolotl_mistake.chat_sft"}


def test_preprocess_refuses_train_on_inputs(tiny_model_dir, tmp_path):
    cfg = lora_config(tiny_model_dir, fixture_datasets(tmp_path), tmp_path, train_on_inputs=True)
    result = run_axolotl(["preprocess", str(write_config(cfg, tmp_path / "cfg.yml"))], cwd=tmp_path)
    assert result.returncode != 0
    assert "train_on_inputs" in (result.stdout + result.stderr)
    prepared = tmp_path / "prepared"
    assert not prepared.exists() or not [p for p in prepared.iterdir() if p.is_dir()]


def _assert_trained(result, out: Path) -> list[float]:
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert (out / "adapter_model.safetensors").exists()
    assert (out / "adapter_config.json").exists()
    losses = [float(x) for x in _losses(result.stdout + result.stderr)]
    assert losses and all(math.isfinite(x) for x in losses)
    return losses


def _losses(log: str) -> list[str]:
    import re

    return re.findall(r"'loss': '?([0-9.eE+-]+|nan|inf)'?", log)


def test_train_lora_tiny_model_with_packing(tiny_model_dir, tmp_path):
    """Alpaca SFT rows + unguided-analysis rows, sample packing on, a few LoRA steps."""
    cfg = lora_config(
        tiny_model_dir,
        fixture_datasets(tmp_path),
        tmp_path,
        sample_packing=True,
        sequence_len=1024,
        micro_batch_size=1,
        max_steps=3,
    )
    result = run_axolotl(
        ["train", str(write_config(cfg, tmp_path / "cfg.yml")), "--launcher", "python"],
        cwd=tmp_path,
    )
    _assert_trained(result, tmp_path / "out")


@pytest.mark.slow
def test_train_lora_embedded_model(embedded_model_dir, tmp_path):
    """Once on the real SmolLM2-135M-Instruct: two LoRA steps on the mixed data."""
    cfg = lora_config(
        embedded_model_dir, fixture_datasets(tmp_path), tmp_path, max_steps=2, sequence_len=384
    )
    result = run_axolotl(
        ["train", str(write_config(cfg, tmp_path / "cfg.yml")), "--launcher", "python"],
        cwd=tmp_path,
    )
    _assert_trained(result, tmp_path / "out")
