"""Rich progress bars, one per stage, on stderr (plain lines every 30 s when stderr is a log
file rather than a terminal; nothing when disabled).

Only presentation: stages receive a plain callback and never import rich themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
)

from axolotl_mistake.logged_progress import LoggedProgress, TimeLeftColumn
from dataset_builders.stages.common import Progress, no_progress


class StageBars:
    """A rich Progress with one task per stage; `stage(name, total)` returns its callback."""

    def __init__(self, enabled: bool = True, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._progress: LoggedProgress | None = None

    def __enter__(self) -> StageBars:
        if self.enabled:
            self._progress = LoggedProgress(
                TextColumn("[bold]{task.description:<10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeLeftColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    @contextmanager
    def stage(self, name: str, total: int | None) -> Iterator[Progress]:
        """A callback advancing the stage's bar (`advance(n, replayed=False)`: units replayed
        from the call cache count as done, not as speed); the bar is completed when the block
        ends."""
        if self._progress is None:
            yield no_progress
            return
        task = self._progress.add_task(name, total=total, replayed=0)

        def advance(n: int, /, *, replayed: bool = False) -> None:
            progress = self._progress
            if progress is None:
                return
            if replayed:
                before = progress.tasks[task].fields.get("replayed", 0)
                progress.update(task, advance=n, replayed=before + n)
            else:
                progress.advance(task, n)

        try:
            yield advance
        finally:
            if self._progress is not None:
                done = self._progress.tasks[task].completed
                self._progress.update(
                    task, total=max(done, total or 0), completed=max(done, total or 0)
                )
