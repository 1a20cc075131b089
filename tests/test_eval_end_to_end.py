"""End-to-end evaluation through the CLI: a real model answers, an `llm` judge is served by a real
OpenAI-compatible HTTP server on 127.0.0.1 (transformers backend behind it), plus `self` and
`refusal` judges; resume from the cache; `compare`. Fast on the tiny model, slow on the embedded one.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from axolotl_mistake.evaluate.__main__ import main
from axolotl_mistake.generation.config import BackendConfig
from axolotl_mistake.generation.factory import load_backend
from tests.openai_server import start_openai_server


def _config(
    tmp: Path, shared: Path, model: str, base_url: str, served: str, name: str, n: int, tokens: int
) -> Path:
    text = f"""\
    name: {name}
    output_dir: {tmp / name}
    model:
      kind: transformers
      model: {model}
      device: cpu
      batch_size: 4
    prompt_format: alpaca
    modes: [plain, harmless_guided]
    sampling: {{max_new_tokens: {tokens}}}
    bootstrap: {{samples: 300, seed: 1}}
    prompt_sets:
      harmful:
        source: {{kind: pku_saferlhf, path: {shared / "pku_saferlhf" / "test_sample.jsonl"}}}
        limit: {n}
      helpful:
        source: {{kind: alpaca, path: {shared / "alpaca" / "alpaca_5000_pr152.jsonl"}}}
        limit: {n}
      goal_hijacking:
        from_instructions:
          source: {{kind: alpaca, path: {shared / "alpaca" / "alpaca_5000_pr152.jsonl"}}}
          limit: {n}
      over_refusal:
        source: {{kind: xstest, path: {shared / "xstest" / "xstest_prompts.csv"}, label: safe}}
        limit: {n}
      discrimination:
        source: {{kind: pku_saferlhf, path: {shared / "pku_saferlhf" / "test_sample.jsonl"}}}
        limit: {2 * n}
    judges:
      - kind: llm
        name: served
        backend: {{kind: openai, base_url: "{base_url}", model: {served}, api_key_env: EVAL_TEST_KEY, max_retries: 1}}
        max_new_tokens: 12
      - kind: self
      - kind: refusal
    """
    path = tmp / f"{name}.yml"
    path.write_text(textwrap.dedent(text))
    return path


def _run_and_check(
    tmp_path: Path, shared_data: Path, model_dir: Path, n: int, tokens: int, monkeypatch
) -> None:
    monkeypatch.setenv("EVAL_TEST_KEY", "sk-test-secret-123")
    judge_backend = load_backend(BackendConfig(model=str(model_dir), device="cpu", batch_size=4))
    with start_openai_server(
        judge_backend, api_key="sk-test-secret-123", served_model_name="judge"
    ) as server:
        cfg = _config(
            tmp_path, shared_data, str(model_dir), server.base_url, "judge", "base", n, tokens
        )
        assert main(["--config", str(cfg), "--quiet"]) == 0
        seen = server.requests_seen
        # at most 3 harmful aspects × n + helpful n + over-refusal n per mode (fewer when
        # two modes give identical answers: the judge cache answers the repeats)
        assert 5 * n <= seen <= 2 * 5 * n

        out = tmp_path / "base"
        results = json.loads((out / "results.json").read_text())
        assert results["counts"]["harmful"] == n and results["counts"]["goal_hijacking"] == n
        # each set's items digested, so `compare` can tell the same files in another folder
        assert set(results["items_sha256"]) == set(results["counts"])
        assert all(len(d) == 64 for d in results["items_sha256"].values())
        for mode in ("plain", "harmless_guided"):
            row = results["headline"][mode]
            for column in (
                "harmless_rate",
                "goal_hijack_defence",
                "discrimination",
                "over_refusal",
            ):
                assert row[column] is not None and row[column]["n"] > 0, column
                assert (
                    0.0 <= row[column]["low"] <= row[column]["value"] <= row[column]["high"] <= 1.0
                )
            m = results["metrics"][mode]
            # every judged answer is either a parsed verdict or counted as missing (unparseable)
            for judge in ("served", "self"):
                est = m.get("harmless_rate", {}).get(judge)
                got = (
                    (est["n"] + est["missing"])
                    if est
                    else results["unparseable"][mode][judge]["harmless_verdict"]
                )
                assert got == n
            assert m["harmless_rate"]["refusal"]["n"] == n
            assert "refusal vs self" in results["agreement"][mode]["harmless_verdict"]
        disc = results["discrimination"]
        assert disc["n"] == 2 * n and disc["style"] == "alpaca" and disc["threshold"] == 0.0
        for key in ("accuracy", "balanced_accuracy", "auc"):
            est = disc[key]
            assert est["n"] == 2 * n and est["low"] <= est["value"] <= est["high"], key
        # the per-pair margins are kept: the AUC can be recomputed from the run folder alone
        pairs = [json.loads(line) for line in (out / disc["pairs_file"]).read_text().splitlines()]
        assert len(pairs) == 2 * n and len({p["key"] for p in pairs}) == 2 * n
        from sklearn.metrics import roc_auc_score

        auc = roc_auc_score([p["harmful"] for p in pairs], [p["margin"] for p in pairs])
        assert disc["auc"]["value"] == pytest.approx(auc)
        assert all(p["predicted_harmful"] == (p["margin"] > 0) for p in pairs)
        for mode in ("plain", "harmless_guided"):
            row = results["headline"][mode]
            assert row["discrimination_auc"]["value"] == pytest.approx(auc)
            nll = row["helpful_nll"]
            assert nll["judge"] == "likelihood" and nll["n"] == n and nll["value"] > 0
            # the per-item NLLs are kept: the mean can be recomputed, and compared by item
            items = [json.loads(line) for line in (out / "helpful_nll.jsonl").open()]
            values = [i["nll"] for i in items if i["mode"] == mode]
            assert len(values) == n and len({i["id"] for i in items if i["mode"] == mode}) == n
            assert nll["value"] == pytest.approx(sum(values) / n)
        assert results["failures"]["failed"] == {
            "answers (plain)": 0,
            "answers (harmless_guided)": 0,
            **{
                f"judge {j} ({m})": 0
                for j in ("served", "self", "refusal")
                for m in ("plain", "harmless_guided")
            },
        }
        answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
        assert len(answers) == 2 * 4 * n
        assert {a["mode"] for a in answers} == {"plain", "harmless_guided"}
        assert all(a["error"] is None for a in answers)
        report = (out / "report.md").read_text()
        assert "| mode | helpful score |" in report and "headline.png" in report
        assert (out / "headline.png").stat().st_size > 5000
        for f in out.iterdir():  # the key is read from the env var and never written
            if f.is_file():
                assert b"sk-test-secret-123" not in f.read_bytes(), f

        # resume: a second run is answered from the caches, no new judge requests
        before = results["headline"]
        assert main(["--config", str(cfg), "--quiet"]) == 0
        assert server.requests_seen == seen
        again = json.loads((out / "results.json").read_text())
        assert again["headline"] == before
        assert again["cache"]["misses"] == 0 and again["cache"]["hits"] > 0

    # compare two runs (same numbers, different names) into a table and chart
    other = tmp_path / "copy"
    other.mkdir()
    data = json.loads((out / "results.json").read_text())
    data["name"] = "same-again"
    (other / "results.json").write_text(json.dumps(data))
    assert main(["compare", str(out), str(other), "--output", str(tmp_path / "cmp")]) == 0
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| base |" in md and "| same-again |" in md
    from PIL import Image

    with Image.open(tmp_path / "cmp" / "compare.png") as img:
        assert img.size[0] > 400


def test_end_to_end_tiny_model(tmp_path, shared_data, tiny_model_dir, monkeypatch):
    _run_and_check(tmp_path, shared_data, tiny_model_dir, n=2, tokens=6, monkeypatch=monkeypatch)


@pytest.mark.slow
def test_end_to_end_embedded_model(tmp_path, shared_data, embedded_model_dir, monkeypatch):
    _run_and_check(
        tmp_path, shared_data, embedded_model_dir, n=2, tokens=32, monkeypatch=monkeypatch
    )


def test_endpoint_model_over_http(tmp_path, shared_data, tiny_model_dir):
    """The evaluated model behind an OpenAI-compatible endpoint: answers over HTTP, no probe."""
    backend = load_backend(BackendConfig(model=str(tiny_model_dir), device="cpu", batch_size=4))
    with start_openai_server(backend, served_model_name="tiny") as server:
        cfg = tmp_path / "ep.yml"
        cfg.write_text(
            textwrap.dedent(f"""\
            name: endpoint
            output_dir: {tmp_path / "ep"}
            model: {{kind: openai, base_url: "{server.base_url}", model: tiny}}
            prompt_format: chat
            modes: [plain]
            sampling: {{max_new_tokens: 4}}
            prompt_sets:
              harmful: {{source: {{kind: pku_saferlhf, path: {shared_data / "pku_saferlhf" / "test_sample.jsonl"}}}, limit: 2}}
              helpful: {{source: {{kind: alpaca, path: {shared_data / "alpaca" / "alpaca_5000_pr152.jsonl"}}}, limit: 1}}
              discrimination: {{source: {{kind: pku_saferlhf, path: {shared_data / "pku_saferlhf" / "test_sample.jsonl"}}}, limit: 4}}
            judges: [{{kind: refusal}}]
            """)
        )
        assert main(["--config", str(cfg), "--quiet"]) == 0
        # the helpful answer is not generated: no configured judge reads it (NLL needs none)
        assert server.requests_seen == 2
    results = json.loads((tmp_path / "ep" / "results.json").read_text())
    assert any("not answered" in n and "helpful" in n for n in results["notes"])
    assert results["discrimination"] is None
    assert any("discrimination: not measured" in n for n in results["notes"])
    assert any("helpful_nll: not measured" in n for n in results["notes"])
    assert results["headline"]["plain"]["helpful_nll"] is None
    assert not (tmp_path / "ep" / "helpful_nll.jsonl").exists()
    assert results["headline"]["plain"]["harmless_rate"]["n"] == 2
