"""Failing loudly: a dead judge or model endpoint stops the run (exit 1, summary, no results);
failures within the budget are reported; missing inputs stop it before anything is created
(exit 2); repeated flags are refused; a folder the tool did not make is never written into
unless asked; prompts longer than the model's context are dropped and counted, never run."""

from __future__ import annotations

import json
import shutil
import socket
import textwrap
from pathlib import Path

import pytest

from axolotl_mistake.evaluate.__main__ import main
from axolotl_mistake.fileio import TEMP_SUFFIX
from axolotl_mistake.generation.config import BackendConfig
from axolotl_mistake.generation.factory import load_backend
from tests.openai_server import FaultPlan, start_openai_server


def _dead_url() -> str:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _config(
    tmp: Path, shared: Path, model: str, *, judges: str, extra: str = "", n: int = 2
) -> Path:
    text = f"""\
name: fail
output_dir: {tmp / "run"}
model: {{kind: transformers, model: {model}, device: cpu, batch_size: 4}}
modes: [plain]
sampling: {{max_new_tokens: 3}}
bootstrap: {{samples: 100}}
prompt_sets:
  harmful:
    source: {{kind: pku_saferlhf, path: {shared / "pku_saferlhf" / "test_sample.jsonl"}}}
    limit: {n}
judges:
"""
    path = tmp / "eval.yml"
    path.write_text(text + textwrap.indent(textwrap.dedent(judges), "  ") + textwrap.dedent(extra))
    return path


def _refusal_and_dead_judge() -> str:
    """The refusal judge and an llm judge `dead` whose endpoint nothing listens on."""
    return f"""\
    - kind: refusal
    - kind: llm
      name: dead
      backend: {{kind: openai, base_url: "{_dead_url()}", model: judge, max_retries: 0}}
    """


def test_dead_judge_endpoint_exits_1_with_a_summary_and_no_results(
    tmp_path, shared_data, tiny_model_dir, capsys
):
    cfg = _config(tmp_path, shared_data, str(tiny_model_dir), judges=_refusal_and_dead_judge())
    assert main(["--config", str(cfg), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "error: too many failed model calls" in err
    assert "judge dead (plain): 6/6 failed" in err  # 3 harmful aspects x 2 answers
    assert "connection error" in err and "rerun" in err
    run = tmp_path / "run"
    assert not (run / "results.json").exists() and not (run / "report.md").exists()
    assert (run / "cache.sqlite").exists()  # the answers are kept for the rerun


def test_dead_model_endpoint_stops_before_judging(tmp_path, shared_data, capsys):
    cfg = _config(tmp_path, shared_data, "unused", judges="- kind: refusal\n")
    text = cfg.read_text().replace(
        "{kind: transformers, model: unused, device: cpu, batch_size: 4}",
        f'{{kind: openai, base_url: "{_dead_url()}", model: m, max_retries: 0}}',
    )
    cfg.write_text(text)
    assert main(["--config", str(cfg), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "answers (plain): 2/2 failed" in err and "judge" not in err.split("first errors")[0]


def test_failures_within_the_budget_are_reported(tmp_path, shared_data, tiny_model_dir):
    backend = load_backend(BackendConfig(model=str(tiny_model_dir), device="cpu", batch_size=4))
    with start_openai_server(backend, FaultPlan({"500": [2]})) as server:
        # the tiny model's judge replies are unparseable: the refusal judge gives the run a
        # metric (a run where no metric has a value exits non-zero)
        judges = f"""\
        - kind: refusal
        - kind: llm
          name: flaky
          backend: {{kind: openai, base_url: "{server.base_url}", model: tiny, max_retries: 0, concurrency: 1}}
          max_new_tokens: 4
        """
        cfg = _config(
            tmp_path,
            shared_data,
            str(tiny_model_dir),
            judges=judges,
            extra="max_failed_fraction: 0.5\n",
        )
        assert main(["--config", str(cfg), "--quiet"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["failures"]["failed"]["judge flaky (plain)"] == 1
    assert results["failures"]["calls"]["judge flaky (plain)"] == 6
    assert any("HTTP 500" in e for e in results["failures"]["examples"])
    assert "Failed model calls" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.parametrize(
    "key, value, field",
    [
        ("adapter", "no_such_lora", "model.adapter"),
        ("model", "./no_such_model", "model.model"),
    ],
)
def test_missing_model_or_adapter_is_exit_2_before_anything_is_created(
    tmp_path, shared_data, tiny_model_dir, capsys, key, value, field
):
    cfg = _config(tmp_path, shared_data, str(tiny_model_dir), judges="- kind: refusal\n")
    text = cfg.read_text()
    if key == "adapter":
        text = text.replace("device: cpu,", f"adapter: {value}, device: cpu,")
    else:
        text = text.replace(f"model: {tiny_model_dir},", f"model: {value},")
    cfg.write_text(text)
    assert main(["--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("model:"))
    assert f"error: {cfg}:{line}, field '{field}'" in err and value.lstrip("./") in err
    assert not (tmp_path / "run").exists()


def test_missing_prompt_file_is_located_in_the_config(tmp_path, shared_data, capsys):
    cfg = _config(tmp_path, shared_data, "embedded", judges="- kind: refusal\n")
    text = cfg.read_text().replace("test_sample.jsonl", "gone.jsonl")
    cfg.write_text(text)
    assert main(["--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "gone.jsonl" in t)
    assert f"{cfg}:{line}, field 'prompt_sets.harmful.source.path': file not found" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "a.yml", "--config", "b.yml"],
        ["--config=a.yml", "--config=a.yml"],
        ["--config", "a.yml", "--quiet", "--quiet"],
        ["--config", "a.yml", "--name", "x", "--name", "y"],
        ["--config", "a.yml", "--model", "{model: embedded}", "--model.adapter", "lora"],
    ],
)
def test_repeated_or_conflicting_run_flags_are_refused(tmp_path, capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: <command line>") and ("twice" in err), err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "r1", "--output", "x", "--output", "y"],
        ["compare", "r1", "--output", "x", "--mode", "plain", "--mode", "harmless_guided"],
    ],
)
def test_repeated_compare_flags_are_refused(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "given twice" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_folder_the_tool_did_not_make_is_refused_unless_overwrite(
    tmp_path, shared_data, tiny_model_dir, capsys
):
    cfg = _config(tmp_path, shared_data, str(tiny_model_dir), judges="- kind: refusal\n", n=1)
    run = tmp_path / "run"
    run.mkdir()
    (run / "thesis.tex").write_text("precious")
    assert main(["--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "did not write (thesis.tex)" in err and "--overwrite" in err
    assert sorted(p.name for p in run.iterdir()) == ["thesis.tex"]
    (run / ".draft.tmp").write_text("the user's own temp file")
    assert main(["--config", str(cfg), "--quiet", "--overwrite"]) == 0
    assert (run / "thesis.tex").read_text() == "precious" and (run / "results.json").exists()
    assert (run / ".draft.tmp").read_text() == "the user's own temp file"  # nothing deleted
    # a folder the tool made (our results.json) is reused without asking, e.g. to resume;
    # what a killed atomic write left behind is cleared
    (run / "thesis.tex").unlink()
    stale = run / f".results.json.x1y2{TEMP_SUFFIX}"
    stale.write_text("half a file")
    assert main(["--config", str(cfg), "--quiet"]) == 0
    assert not stale.exists() and (run / ".draft.tmp").exists()
    # an empty folder is fine too
    shutil.rmtree(run)
    run.mkdir()
    assert main(["--config", str(cfg), "--quiet"]) == 0


def test_prompts_longer_than_the_context_are_dropped_and_counted(
    tmp_path, shared_data, tiny_model_dir
):
    short = tmp_path / "short-context-model"
    shutil.copytree(tiny_model_dir, short)
    config = json.loads((short / "config.json").read_text())
    config["max_position_embeddings"] = 80  # the first Alpaca prompt needs 83 tokens
    (short / "config.json").write_text(json.dumps(config))
    # the `self` judge rates helpfulness, so the helpful prompts are answered (and dropped)
    cfg = _config(tmp_path, shared_data, str(short), judges="- kind: refusal\n- kind: self\n", n=6)
    text = (
        cfg.read_text()
        .replace("  harmful:", "  helpful:")
        .replace(
            "{kind: pku_saferlhf, path: " + str(shared_data / "pku_saferlhf" / "test_sample.jsonl"),
            "{kind: alpaca, path: " + str(shared_data / "alpaca" / "alpaca_5000_pr152.jsonl"),
        )
    )
    cfg.write_text(text.replace("judges:", "prompt_format: alpaca\njudges:"))
    assert main(["--config", str(cfg), "--quiet"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    dropped = results["dropped"]["counts"]
    answers = (tmp_path / "run" / "answers.jsonl").read_text().splitlines()
    assert dropped.get("plain/helpful", 0) > 0 and dropped.get("plain/helpful_nll", 0) > 0
    assert len(answers) + dropped["plain/helpful"] == 6  # never answered, never an error
    assert all(json.loads(a)["error"] is None for a in answers)
    assert results["headline"]["plain"]["helpful_nll"]["n"] == 6 - dropped["plain/helpful_nll"]
    kept = (tmp_path / "run" / "helpful_nll.jsonl").read_text().splitlines()
    assert len(kept) == 6 - dropped["plain/helpful_nll"]  # a dropped item has no line
    assert any("dropped as longer than the model's context" in n for n in results["notes"])


def test_a_run_or_compare_into_a_folder_in_use_stops(tmp_path, shared_data, tiny_model_dir, capsys):
    """A second evaluation (or compare) into a folder another one is writing (a rerun started
    while the first still runs) stops at once, exit 2, without clearing the first one's temp
    file as stale; the folder is usable again once the first one ends."""
    from tests.folder_holder import held_folder

    cfg = _config(tmp_path, shared_data, str(tiny_model_dir), judges="- kind: refusal\n", n=1)
    run, cmp = tmp_path / "run", tmp_path / "cmp"
    assert main(["--config", str(cfg), "--quiet"]) == 0
    assert main(["compare", str(run), "--output", str(cmp)]) == 0
    results = (run / "results.json").read_bytes()
    capsys.readouterr()
    with held_folder(run) as temp:
        assert main(["--config", str(cfg), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert "another run of the evaluator is writing into this folder" in err, err
        assert "\n" not in err  # before loading the model (no load bar)
        assert temp.read_text() == "being written"
        assert (run / "results.json").read_bytes() == results
    assert main(["--config", str(cfg), "--quiet"]) == 0
    assert not temp.exists()
    with held_folder(cmp) as temp:
        assert main(["compare", str(run), "--output", str(cmp)]) == 2
        assert "another run of compare is writing into this folder" in capsys.readouterr().err
        assert temp.exists()


def test_a_failed_rerun_says_the_folder_still_holds_the_earlier_runs_results(
    tmp_path, shared_data, tiny_model_dir, capsys
):
    cfg = _config(tmp_path, shared_data, str(tiny_model_dir), judges="- kind: refusal\n")
    assert main(["--config", str(cfg), "--quiet"]) == 0
    run = tmp_path / "run"
    before = (run / "results.json").read_bytes()
    created = json.loads(before)["created"]
    capsys.readouterr()
    cfg = _config(tmp_path, shared_data, str(tiny_model_dir), judges=_refusal_and_dead_judge())
    assert main(["--config", str(cfg), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "error: too many failed model calls" in err
    assert f"{run / 'results.json'} and report.md are still those of an earlier run" in err
    assert f"(created {created}), not of this one" in err
    assert (run / "results.json").read_bytes() == before  # a finished run is never half-replaced


def test_a_first_failed_run_mentions_no_earlier_run(tmp_path, shared_data, tiny_model_dir, capsys):
    cfg = _config(tmp_path, shared_data, str(tiny_model_dir), judges=_refusal_and_dead_judge())
    assert main(["--config", str(cfg), "--quiet"]) == 1
    assert "earlier run" not in capsys.readouterr().err


def test_a_rerun_killed_while_writing_leaves_no_earlier_results_beside_new_answers(
    tmp_path, shared_data, tiny_model_dir
):
    cfg = _config(tmp_path, shared_data, str(tiny_model_dir), judges="- kind: refusal\n")
    assert main(["--config", str(cfg), "--quiet"]) == 0
    run = tmp_path / "run"
    # answers.jsonl cannot be replaced (a non-empty folder stands in its place): the write stops
    # there, as a kill would
    (run / "answers.jsonl").unlink()
    (run / "answers.jsonl").mkdir()
    (run / "answers.jsonl" / "x").write_text("x")
    with pytest.raises(OSError):
        main(["--config", str(cfg), "--quiet"])
    assert not (run / "results.json").exists() and not (run / "report.md").exists()
    shutil.rmtree(run / "answers.jsonl")
    assert main(["--config", str(cfg), "--quiet"]) == 0  # the rerun resumes and finishes
    assert (run / "results.json").exists()


def test_a_rerun_without_probe_or_nll_removes_the_earlier_per_item_files(
    tmp_path, shared_data, tiny_model_dir
):
    """A run folder's pairs and NLL files belong to the run whose results.json sits beside
    them: rerun into the same folder with neither measured, the earlier run's go."""
    alpaca = shared_data / "alpaca" / "alpaca_5000_pr152.jsonl"
    pku = shared_data / "pku_saferlhf" / "test_sample.jsonl"
    cfg = _config(tmp_path, shared_data, str(tiny_model_dir), judges="- kind: refusal\n", n=1)
    plain = cfg.read_text()
    cfg.write_text(
        plain.replace(
            "judges:",
            f"  helpful: {{source: {{kind: alpaca, path: {alpaca}}}, limit: 2}}\n"
            f"  discrimination: {{source: {{kind: pku_saferlhf, path: {pku}}}, limit: 4}}\n"
            "prompt_format: alpaca\njudges:",
        )
    )
    run = tmp_path / "run"
    assert main(["--config", str(cfg), "--quiet"]) == 0
    results = json.loads((run / "results.json").read_text())
    assert (run / results["discrimination"]["pairs_file"]).exists()
    assert (run / "helpful_nll.jsonl").exists()
    cfg.write_text(plain)  # harmful prompts only: no probe, no reference NLL
    assert main(["--config", str(cfg), "--quiet"]) == 0
    assert json.loads((run / "results.json").read_text())["discrimination"] is None
    assert sorted(p.name for p in run.iterdir() if p.suffix == ".jsonl") == ["answers.jsonl"]
    # a folder no run of ours made, written into with --overwrite: nothing of the user's goes
    shutil.rmtree(run)
    run.mkdir()
    for name in ("discrimination_pairs.jsonl", "helpful_nll.jsonl"):
        (run / name).write_text("the user's own\n")
    assert main(["--config", str(cfg), "--quiet", "--overwrite"]) == 0
    assert (run / "results.json").exists()
    for name in ("discrimination_pairs.jsonl", "helpful_nll.jsonl"):
        assert (run / name).read_text() == "the user's own\n"
