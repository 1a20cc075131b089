"""The CPU recipe end to end with the plugin on: `axolotl train` logs `discrimination_acc`
(console and TensorBoard) and the saved model card carries the manifest section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from axolotl_mistake.offline_env import offline_cpu_env

pytest.importorskip("axolotl")

from tests.test_plugin_config import write_build_output

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "smollm2_135m_mistake.yml"


def cpu_env() -> dict[str, str]:
    return offline_cpu_env(pythonpath=REPO)


def recipe_for_test(recipe: Path, workdir: Path, base_model: Path, **overrides) -> Path:
    """The recipe as shipped, pointed at local data/model/output and cut to a few steps."""
    cfg = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    data = write_build_output(workdir / "data")
    for ds in cfg["datasets"]:
        ds["path"] = str(data / Path(ds["path"]).name)
    cfg.update(
        base_model=str(base_model),
        dataset_prepared_path=str(workdir / "prepared"),
        output_dir=str(workdir / "out"),
        max_steps=3,
        logging_steps=1,
        mistake_probe_max_pairs=6,
        mistake_probe_steps=2,
        use_tensorboard=True,
    )
    cfg.update(overrides)
    path = workdir / recipe.name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def axolotl_train(config: Path, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    axolotl = Path(sys.executable).with_name("axolotl")
    return subprocess.run(
        [str(axolotl), "train", str(config), "--launcher", "python"],
        cwd=cwd,
        env=cpu_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tensorboard_scalars(folder: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[float]] = {}
    for events in folder.rglob("events.out.tfevents*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return scalars


@pytest.mark.slow
def test_cpu_recipe_end_to_end(tmp_path, embedded_model_dir):
    config = recipe_for_test(RECIPE, tmp_path, embedded_model_dir)
    run = axolotl_train(config, tmp_path)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    # Axolotl only logs a plugin that failed to import: check it really loaded
    assert "Plugin loaded successfully: axolotl_mistake.MistakeAnalysisPlugin" in log
    assert "Failed to load plugin" not in log
    # probe at start, every 2 steps, and at the end (step 3): three runs in the trainer logs
    assert log.count("'discrimination_acc'") >= 3, log[-4000:]
    scalars = tensorboard_scalars(tmp_path / "out")
    acc = next(v for k, v in scalars.items() if k.endswith("discrimination_acc"))
    assert len(acc) >= 3 and all(0.0 <= a <= 1.0 for a in acc)
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "## Mistake-analysis training data" in card
    assert "| mistake_analysis.jsonl | mistake_analysis | 6 | bad |" in card
    assert "Harmful-content note" in card
    assert "Built with Axolotl" in card  # Axolotl's own card is kept, the section is added
    assert card.count("## Mistake-analysis training data") == 1
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
