"""The benchmarks' --json: a destination that cannot be written is refused before the (long)
run, and the numbers are written atomically, the parent folder made on the way. The heavy parts
(models, `axolotl train`) are replaced by stand-ins: only the scripts' own handling is tested."""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

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


def _fake_train(monkeypatch, plugin_tps: float, noplugin_tps: float) -> None:
    def run_once(config, workdir):
        tps = plugin_tps if "plugins" in yaml.safe_load(Path(config).read_text()) else noplugin_tps
        return {"tokens": tps, "runtime_s": 1.0, "tokens_per_s": tps, "plugin_loaded": True}

    monkeypatch.setattr(bench_train, "run_once", run_once)
    monkeypatch.setattr(
        bench_train,
        "probe_cost",
        lambda *a, **k: {"pairs": 2, "batch_size": 1, "seconds_median": 0.5},
    )


def test_bench_train_exits_1_when_its_target_is_missed(tmp_path, monkeypatch, capsys):
    """A benchmark under its target says so in its exit status (as bench_select_memory does),
    with the numbers still written, so a script or CI can act on the miss."""
    _fake_train(monkeypatch, plugin_tps=5.0, noplugin_tps=10.0)
    out = tmp_path / "train.json"
    argv = ["--base-model", "m", "--workdir", str(tmp_path / "w"), "--repeats", "1"]
    assert bench_train.main([*argv, "--json", str(out)]) == 1
    assert json.loads(out.read_text())["ratio"] == 0.5
    assert "target missed" in capsys.readouterr().err


def test_bench_train_removes_the_temporary_workdir_it_made(tmp_path, monkeypatch):
    """Without --workdir the runs go to a temporary folder, which is removed afterwards (the
    adapters and prepared data of every run were left behind in the system temp folder)."""
    _fake_train(monkeypatch, plugin_tps=10.0, noplugin_tps=10.0)
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    assert bench_train.main(["--base-model", "m", "--repeats", "1"]) == 0
    assert list(temp_root.iterdir()) == []


def test_bench_generate_exits_1_when_its_target_is_missed(tmp_path, monkeypatch, capsys):
    import torch

    from axolotl_mistake.generation.transformers import TransformersBackend

    def generate(requests, params):
        time.sleep(0.05)
        return [SimpleNamespace(ok=True, text="x", completion_tokens=2, error=None)] * len(requests)

    backend = SimpleNamespace(
        model_id="fake", device=torch.device("cpu"), model=torch.nn.Linear(1, 1), generate=generate
    )
    monkeypatch.setattr(TransformersBackend, "load", lambda *a, **k: backend)
    # the naive loop made as fast as the batched call: ratio far below 5x
    monkeypatch.setattr(
        bench_generate, "naive_loop", lambda b, requests, n: (["x"] * len(requests), 8, 0.05)
    )
    out = tmp_path / "generate.json"
    assert bench_generate.main(["--n-prompts", "4", "--json", str(out)]) == 1
    assert json.loads(out.read_text())["ratio"] < 5
    assert "target missed" in capsys.readouterr().err


def test_bench_train_refuses_a_workdir_of_someone_elses_files(tmp_path, capsys, no_benchmark):
    """--workdir's data/ and configs replaced same-named files of any folder given."""
    mine = tmp_path / "w"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "mistake_analysis.jsonl").write_text('{"mine": 1}\n')
    (mine / "plugin.yml").write_text("mine: 1\n")
    err = _usage_error(capsys, bench_train, ["--workdir", str(mine)])
    assert "--workdir" in err and "entries bench_train.py did not write" in err
    assert (mine / "data" / "mistake_analysis.jsonl").read_text() == '{"mine": 1}\n'
    assert (mine / "plugin.yml").read_text() == "mine: 1\n"
    assert sorted(p.name for p in mine.iterdir()) == ["data", "plugin.yml"]
