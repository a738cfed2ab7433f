"""App code of a given app version, for the *old code still runs* check.

Three sources: a queries folder (:mod:`pytest_tenantdb.queries`), Python callables registered
with :func:`app_code`, and statements recorded from your own test run (``--tenantdb-record``).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pytest_tenantdb.errors import ConfigError

AppFunction = Callable[[sqlite3.Connection], object]
F = TypeVar("F", bound=AppFunction)
REGISTRY: dict[int, list[AppFunction]] = {}
_DML = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "REPLACE")


def app_code(version: int) -> Callable[[F], F]:
    """Register ``fn(conn)`` as code of app version ``version``; it must keep working on v+1.

    >>> @app_code(version=3)
    ... def list_notes(conn):
    ...     return conn.execute("SELECT id, title FROM notes").fetchall()
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ConfigError(f"@app_code(version=...) needs a schema version (int >= 0), got {version!r}")

    def register(fn: F) -> F:
        REGISTRY.setdefault(version, []).append(fn)
        return fn

    return register


class Recorder:
    """Collects the DML statements app code runs through ``sqlite3`` during a test session."""

    def __init__(self) -> None:
        self.statements: dict[str, None] = {}
        self._original: Callable[..., sqlite3.Connection] | None = None

    def install(self) -> None:
        self._original = original = sqlite3.connect

        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn: sqlite3.Connection = original(*args, **kwargs)
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if not str(caller).startswith("pytest_tenantdb"):
                conn.set_trace_callback(self._record)
            return conn

        sqlite3.connect = connect  # type: ignore[assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            sqlite3.connect = self._original  # type: ignore[assignment]
            self._original = None

    def _record(self, sql: str) -> None:
        if sql.lstrip().upper().startswith(_DML):
            self.statements[sql.strip()] = None

    def save(self, path: Path, app_version: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for sql in self.statements:
                out.write(json.dumps({"app_version": app_version, "sql": sql}) + "\n")


def load_recorded(path: Path) -> dict[int, list[str]]:
    """``{app_version: [statement, ...]}`` from a file written by ``--tenantdb-record``."""
    recorded: dict[int, list[str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read recorded queries ({exc})") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            recorded.setdefault(int(entry["app_version"]), []).append(str(entry["sql"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{path}:{number}: not a recorded query line; record it again with --tenantdb-record"
            ) from exc
    return recorded
