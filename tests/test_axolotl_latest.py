"""The CI compatibility step against the newest Axolotl (.ci/axolotl_latest.sh): its log checker,
its wiring into .ci/run, the version pin shared with the GPU check, and the GPU-image simulation
it runs. The step itself (a venv, a build, preprocess and train) runs in CI, not here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
CI = REPO / ".ci"
RECIPE = REPO / "recipes" / "smollm2_135m_mistake.yml"


check = load_script("axolotl_log_check", CI / "axolotl_log_check.py")

LOADED = (
    "[2026-12-01 11:12:30,189] [INFO] [axolotl.integrations.base] Plugin loaded successfully: "
    "axolotl_mistake.plugin.MistakeAnalysisPlugin\n"
)
PROBE = (
    "  0%|          | 0/2 [00:00<?, ?it/s]      {'discrimination_acc': '0.5', "
    "'discrimination_n': '32', 'discrimination_auc': '0.3945', 'epoch': 0}\n"
)
SAVED = "[2026-12-01 11:13:12,925] [INFO] [axolotl.train] Model successfully saved to out\n"


@pytest.fixture
def recipe() -> dict:
    return yaml.safe_load(RECIPE.read_text(encoding="utf-8"))


@pytest.fixture
def adapter(tmp_path) -> Path:
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (tmp_path / name).write_text("{}")
    return tmp_path


def test_probe_steps_follow_the_recipe_keys(recipe):
    assert recipe["mistake_probe_at_start"] is True and not recipe.get("mistake_probe_steps")
    assert check.probe_steps(recipe, 2) == [0, 2]
    assert check.probe_steps(recipe, 50) == [0, 50]
    every = {**recipe, "mistake_probe_steps": 25}
    assert check.probe_steps(every, 50) == [0, 25, 50]
    assert check.probe_steps(every, 60) == [0, 25, 50, 60]
    assert check.probe_steps({**recipe, "mistake_probe_at_start": False}, 2) == [2]
    assert check.probe_steps({**recipe, "mistake_probe": False}, 2) == []
    assert (
        check.probe_steps({"mistake_probe_pairs": "builtin", "mistake_probe_at_end": False}, 9)
        == []
    )


def test_a_good_train_log_passes(recipe, adapter):
    log = LOADED + PROBE + "step\n" + PROBE + SAVED
    assert check.check_train(log, recipe, 2, adapter) == []


def test_two_probe_callbacks_fail(recipe, adapter):
    """The 0.21 double registration: each probe run logged twice."""
    log = LOADED + PROBE * 2 + PROBE * 2 + SAVED
    problems = check.check_train(log, recipe, 2, adapter)
    assert len(problems) == 1 and "logged 4 times, expected 2" in problems[0]
    assert "two probe callbacks" in problems[0]


def test_no_probe_no_plugin_no_adapter_fail(recipe, tmp_path):
    problems = check.check_train("nothing useful\n", recipe, 2, tmp_path)
    text = "\n".join(problems)
    assert "logged 0 times" in text
    assert "plugin not loaded" in text
    assert "adapter_model.safetensors missing" in text


def test_plugin_failures_are_caught(recipe, adapter):
    log = (
        LOADED
        + "[WARNING] Failed to load plugin axolotl_mistake.MistakeAnalysisPlugin\n"
        + PROBE * 2
    )
    assert any("failed to load" in p for p in check.check_train(log, recipe, 2, adapter))
    log = LOADED + "TypeError: duplicate base class MistakeAnalysisArgs\n" + PROBE * 2
    assert any("duplicate base class" in p for p in check.check_train(log, recipe, 2, adapter))


def test_preprocess_check_needs_the_prepared_dataset(recipe, tmp_path):
    log = LOADED + '  "mistake_probe_pairs": "builtin",\n'
    problems = check.check_preprocess(log, recipe, tmp_path)
    assert any("no prepared dataset" in p for p in problems)
    (tmp_path / recipe["dataset_prepared_path"] / "0123abcd").mkdir(parents=True)
    assert check.check_preprocess(log, recipe, tmp_path) == []
    assert any("not merged" in p for p in check.check_preprocess(LOADED, recipe, tmp_path))


def test_cli_exit_codes(recipe, adapter, tmp_path):
    good, bad = tmp_path / "good.log", tmp_path / "bad.log"
    good.write_text(LOADED + PROBE * 2 + SAVED)
    bad.write_text(LOADED + PROBE * 4 + SAVED)
    args = ["train", "--recipe", str(RECIPE), "--max-steps", "2", "--output-dir", str(adapter)]
    assert check.main([*args, "--log", str(good)]) == 0
    assert check.main([*args, "--log", str(bad)]) == 1


def test_no_ci_step_can_fail_unnoticed():
    """Under `set -e`, bash ignores a failure in an && list anywhere but its last command (a
    failed install or format check would let CI pass): every such list runs in a subshell, whose
    own status `set -e` does see. Checked by running the rule on the script's own lines."""
    import subprocess

    for line in (CI / "run").read_text().splitlines():
        code = line.strip()
        if code.startswith("#") or "&&" not in code:
            continue
        assert code.startswith("(") and code.endswith(")"), f".ci/run: unguarded && list: {code}"
    # the rule is the one bash needs: a failing first step fails the script only in a subshell
    bare = subprocess.run(
        ["bash", "-c", "set -e; false && true; echo reached"], text=True, capture_output=True
    )
    wrapped = subprocess.run(
        ["bash", "-c", "set -e; (false && true); echo reached"], text=True, capture_output=True
    )
    assert bare.stdout.strip() == "reached" and wrapped.returncode != 0 and not wrapped.stdout


def test_ci_runs_the_step_after_the_readme_test_command():
    lines = [line.strip() for line in (CI / "run").read_text().splitlines()]
    tests = next(i for i, line in enumerate(lines) if line.endswith(".venv/bin/python -m pytest)"))
    assert ".ci/axolotl_latest.sh" in lines[tests + 1 :], "the compat step must run after the tests"
    script = CI / "axolotl_latest.sh"
    assert os.access(script, os.X_OK), "the compat step must be executable"
    text = script.read_text()
    for needle in (
        "set -euo pipefail",
        "--no-deps --ignore-requires-python",
        "site.addsitedir",
        "axolotl_log_check.py train",
        "axolotl_log_check.py preprocess",
        "dataset_builders.build",
        "--max-steps",
    ):
        assert needle in text, needle


def test_bash_syntax_of_the_ci_scripts():
    for script in (CI / "run", CI / "axolotl_latest.sh"):
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, (script.name, proc.stderr)


def test_one_axolotl_version_for_ci_and_the_gpu_check():
    ci = re.search(
        r'AXOLOTL_LATEST="\$\{AXOLOTL_LATEST:-([0-9.]+)\}"', (CI / "axolotl_latest.sh").read_text()
    )
    gpu = re.search(
        r"^axolotl==([0-9.]+)", (REPO / "benchmarks/gpu/wheels.txt").read_text(), re.MULTILINE
    )
    assert ci and gpu, "version pins not found"
    assert ci.group(1) == gpu.group(1)


def _simulated(allow: list[str], code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    allowed = tmp_path / "allowed.txt"
    allowed.write_text("\n".join(allow) + "\n")
    env = {
        **os.environ,
        "GPU_IMAGE_SIM_ALLOW": str(allowed),
        "PYTHONPATH": str(REPO / "benchmarks" / "gpu" / "sim"),
    }
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_gpu_image_simulation_hides_what_is_not_listed(tmp_path):
    code = (
        "import importlib.util, importlib.metadata as m, json\n"
        "import yaml\n"
        "out = {'rich_spec': importlib.util.find_spec('rich') is None}\n"
        "try:\n    import rich\n    out['rich_import'] = 'imported'\n"
        "except ModuleNotFoundError as e:\n    out['rich_import'] = str(e)\n"
        "try:\n    m.version('rich')\n    out['rich_meta'] = 'found'\n"
        "except m.PackageNotFoundError:\n    out['rich_meta'] = 'hidden'\n"
        "out['yaml_meta'] = m.version('PyYAML')\n"
        "print(json.dumps(out))\n"
    )
    proc = _simulated(["PyYAML  # comment", "pydantic==2.12.5"], code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rich_spec"] is True
    assert "No module named 'rich'" in out["rich_import"]
    assert out["rich_meta"] == "hidden"
    assert out["yaml_meta"]
    # and the same interpreter without the simulation sees rich
    plain = subprocess.run([sys.executable, "-c", "import rich"], capture_output=True)
    assert plain.returncode == 0
