"""Progress of long fleet builds and migrations: counts, a bar and the time left (rich).

The fleet code knows nothing of terminals: :class:`~pytest_tenantdb.fleet.fleet.FleetBuilder`
and :meth:`~pytest_tenantdb.fleet.fleet.Fleet.migrate` take an optional :class:`Progress`, a
callable told ``(task, done, total, label)``: once with ``done=0`` before the first tenant, then
after each tenant (``label`` is its id), the last call with ``done == total``; a task stopped by
an exception calls the object's ``close()`` instead, if it has one. Anything with that signature
works (a test counts the calls, a web app forwards them).

:class:`RichProgress` draws them with rich, only on a terminal, and only for a task still
running after ``delay`` seconds (a short one never flickers); rich is imported when it first
draws. :func:`for_terminal` (the command line, on stderr) and :func:`for_pytest` (the
``tenant_fleet`` fixtures, after 2 s) return one, or ``None`` when the output is not a terminal
or ``TENANTDB_PROGRESS=0`` is set: then nothing at all is printed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    import pytest
    from rich.console import Console
    from rich.progress import Progress as RichBar
    from rich.progress import TaskID

#: ``TENANTDB_PROGRESS=0`` turns progress off everywhere (1 / unset: on a terminal).
ENV = "TENANTDB_PROGRESS"
#: pytest shows the progress of a build or migration still running after this many seconds.
PYTEST_DELAY = 2.0
#: At most this many redraws a second: a 100,000-tenant fleet does not redraw 100,000 times.
REDRAWS_PER_SECOND = 10

DESCRIPTIONS = {"building": "building tenants", "migrating": "migrating tenants"}


class Progress(Protocol):
    """What the fleet code reports to: ``progress("migrating", 120, 1000, "tenant-0120")``."""

    def __call__(self, task: str, done: int, total: int, label: str = "") -> None: ...


@contextmanager
def counting(progress: Progress | None, task: str, total: int) -> Iterator[Callable[[str], None]]:
    """``with counting(progress, "building", 1000) as tick:`` then ``tick(tenant_id)`` after each
    tenant. Tells ``progress`` of the start, of each tenant, and, when the block ends early (an
    exception), calls its ``close()`` if it has one. With ``progress=None`` ``tick`` does nothing."""
    if progress is None:
        yield _nothing
        return
    done = 0
    report = progress

    def tick(label: str) -> None:
        nonlocal done
        done += 1
        report(task, done, total, label)

    report(task, 0, total, "")
    try:
        yield tick
    finally:
        close = getattr(report, "close", None)
        if done < total and callable(close):
            close()


def _nothing(label: str) -> None:
    """``tick`` without progress."""


def disabled() -> bool:
    return os.environ.get(ENV, "").strip().lower() in ("0", "false", "no", "off")


class RichProgress:
    """Draws the tasks it is told about as a rich progress bar, after ``delay`` seconds.

    A task finished before ``delay`` is never drawn; a drawn one leaves its last line (how many,
    how long) on the screen. Redraws are throttled to :data:`REDRAWS_PER_SECOND`.
    """

    def __init__(
        self,
        console_factory: Callable[[], Console],
        *,
        delay: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._console_factory = console_factory
        self.delay = delay
        self._clock = clock
        self._task = ""
        self._started = 0.0
        self._drawn = 0.0
        self._bar: RichBar | None = None
        self._id: TaskID | None = None

    def __call__(self, task: str, done: int, total: int, label: str = "") -> None:
        now = self._clock()
        if done == 0 or task != self._task:
            self.close()
            self._task, self._started = task, now
        if self._bar is None:
            if done >= total or now - self._started < self.delay:
                return
            self._open(task, done, total, label)
        assert self._bar is not None and self._id is not None
        if done >= total:
            self._bar.update(self._id, completed=done, label=label)
            self.close()
        elif now - self._drawn >= 1 / REDRAWS_PER_SECOND:  # the tenants between: not even counted
            self._drawn = now
            self._bar.update(self._id, completed=done, label=label)
            self._bar.refresh()

    def _open(self, task: str, done: int, total: int, label: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar

        self._bar = RichBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[label]}", markup=False),
            console=self._console_factory(),
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._id = self._bar.add_task(DESCRIPTIONS.get(task, task), total=total, completed=done, label=label)
        self._bar.start()

    def close(self) -> None:
        """Draw the last state of the task on screen, if it was drawn at all, and stop."""
        if self._bar is not None:
            self._bar.stop()  # draws the last state
        self._bar = self._id = None


def for_terminal(stream: IO[str]) -> RichProgress | None:
    """Progress on ``stream`` (the CLI's stderr) when it is a terminal, else None."""
    if disabled() or not _isatty(stream):
        return None

    def console() -> Console:
        from rich.console import Console

        return Console(file=stream, highlight=False)

    return RichProgress(console)


def for_pytest(config: pytest.Config) -> RichProgress | None:
    """Progress in a pytest run, for builds and migrations longer than :data:`PYTEST_DELAY`,
    when pytest writes to a terminal (not under xdist workers, not with output piped to a file
    or a CI log). It is written between the test's captured output, capture suspended for each
    redraw through the capture manager (as pytest's live logging does), so it never lands in a
    test's captured output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if disabled() or reporter is None or not reporter.isatty:
        return None
    writer = config.get_terminal_writer()
    file = _Uncaptured(writer, config.pluginmanager.get_plugin("capturemanager"))

    def console() -> Console:
        from rich.console import Console

        return Console(
            file=cast("IO[str]", file), force_terminal=True, width=writer.fullwidth, highlight=False
        )

    return RichProgress(console, delay=PYTEST_DELAY)


class _Uncaptured:
    """A file for rich that writes through pytest's terminal writer with capture suspended."""

    def __init__(self, writer: Any, capture: Any) -> None:
        self._writer = writer
        self._capture = capture
        self._started = False

    def _suspended(self) -> AbstractContextManager[None]:
        if self._capture is None:
            from contextlib import nullcontext

            return nullcontext()
        suspended: AbstractContextManager[None] = self._capture.global_and_fixture_disabled()
        return suspended

    def write(self, text: str) -> int:
        with self._suspended():
            if not self._started:  # below the line of dots (or the test's name, with -v)
                self._started = True
                text = "\n" + text
            self._writer.write(text, flush=True)
        return len(text)

    def flush(self) -> None:
        """Each write is flushed."""

    def isatty(self) -> bool:
        return True


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
