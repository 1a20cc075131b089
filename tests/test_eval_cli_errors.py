"""Bad input and runs that measure nothing, as the evaluation CLI reports them.

A model that cannot be loaded (API key variable unset, a folder that is not a model, a Hub id
not in the cache offline) or prompt sets that nothing can measure are exit 2 naming the config
key, before the run folder exists; an empty `prompt_sets` is refused by the schema. A run whose
calls all failed, or that ends with no metric, exits non-zero whatever the failure budget and
writes no result. `compare` refuses a folder it did not make, an output inside one of its runs,
and a file in the way, each with a one-line error and exit 2.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import textwrap
from pathlib import Path

import pytest

from axolotl_mistake.evaluate.__main__ import main


def _dead_url() -> str:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _write(tmp: Path, model: str, sets: str, extra: str = "", judges: str = "") -> Path:
    """An eval.yml with `model` (a flow mapping) and `sets` (lines under prompt_sets)."""
    text = textwrap.dedent(f"""\
    name: t
    output_dir: {tmp / "run"}
    model: {model}
    modes: [plain]
    sampling: {{max_new_tokens: 3}}
    bootstrap: {{samples: 100}}
    prompt_sets:
    """)
    text += textwrap.indent(textwrap.dedent(sets), "  ")
    text += "judges:\n  - kind: refusal\n" + textwrap.indent(textwrap.dedent(judges), "  ")
    path = tmp / "eval.yml"
    path.write_text(text + textwrap.dedent(extra))
    return path


def _line(cfg: Path, start: str) -> int:
    return next(i for i, t in enumerate(cfg.read_text().splitlines(), 1) if t.startswith(start))


def _endpoint(**keys: str) -> str:
    more = "".join(f", {k}: {v}" for k, v in keys.items())
    return f'{{kind: openai, base_url: "{_dead_url()}", model: m, max_retries: 0{more}}}'


HARMFUL = "harmful: {source: {kind: builtin, name: redteam}, limit: 3}\n"


# ------------------------------------------------------------ models that cannot be loaded


def test_unset_api_key_variable_is_exit_2_naming_the_key(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("EVAL_TEST_UNSET_KEY", raising=False)
    cfg = _write(tmp_path, _endpoint(api_key_env="EVAL_TEST_UNSET_KEY"), HARMFUL)
    assert main(["--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cfg}:{_line(cfg, 'model:')}, field 'model.api_key_env'")
    assert "EVAL_TEST_UNSET_KEY" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_folder_that_is_not_a_model_is_exit_2(tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.md").write_text("not a model")
    cfg = _write(tmp_path, f"{{kind: transformers, model: {notes}, device: cpu}}", HARMFUL)
    assert main(["--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cfg}:{_line(cfg, 'model:')}, field 'model.model'")
    assert "not a model folder" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_hub_id_missing_offline_is_exit_2_on_the_command_line(
    tmp_path, capsys, tiny_model_dir, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = _write(tmp_path, f"{{kind: transformers, model: {tiny_model_dir}, device: cpu}}", HARMFUL)
    argv = ["--config", str(cfg), "--quiet", "--model.model", "no-such-org/not-cached-model"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: <command line>, field 'model.model': cannot load model")
    assert "no-such-org/not-cached-model" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_judge_model_that_cannot_load_is_exit_2_naming_the_judge(tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("x")
    judge = f"- kind: llm\n  backend: {{kind: transformers, model: {notes}, device: cpu}}\n"
    cfg = _write(tmp_path, _endpoint(), HARMFUL, judges=judge)
    assert main(["--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    line = _line(cfg, "    backend:")
    assert err.startswith(f"error: {cfg}:{line}, field 'judges.1.backend.model'"), err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------ nothing to measure


def test_empty_prompt_sets_are_refused_by_the_schema(tmp_path, capsys):
    cfg = _write(tmp_path, _endpoint(), "{}\n")
    cfg.write_text(cfg.read_text().replace("prompt_sets:\n  {}", "prompt_sets: {}"))
    assert main(["--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cfg}:{_line(cfg, 'prompt_sets')}, field 'prompt_sets'"), err
    assert "at least one prompt set" in err
    assert not (tmp_path / "run").exists()


def test_sets_an_endpoint_cannot_measure_are_exit_2_before_any_call(tmp_path, capsys):
    # discrimination and the helpful NLL need the weights; the refusal judge rates no
    # helpfulness: with an endpoint model nothing at all would be measured
    sets = """\
    discrimination: builtin
    helpful: {source: {kind: builtin, name: helpful}, limit: 2}
    """
    cfg = _write(tmp_path, _endpoint(), sets)
    assert main(["--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cfg}:{_line(cfg, 'prompt_sets')}, field 'prompt_sets'"), err
    assert "nothing can be measured" in err and "discrimination needs a local model" in err
    assert not (tmp_path / "run").exists()


def test_all_calls_failed_is_non_zero_even_with_the_whole_budget(tmp_path, capsys):
    cfg = _write(tmp_path, _endpoint(timeout_s=2), HARMFUL, extra="max_failed_fraction: 1\n")
    assert main(["--config", str(cfg), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "error: every model call failed (3/3)" in err and "answers (plain): 3/3 failed" in err
    run = tmp_path / "run"
    assert not (run / "results.json").exists() and not (run / "report.md").exists()
    assert (run / "cache.sqlite").exists()  # kept for the rerun


def test_a_run_with_no_metric_is_non_zero(tmp_path, capsys, tiny_model_dir):
    # helpful prompts without reference answers and no judge of helpfulness: no call fails,
    # but the NLL has nothing to read, so no metric gets a value
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"instruction": f"say {w}"}) + "\n" for w in "ab"))
    sets = f"helpful: {{source: {{kind: jsonl, path: {prompts}, fields: {{instruction: instruction}}}}}}\n"
    cfg = _write(tmp_path, f"{{kind: transformers, model: {tiny_model_dir}, device: cpu}}", sets)
    assert main(["--config", str(cfg), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "error: no metric got a value" in err
    assert not (tmp_path / "run" / "results.json").exists()


def test_an_output_dir_below_a_file_is_exit_2(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    cfg = _write(tmp_path, _endpoint(), HARMFUL)
    argv = ["--config", str(cfg), "--quiet", "--output_dir", str(tmp_path / "afile" / "sub")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "field 'output_dir'" in err and "is a file, not a folder" in err
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------ compare's output folder


@pytest.fixture
def two_runs(tmp_path) -> list[Path]:
    from tests.test_eval_report import _results

    runs = []
    for name in ("base", "sft"):
        d = tmp_path / "runs" / name
        d.mkdir(parents=True)
        (d / "results.json").write_text(_results(name).to_json())
        runs.append(d)
    return runs


def _compare(runs: list[Path], output: Path, *more: str) -> int:
    return main(["compare", *map(str, runs), "--output", str(output), *more])


def test_compare_refuses_a_folder_it_did_not_make(tmp_path, two_runs, capsys):
    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "compare.md").write_text("my own notes")
    assert _compare(two_runs, docs) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {docs}, field 'output'") and "--overwrite" in err
    assert sorted(p.name for p in docs.iterdir()) == ["compare.md"]
    assert (docs / "compare.md").read_text() == "my own notes"
    # asked to: written, nothing else touched
    assert _compare(two_runs, docs, "--overwrite") == 0
    assert "| base |" in (docs / "compare.md").read_text()


def test_compare_reuses_its_own_or_an_empty_folder(tmp_path, two_runs):
    out = tmp_path / "cmp"
    out.mkdir()
    assert _compare(two_runs, out) == 0
    first = json.loads((out / "compare.json").read_text())
    assert _compare(two_runs[:1], out) == 0  # a folder compare made is replaced in place
    assert len(json.loads((out / "compare.json").read_text())["rows"]) == 1
    assert len(first["rows"]) == 2
    # a folder compare made before it wrote its marker (a compare.json of its shape) is its own
    (out / ".axolotl-mistake-compare").unlink()
    assert _compare(two_runs, out) == 0 and (out / ".axolotl-mistake-compare").is_file()


@pytest.mark.parametrize(
    "where, message",
    [
        ("runs/base", "is the run"),
        ("runs/base/sub", "lies inside the run"),
        ("afile", "exists and is not a folder"),
        ("afile/sub", "is a file, not a folder"),
    ],
)
def test_compare_refuses_its_inputs_and_files_in_one_line(
    tmp_path, two_runs, capsys, where, message
):
    (tmp_path / "afile").write_text("x")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert _compare(two_runs, tmp_path / where) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_a_chat_probe_style_without_a_chat_template_is_exit_2_before_the_folder(
    tmp_path, capsys, tiny_model_dir
):
    """Found while the model is loaded, not after the run folder was made."""
    plain = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    tok = json.loads((plain / "tokenizer_config.json").read_text())
    tok.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(tok))
    cfg = _write(
        tmp_path,
        f"{{kind: transformers, model: {plain}, device: cpu}}",
        "discrimination: builtin\n",
        extra="probe_style: chat\n",
    )
    assert main(["--config", str(cfg), "--quiet"]) == 2
    errors = [t for t in capsys.readouterr().err.splitlines() if t.startswith("error: ")]
    assert len(errors) == 1 and "chat template" in errors[0]  # (weight loading prints a bar)
    assert errors[0].startswith(f"error: {cfg}:{_line(cfg, 'probe_style:')}, field 'probe_style'")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "old, new, message",
    [
        (rb'"sft"', b'"sf\xe9"', "not valid UTF-8"),  # a traceback before
        (rb'"value": [0-9.]+', b'"value": NaN', "holds NaN"),  # a NaN row in compare.json
    ],
)
def test_compare_names_a_damaged_results_file(tmp_path, two_runs, capsys, old, new, message):
    """A damaged results.json is exit 2 naming it, before anything is written."""
    file = two_runs[1] / "results.json"
    damaged, n = re.subn(old, new, file.read_bytes(), count=1)
    assert n == 1
    file.write_bytes(damaged)
    assert _compare(two_runs, tmp_path / "cmp") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {file}") and message in err
    assert not (tmp_path / "cmp").exists()


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_prompt_set_file_inside_the_output_dir_is_exit_2(tmp_path, capsys, overwrite):
    """A prompt set at <output_dir>/answers.jsonl was overwritten by the run's answers (with
    --overwrite): a data file the run reads may not lie in its output folder."""
    run = tmp_path / "run"
    run.mkdir()
    data = run / "answers.jsonl"
    data.write_text(json.dumps({"instruction": "How do I pick a lock?"}) + "\n")
    sets = f"harmful: {{source: {{kind: jsonl, path: {data}, fields: {{instruction: instruction}}}}}}\n"
    cfg = _write(tmp_path, _endpoint(), sets)
    argv = ["--config", str(cfg), "--quiet"] + (["--overwrite"] if overwrite else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "field 'output_dir'" in err
    assert f"the data file '{data}' lies inside the output '{run}'" in err
    assert sorted(p.name for p in run.iterdir()) == ["answers.jsonl"]
