"""A killed efficacy training goes on from its last checkpoint and ends where an uninterrupted
one ends (the real `axolotl train` on a tiny random-weight model, the plugin on).

The full benchmark's trainings take 40 minutes or more each on 2 cores; before checkpoints, a
training killed at step 150 of 160 started again from step 0.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("axolotl")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the script imports it the same way
efficacy = importlib.import_module("efficacy_smollm2")
FIXTURES = Path(__file__).parent / "fixtures"

# many steps after the first checkpoint, so the kill lands well before the end
SIZE = replace(
    efficacy.QUICK, steps=40, checkpoint_steps=2, micro_batch=2, lora_r=4, sequence_len=256
)
ARM = "anchored"


def _experiment(work: Path) -> efficacy.Experiment:
    rows = {
        "origin/sft_harmless.jsonl": "sft_rows.jsonl",
        "origin/sft_helpful.jsonl": "sft_rows.jsonl",
        "anchored/mistake_analysis.jsonl": "analysis_rows.jsonl",
    }
    for target, fixture in rows.items():
        (work / "build" / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / fixture, work / "build" / target)
    return efficacy.Experiment(work, work / "shared", SIZE, "2")


def _kill_at_first_checkpoint(exp: efficacy.Experiment) -> None:
    """Make `exp.run` start the training and kill its process group as soon as a complete
    checkpoint exists, as a closed laptop or a session's end would."""

    def run(name: str, cmd: list[str], resumed_from: str | None = None) -> None:
        lora = exp.work / "train" / ARM / "lora"
        with (exp.logs / f"{name}.log").open("w") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env=exp.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            deadline = time.monotonic() + 600
            while proc.poll() is None and time.monotonic() < deadline:
                if any(efficacy.checkpoint_complete(c) for c in efficacy.checkpoints(lora)):
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.02)
            proc.wait()
        log_text = (exp.logs / f"{name}.log").read_text(errors="replace")
        assert proc.returncode == -signal.SIGKILL, log_text[-3000:]
        raise SystemExit(f"step killed: {name}")

    exp.run = run


def _adapter(lora: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(lora / "adapter_model.safetensors"))


def _without_checkpoints(exp: efficacy.Experiment) -> efficacy.Experiment:
    """`exp` training as the script did before it saved checkpoints."""
    config = exp.train_config

    def train_config(arm: str, base_model: str) -> dict:
        data = config(arm, base_model)
        for key in efficacy.RESULT_NEUTRAL_KEYS:
            data.pop(key, None)
        return {**data, "save_strategy": "no"}

    exp.train_config = train_config
    return exp


def test_a_killed_training_resumes_and_ends_where_an_uninterrupted_one_does(
    tiny_model_dir, tmp_path, capsys
):
    """Bit for bit in the runs checked (dropout included: the checkpoint holds the RNG states);
    compared to a tolerance, as CPU float sums across processes need not be bit-stable. The
    uninterrupted training saves no checkpoints, as before they existed: saving them changes
    nothing the training computes, so trainings finished before are still finished."""
    plain = _without_checkpoints(_experiment(tmp_path / "straight"))
    straight = plain.train(ARM, str(tiny_model_dir))
    assert "save_steps" not in (plain.work / f"train_{ARM}.yml").read_text()

    killed = _experiment(tmp_path / "killed")
    _kill_at_first_checkpoint(killed)
    with pytest.raises(SystemExit, match="step killed"):
        killed.train(ARM, str(tiny_model_dir))
    lora = killed.work / "train" / ARM / "lora"
    assert not (lora / "adapter_model.safetensors").exists()
    assert efficacy.checkpoints(lora)
    capsys.readouterr()

    killed_log = (killed.logs / f"train_{ARM}.log").read_text(errors="replace")
    again = _experiment(tmp_path / "killed")
    resumed = again.train(ARM, str(tiny_model_dir))
    out = capsys.readouterr().out
    assert f"resuming train_{ARM} from checkpoint-" in out, out
    (point,) = again.resumed.values()
    log = (killed.logs / f"train_{ARM}.log").read_text(errors="replace")
    assert "resume from checkpoint" in log.lower(), log[-3000:]
    # the killed attempt's lines stay, before the line that names the checkpoint
    before, marker, after = log.partition(efficacy.RESUMED_LINE.format(checkpoint=point))
    assert marker and before.strip() == killed_log.strip() and after.strip(), log[-3000:]
    assert not efficacy.checkpoints(resumed)

    first, second = _adapter(straight), _adapter(resumed)
    assert first.keys() == second.keys() and first
    for key in first:
        assert torch.allclose(first[key], second[key], rtol=0, atol=1e-4), key
