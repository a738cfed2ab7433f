"""App code of a given app version, for the *old code still runs* check.

Three sources: a queries folder (:mod:`pytest_tenantdb.queries`), Python callables registered
with :func:`app_code`, and statements recorded from your own test run (``--tenantdb-record``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import pytest

from pytest_tenantdb import recording
from pytest_tenantdb.checks.literals import parameterise
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
    """Records the statements tests run on tenant databases (``--tenantdb-record``): on every
    connection a test opens on a tenant, through ``Tenant.connect()``, a plain
    ``sqlite3.connect(tenant.path)`` or the app code under test (``sqlite3``, SQLAlchemy and
    Django open theirs through ``sqlite3.connect`` / ``sqlite3.dbapi2.connect``), but not the
    harness's own connections (:mod:`pytest_tenantdb.recording`). Each SELECT / INSERT / UPDATE
    / DELETE / REPLACE / WITH is kept once, its literal values turned into ``?``
    (:mod:`pytest_tenantdb.checks.literals`).

    It is a pytest plugin too: under xdist each worker hands its statements to the controller,
    which writes the file."""

    def __init__(self) -> None:
        self.statements: dict[str, None] = {}
        self._tenants: set[str] = set()
        self._seen: dict[str, str] = {}  # statements as they ran -> as stored (the latest few)
        self._previous: recording.Listener | None = None
        self._patched: list[tuple[Any, Callable[..., sqlite3.Connection]]] = []

    def install(self) -> None:
        import sqlite3.dbapi2

        for module in (sqlite3, sqlite3.dbapi2):
            self._patched.append((module, module.connect))
            module.connect = self._wrap(module.connect)  # type: ignore[attr-defined]
        self._previous = recording.listen(self)

    def _wrap(self, original: Callable[..., sqlite3.Connection]) -> Callable[..., sqlite3.Connection]:
        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = original(*args, **kwargs)
            if self._tenants and not recording.in_harness() and self._on_tenant(args, kwargs):
                self.watch(conn)
            return conn

        return connect

    def uninstall(self) -> None:
        recording.listen(self._previous)
        self._previous = None
        for module, original in reversed(self._patched):
            module.connect = original
        self._patched.clear()

    def add_tenant(self, path: Path) -> None:
        self._tenants.add(os.path.realpath(path))

    def watch(self, conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(self._record)

    def _on_tenant(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether ``sqlite3.connect(*args, **kwargs)`` opened a tenant's file."""
        database = args[0] if args else kwargs.get("database")
        uri = args[7] if len(args) > 7 else kwargs.get("uri", False)
        name = _file_name(database, bool(uri))
        return name is not None and os.path.realpath(name) in self._tenants

    def _record(self, sql: str) -> None:
        """sqlite3's trace callback: one statement as it ran, bound values written in."""
        text = _LEADING_COMMENTS.sub("", sql).strip()
        if not text[:7].upper().startswith(_DML):
            return
        stored = self._seen.get(text)
        if stored is None:
            stored = text
            with contextlib.suppress(Exception):  # kept as it ran: recording must never break a test
                stored = parameterise(text)
            if len(self._seen) >= _SEEN:
                self._seen.clear()
            self._seen[text] = stored
        self.statements[stored] = None

    def save(self, path: Path, app_version: int) -> None:
        """Write the statements to ``path`` (sorted, one JSON object a line), tagged with
        ``app_version``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for sql in sorted(self.statements):
                out.write(json.dumps({"app_version": app_version, "sql": sql}) + "\n")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller writes the file
            workeroutput[_WORKER_KEY] = list(self.statements)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        for sql in getattr(node, "workeroutput", {}).get(_WORKER_KEY, []):
            self.statements[str(sql)] = None


_WORKER_KEY = "tenantdb_recorded"
_SEEN = 4096
_LEADING_COMMENTS = re.compile(r"^(?:\s*(?:--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$)))*", re.DOTALL)


def _file_name(database: object, uri: bool) -> str | None:
    """The file ``sqlite3.connect(database, uri=uri)`` opens (None: in memory, temporary, or
    not a name)."""
    if isinstance(database, os.PathLike):
        database = os.fspath(database)
    if isinstance(database, bytes):
        database = os.fsdecode(database)
    if not isinstance(database, str) or database in ("", ":memory:"):
        return None
    if uri and database.startswith("file:"):
        parts = urlsplit(database)
        name = unquote(parts.path)
        if not name or name == ":memory:" or "mode=memory" in parts.query:
            return None
        return name
    return database


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
