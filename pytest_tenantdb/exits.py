"""How the ``tenantdb`` command ends: one exit code per kind of outcome, and never a traceback
unless asked for. A CI job reads the code to tell "the gate found something" (1) from "the gate
was set up wrong" (2) from "the tool itself broke" (70)."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Callable
from enum import IntEnum

from pytest_tenantdb.errors import TenantDBError

DEBUG_ENV = "TENANTDB_DEBUG"


class Exit(IntEnum):
    """The documented exit codes (docs/reference/cli.md)."""

    OK = 0
    FINDINGS = 1  # check: findings; scan: drifted or unreadable tenants; demo: never
    USAGE = 2  # bad flags, config, input files: the message says what to fix
    INTERNAL = 70  # a bug of the tool itself (sysexits.h EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as a shell reports it)
    BROKEN_PIPE = 141  # the reader of stdout went away (128 + SIGPIPE, as a shell reports it)


def debug_requested(argv: list[str]) -> bool:
    """``--debug`` anywhere in ``argv`` or ``TENANTDB_DEBUG`` set: looked up before parsing, so a
    crash while parsing is shown too."""
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run_guarded(body: Callable[[], int], argv: list[str], *, debug: bool) -> int:
    """``body()``'s exit code, or the code of the way it failed (after a one-line message)."""
    try:
        return body()
    except ParserExit as exc:  # --help, or a usage error argparse has already printed
        return exc.status
    except TenantDBError as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return Exit.USAGE
    except BrokenPipeError:
        _silence_stdout()
        return Exit.BROKEN_PIPE
    except KeyboardInterrupt:
        print("tenantdb: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except OSError as exc:  # the system refused a file operation: a path to fix, not a bug
        where = f": {exc.filename}" if exc.filename is not None else ""
        _error(f"{type(exc).__name__}: {exc.strerror or exc}{where}; check that path and try again")
        return Exit.USAGE
    except (Exception, SystemExit) as exc:  # a stray exit() in a library is ours to contain too
        _internal(exc, argv, debug)
        return Exit.INTERNAL


class ParserExit(Exception):
    """argparse is done (``--help``, or a usage error it printed): exit with ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _error(message: str) -> None:
    """``error: message`` on stderr: one line off a terminal, whatever its length."""
    from rich.markup import escape

    from pytest_tenantdb.console import make_console

    make_console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", markup=True)


def _silence_stdout() -> None:
    """Python's advice for SIGPIPE: point stdout at devnull, so the flush at exit cannot raise
    a second BrokenPipeError (docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file (captured in-process): nothing to flush
        pass


def _internal(exc: BaseException, argv: list[str], debug: bool) -> None:
    """One line asking for a report; the traceback goes to stderr under --debug, else to a file."""
    text = "".join(traceback.format_exception(exc))
    summary = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    head = f"tenantdb: internal error ({summary[:200]}); this is a bug in tenantdb, please report it"
    if debug:
        print(f"{head}:\n{text}", file=sys.stderr, end="")
        return
    try:
        with tempfile.NamedTemporaryFile(
            "w", prefix="tenantdb-crash-", suffix=".txt", delete=False, encoding="utf-8"
        ) as report:
            report.write(
                f"tenantdb {package_version()}, Python {platform.python_version()}, {platform.platform()}\n"
            )
            report.write(f"argv: {argv}\n\n{text}")
    except OSError:
        print(f"{head}; rerun with --debug (or {DEBUG_ENV}=1) to see the traceback", file=sys.stderr)
        return
    print(f"{head} with the traceback saved in {report.name}", file=sys.stderr)


def package_version() -> str:
    """The installed version of pytest-tenantdb (its metadata), for ``--version`` and reports."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-tenantdb")
    except PackageNotFoundError:
        return "(not installed)"
