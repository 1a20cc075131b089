"""The embedded default build (builtin sets, embedded SmolLM2 on CPU, guided mistakes, self
analyses), shrunk to a few prompts and tokens so it runs in the test suite."""

from __future__ import annotations

import json

import pytest

from dataset_builders.build import main


@pytest.mark.slow
def test_embedded_default_end_to_end(embedded_model_dir, tmp_path, capsys):
    out = tmp_path / "default"
    argv = [
        "--output",
        str(out),
        "--select.redteam_n",
        "3",
        "--select.helpful_n",
        "4",
        "--mistakes.max_new_tokens",
        "12",
        "--analyses.max_new_tokens",
        "12",
        "--analyses.min_chars",
        "1",
        "--progress",
        "false",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "manifest.json").read_text())
    assert m["mistake_source"] == m["analyst"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert m["models"]["model"]["kind"] == "transformers"
    assert m["counts"]["mistakes"]["calls"] == 3
    assert m["files"]["sft_helpful.jsonl"]["rows"] == 4
    assert m["files"]["sft_harmless.jsonl"]["rows"] == 3
    rows = [json.loads(x) for x in (out / "mistake_analysis.jsonl").read_text().splitlines()]
    assert (
        len(rows) == m["files"]["mistake_analysis.jsonl"]["rows"] == m["counts"]["analyses"]["kept"]
    )
    for r in rows:
        assert r["bad"] and r["critique"] and r["id"].startswith("redteam/builtin:redteam")
    assert "datasets:" in printed and "axolotl_mistake.unguided_analysis" in printed
    # a rerun is answered from the cache alone
    assert main(argv) == 0
    assert json.loads((out / "manifest.json").read_text())["calls"]["misses"] == 0
