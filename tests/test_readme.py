"""The README's set-up commands are a contract: CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _command_after(label: str) -> str:
    section = README[README.index(label) :]
    return re.search(r"```bash\n(.*?)\n```", section, flags=re.DOTALL).group(1).strip()


def test_ci_runs_the_readme_test_command():
    command = _command_after("**Tests**")
    assert "pytest" in command and "torch==2.13.0" in command
    assert command in (REPO / ".ci" / "run").read_text()


def test_main_job_builds_then_trains_the_cpu_recipe():
    command = _command_after("**Main job**")
    assert "python -m dataset_builders.build" in command
    assert "axolotl train recipes/smollm2_135m_mistake.yml" in command
    assert (REPO / "recipes" / "smollm2_135m_mistake.yml").exists()


def test_readme_yaml_snippet_uses_the_strategy():
    block = re.search(r"```yaml\n(.*?)```", README, flags=re.DOTALL).group(1)
    cfg = yaml.safe_load(block)
    types = [d["type"] for d in cfg["datasets"]]
    assert "axolotl_mistake.unguided_analysis" in types and "alpaca" in types
    assert cfg["train_on_inputs"] is False
