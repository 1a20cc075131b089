"""The benchmarks' --json: a destination that cannot be written is refused before the (long)
run, and the numbers are written atomically, the parent folder made on the way. The heavy parts
(models, `axolotl train`) are replaced by stand-ins: only the scripts' own handling is tested."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts are run from there
bench_generate = importlib.import_module("bench_generate")
bench_train = importlib.import_module("bench_train")
SCRIPTS = [bench_generate, bench_train]
IDS = ["bench_generate", "bench_train"]


@pytest.fixture
def no_benchmark(monkeypatch):
    """Any step past argument checking fails at once (an import the run needs is missing)."""
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "axolotl_mistake.models", None)


def _usage_error(capsys, script, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        script.main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("script", SCRIPTS, ids=IDS)
def test_json_under_a_file_is_refused_before_the_run(tmp_path, capsys, no_benchmark, script):
    blocker = tmp_path / "results"
    blocker.write_text("")
    err = _usage_error(capsys, script, ["--json", str(blocker / "run.json")])
    assert f"argument --json: {blocker}: exists and is not a folder" in err
    err = _usage_error(capsys, script, ["--json", str(blocker / "sub" / "run.json")])
    assert f"'{blocker}' is a file, not a folder" in err


@pytest.mark.parametrize("script", SCRIPTS, ids=IDS)
def test_json_naming_a_folder_is_refused_before_the_run(tmp_path, capsys, no_benchmark, script):
    err = _usage_error(capsys, script, ["--json", str(tmp_path)])
    assert f"argument --json: {tmp_path}: is a folder, not a file" in err


@pytest.mark.parametrize("script", SCRIPTS, ids=IDS)
def test_a_json_folder_still_to_make_is_accepted_and_not_made_yet(tmp_path, script):
    parser = SimpleNamespace(prog="bench", error=pytest.fail)
    script.check_json_destination(parser, tmp_path / "new" / "sub" / "run.json")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("script", "option"),
    [
        (bench_generate, "--n-prompts"),
        (bench_generate, "--max-new-tokens"),
        (bench_generate, "--batch-size"),
        (bench_generate, "--naive-prompts"),
        (bench_train, "--steps"),
        (bench_train, "--repeats"),
        (bench_train, "--probe-pairs"),
        (bench_train, "--probe-batch-size"),
    ],
)
@pytest.mark.parametrize("number", ["0", "-3"])
def test_counts_below_one_are_refused(capsys, no_benchmark, script, option, number):
    err = _usage_error(capsys, script, [option, number])
    assert f"argument {option}: must be at least 1, not {number}" in err


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_bench_generate_writes_json_into_a_new_folder(tmp_path, monkeypatch):
    import torch

    from axolotl_mistake.generation.transformers import TransformersBackend

    def generate(requests, params):
        return [SimpleNamespace(ok=True, text="x", completion_tokens=2, error=None)] * len(requests)

    backend = SimpleNamespace(
        model_id="fake",
        device=torch.device("cpu"),
        model=torch.nn.Linear(1, 1),
        generate=generate,
    )
    monkeypatch.setattr(TransformersBackend, "load", lambda *a, **k: backend)
    monkeypatch.setattr(
        bench_generate, "naive_loop", lambda b, requests, n: (["x"] * len(requests), 8, 2.0)
    )
    out = tmp_path / "new" / "sub" / "generate.json"
    assert bench_generate.main(["--n-prompts", "4", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["model"] == "fake" and result["n_prompts"] == 4
    assert _leftovers(out.parent) == []


def test_bench_train_writes_json_into_a_new_folder(tmp_path, monkeypatch):
    run = {"tokens": 10.0, "runtime_s": 1.0, "tokens_per_s": 10.0, "plugin_loaded": True}
    monkeypatch.setattr(bench_train, "run_once", lambda config, workdir: dict(run))
    monkeypatch.setattr(
        bench_train,
        "probe_cost",
        lambda *a, **k: {"pairs": 2, "batch_size": 1, "seconds_median": 0.5},
    )
    out = tmp_path / "new" / "sub" / "train.json"
    argv = ["--base-model", "m", "--workdir", str(tmp_path / "w"), "--repeats", "1"]
    assert bench_train.main([*argv, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["ratio"] == 1.0
    assert _leftovers(out.parent) == []
