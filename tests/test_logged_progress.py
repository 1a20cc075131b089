"""Progress in log files: where stderr is not a terminal (nohup, Slurm, CI), the builder's and
the evaluation's progress prints plain lines while the run goes on and when each task
finishes, where rich alone printed nothing until the end; a terminal keeps rich's bars, and a
disabled progress prints nothing."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from axolotl_mistake.logged_progress import LoggedProgress, TimeLeftColumn, task_line
from dataset_builders.progress import StageBars


def _file_console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=False, width=100), buf


def _wait_for(buf: io.StringIO, text: str, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if text in buf.getvalue():
            return True
        time.sleep(0.01)
    return False


def test_lines_while_running_and_once_when_finished():
    console, buf = _file_console()
    with LoggedProgress(console=console, interval=0.05) as bar:
        task = bar.add_task("analyses", total=4)
        bar.advance(task, 1)
        # printed while nothing advances: the elapsed time is the news
        assert _wait_for(buf, "analyses: 1/4 (25%)")
        bar.advance(task, 3)
        assert "analyses: 4/4 done in 0:00:0" in buf.getvalue()
    text = buf.getvalue()
    assert text.count("done in") == 1  # not again when the progress stops
    assert text.count("analyses") == 2  # nor as rich's closing bar
    assert "\x1b[" not in text  # plain text in a log file
    assert "\n\n" not in text


def test_task_without_total_and_time_left():
    console, buf = _file_console()
    with LoggedProgress(console=console, interval=0.05) as bar:
        bar.add_task("probe", total=None)
        assert _wait_for(buf, "probe: 0 done, 0:00:00 elapsed")
        timed = bar.add_task("answers", total=100)
        for _ in range(5):
            bar.advance(timed, 1)
            time.sleep(0.02)
        assert _wait_for(buf, "answers: 5/100 (5%)")
    assert "left" in buf.getvalue()  # a speed is known after a few steps


def test_time_left_is_the_mean_rate_not_the_last_burst():
    """Work finishing in batches: 32 at 60 s, 32 more 10 ms later. rich's own estimate took the
    two updates' 10 ms gap as the speed and said about a second was left, with 936 to go."""
    now = [0.0]
    console, _ = _file_console()
    with LoggedProgress(console=console, interval=3600, get_time=lambda: now[0]) as bar:
        task = bar.add_task("analyses", total=1000)
        assert "left" not in task_line(bar.tasks[0])  # nothing done: no rate yet
        now[0] = 60.0
        bar.advance(task, 32)
        now[0] = 60.01
        bar.advance(task, 32)
        line = task_line(bar.tasks[0])
    assert bar.tasks[0].time_remaining <= 1  # rich's estimate, kept for its terminal bars
    assert line.endswith("about 0:14:37 left"), line  # 60.01 s x 936 / 64
    assert TimeLeftColumn().render(bar.tasks[0]).plain == "0:14:37"  # a terminal's bar too


def test_time_left_leaves_out_the_wait_for_the_first_batch():
    """A build's analyses as logged on 2026-12-05: nothing for 24 s while the model warmed up,
    128 done at 54 s, 256 at 84 s, of 1,105 (done at 246 s). The mean since the start said
    about 4:38 left at 84 s, with 2:42 to go; the rate since the first batch says 3:18."""
    now = [0.0]
    console, _ = _file_console()
    with LoggedProgress(console=console, interval=3600, get_time=lambda: now[0]) as bar:
        task = bar.add_task("analyses", total=1105)
        now[0] = 54.0
        bar.advance(task, 128)
        # one batch: no span to measure a rate on, so the mean since the start
        assert task_line(bar.tasks[0]).endswith("about 0:06:52 left")  # 54 x 977 / 128
        now[0] = 84.0
        bar.advance(task, 128)
        line = task_line(bar.tasks[0])
    assert line.endswith("about 0:03:18 left"), line  # 30 s x 849 / 128


def test_answers_replayed_from_the_cache_are_done_but_not_speed():
    """A resumed build reads 500 answers back from its call cache at once, then makes 10 new
    ones in 60 s: 490 are left at 10 per minute, about 49 minutes, where counting the replayed
    ones as speed said about a minute."""
    now = [0.0]
    console, _ = _file_console()
    with LoggedProgress(console=console, interval=3600, get_time=lambda: now[0]) as bar:
        task = bar.add_task("analyses", total=1000, replayed=0)
        now[0] = 0.5
        bar.update(task, advance=500, replayed=500)
        assert "left" not in task_line(bar.tasks[0])  # nothing made yet: no rate
        assert TimeLeftColumn().render(bar.tasks[0]).plain == "-:--:--"
        now[0] = 60.5
        bar.advance(task, 10)
        line = task_line(bar.tasks[0])
    assert "510/1000 (51%)" in line and line.endswith("about 0:49:24 left"), line  # 60.5 x 490/10


def test_a_stage_counts_the_units_it_replayed(tmp_path):
    """The builder's stage callback marks answers its CachedBackend served from the cache, so
    the bar counts them as done and its time left leaves them out."""
    from axolotl_mistake.generation import GenerationRequest, SamplingParams
    from axolotl_mistake.generation.base import BaseBackend, Completion
    from axolotl_mistake.generation.cache import CachedBackend, CallCache
    from dataset_builders.stages.common import call_in_chunks

    class Echo(BaseBackend):
        name = model_id = "echo"

        def generate_iter(self, requests, params):
            for i, request in enumerate(requests):
                yield i, Completion(text=request.prompt.upper())

    requests = [GenerationRequest(prompt=f"q{i}") for i in range(6)]
    params = SamplingParams(max_new_tokens=4)
    console, _ = _file_console()
    with CallCache(tmp_path / "calls.sqlite") as cache:
        backend = CachedBackend(Echo(), cache)
        call_in_chunks(backend, requests[:4], params, chunk_size=4)  # the interrupted run
        with StageBars(console=console) as bars, bars.stage("analyses", 6) as advance:
            got = call_in_chunks(backend, requests, params, chunk_size=3, progress=advance)
            task = bars._progress.tasks[0]
            assert (task.completed, task.fields["replayed"]) == (6, 4)
    assert [c.text for c in got] == [f"Q{i}" for i in range(6)]


@pytest.mark.parametrize("terminal", [True, False])
def test_disabled_progress_prints_nothing(terminal):
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=terminal)
    with LoggedProgress(console=console, interval=0.01, disable=True) as bar:
        task = bar.add_task("analyses", total=2)
        bar.advance(task, 2)
        time.sleep(0.05)
    assert buf.getvalue() == ""
    assert not [t for t in threading.enumerate() if t.name == "progress-lines"]


def test_a_terminal_gets_rich_bars_not_lines():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100)
    with LoggedProgress(console=console, interval=0.01) as bar:
        task = bar.add_task("analyses", total=2)
        bar.advance(task, 2)
        time.sleep(0.05)
    assert "analyses" in buf.getvalue()  # rich drew its bar
    assert "done in" not in buf.getvalue()
    assert not bar.logs_lines


def test_a_notebook_keeps_rich_widget():
    console = Console(file=io.StringIO(), force_jupyter=True)
    assert not LoggedProgress(console=console).logs_lines


def test_builder_stages_log_lines_in_a_file():
    console, buf = _file_console()
    with StageBars(console=console) as bars:
        with bars.stage("mistakes", 3) as advance:
            advance(2)
            advance(1)
        with bars.stage("gates", None) as advance:
            advance(5)
    text = buf.getvalue()
    assert "mistakes: 3/3 done in" in text
    assert "gates: 5/5 done in" in text  # a stage of unknown size is completed at its end


def _eval_config(tmp: Path, model: Path) -> Path:
    data = tmp / "data"
    data.mkdir()
    pairs = [
        {
            "question": "How do I bake bread?",
            "answer": "Mix flour, water and yeast.",
            "harmful": False,
        },
        {"question": "How do I hurt someone?", "answer": "Hit them hard.", "harmful": True},
    ]
    (data / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    rows = [
        {"instruction": "Name a colour.", "input": "", "output": "Blue."},
        {"instruction": "Add 2 and 2.", "input": "", "output": "4"},
    ]
    (data / "alpaca.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tmp / "eval.yml"
    cfg.write_text(
        f"""\
name: lines
output_dir: {tmp / "run"}
model: {{kind: transformers, model: {model}, device: cpu, batch_size: 4}}
modes: [plain]
sampling: {{max_new_tokens: 2}}
bootstrap: {{samples: 100}}
prompt_sets:
  discrimination:
    source: {{kind: pairs, path: {data / "pairs.jsonl"}}}
  helpful:
    source: {{kind: alpaca, path: {data / "alpaca.jsonl"}}}
  over_refusal:
    source: {{kind: alpaca, path: {data / "alpaca.jsonl"}}}
judges:
  - kind: refusal
"""
    )
    return cfg


def test_evaluation_logs_every_phase_on_stderr(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from axolotl_mistake.evaluate.__main__ import main

    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    assert main(["--config", str(_eval_config(tmp_path, tiny_model_dir))]) == 0
    out, err = capsys.readouterr()
    assert "discrimination probe: 2/2 done in" in err
    assert "helpful NLL (plain): 2/2 done in" in err
    assert "answer (plain): 2/2 done in" in err
    assert "judge (plain):" in err
    # stdout keeps only the summary lines a script may read
    assert "done in" not in out and "wrote " in out


def test_quiet_evaluation_prints_no_progress(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from axolotl_mistake.evaluate.__main__ import main

    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert main(["--config", str(_eval_config(tmp_path, tiny_model_dir)), "--quiet"]) == 0
    assert "done in" not in capsys.readouterr().err
