"""Progress bars that also show in log files.

rich draws nothing on a console that is not a terminal (a job's log under nohup, Slurm or CI)
until the bars stop, so a build or evaluation that runs for an hour looked hung there until
its last line. `LoggedProgress` keeps rich's bars on a terminal and, elsewhere, prints one plain
line per running task every `interval` seconds and one when a task finishes; a disabled
progress prints nothing anywhere.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from rich.progress import Progress, ProgressColumn, Task, TaskID
from rich.text import Text

LOG_INTERVAL_S = 30.0


def _clock(seconds: float | None) -> str:
    return str(timedelta(seconds=int(seconds or 0)))


def task_line(task: Task) -> str:
    """One plain line of a task's state: counts, share, elapsed and (when known) time left."""
    done = int(task.completed)
    if task.finished:
        return (
            f"{task.description}: {done}/{int(task.total or done)} done in {_clock(task.elapsed)}"
        )
    if task.total is None:
        return f"{task.description}: {done} done, {_clock(task.elapsed)} elapsed"
    line = (
        f"{task.description}: {done}/{int(task.total)} ({task.percentage:.0f}%),"
        f" {_clock(task.elapsed)} elapsed"
    )
    left = time_left(task)
    return line if left is None else f"{line}, about {_clock(left)} left"


RATE_WINDOW_SHARE = 0.25
"""The part of a task's elapsed time that the rate since its first finished unit must span
before it replaces the mean rate since the start (`time_left`)."""


def time_left(task: Task) -> float | None:
    """Seconds left at the rate since the task's first finished unit; None before anything is
    done.

    Not rich's `time_remaining`: that divides the work of the last 30 s by the time between its
    first and last update, so work finishing in batches (64 analyses at once, two batches a
    moment apart) read as a near-infinite speed, and a build at 29 % logged "about 0:00:01
    left" for minutes. Nor the mean rate since the start: the wait for the first unit (the
    first batch warms the model up) then counted as if every unit had it, and a build at 23 %
    logged "about 0:04:40 left" with 2:42 to go. So the rate is measured from the first
    finished unit (`LoggedProgress` notes it in the task's `first_made` field), once that span
    is at least `RATE_WINDOW_SHARE` of the elapsed time, so a burst of batches a moment apart
    cannot pass for a speed; before that, the mean since the start. Units the task's `replayed`
    field counts (answers read back from the call cache by a resumed build, at no cost) are done
    but are not speed.
    """
    if task.total is None or task.elapsed is None:
        return None
    done_here = task.completed - task.fields.get("replayed", 0)
    if done_here <= 0:
        return None
    left = max(task.total - task.completed, 0)
    first = task.fields.get("first_made")
    if first is not None:
        since, done_then = first
        window = task.get_time() - since
        if done_here > done_then and window >= RATE_WINDOW_SHARE * task.elapsed:
            return window * left / (done_here - done_then)
    return task.elapsed * left / done_here


class TimeLeftColumn(ProgressColumn):
    """A terminal bar's time left, from `time_left` (rich's TimeRemainingColumn has the same
    batch flaw as its `time_remaining`)."""

    def render(self, task: Task) -> Text:
        left = time_left(task)
        return Text("-:--:--" if left is None else _clock(left), style="progress.remaining")


class LoggedProgress(Progress):
    """A rich `Progress` that, on a console that is not interactive, logs plain lines instead of
    staying silent until it stops (module docstring)."""

    def __init__(self, *columns: Any, interval: float = LOG_INTERVAL_S, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self.interval = interval
        # a notebook gets rich's own live widget
        console = self.console
        self.logs_lines = not (self.disable or console.is_interactive or console.is_jupyter)
        if self.logs_lines:
            # the finished lines already say what rich's closing bars would print again
            self.live.transient = True
        self._logged_finished: set[TaskID] = set()
        self._halt = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self) -> None:
        super().start()
        if self.logs_lines and self._ticker is None:
            self._halt.clear()
            self._ticker = threading.Thread(target=self._tick, name="progress-lines", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        if self._ticker is not None:
            self._halt.set()
            self._ticker.join()
            self._ticker = None
        self._log_finished()
        if self.logs_lines:
            self.live.stop()  # rich's stop adds a blank line for its final bars, none drawn here
        else:
            super().stop()

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._note_first_made(task_id)
        self._log_finished()

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._note_first_made(task_id)
        self._log_finished()

    def _note_first_made(self, task_id: TaskID) -> None:
        """Record when the task first had a unit made (not replayed), and how many: the start
        of the rate window of `time_left`."""
        with self._lock:
            task = self._tasks[task_id]
            done_here = task.completed - task.fields.get("replayed", 0)
            if done_here > 0 and "first_made" not in task.fields:
                task.fields["first_made"] = (task.get_time(), done_here)

    def _print(self, lines: list[str]) -> None:
        for line in lines:
            self.console.print(Text(line), soft_wrap=True, highlight=False)

    def _log_finished(self) -> None:
        """A line for each task that finished since the last call (once per task)."""
        if not self.logs_lines:
            return
        with self._lock:
            done = [
                t for t in self._tasks.values() if t.finished and t.id not in self._logged_finished
            ]
            self._logged_finished.update(t.id for t in done)
            lines = [task_line(t) for t in done]
        self._print(lines)

    def _tick(self) -> None:
        """Every `interval` seconds, a line for each started task that has not finished."""
        while not self._halt.wait(self.interval):
            with self._lock:
                lines = [task_line(t) for t in self._tasks.values() if t.started and not t.finished]
            self._print(lines)
