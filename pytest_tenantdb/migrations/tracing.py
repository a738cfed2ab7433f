"""Watching the SQL a step runs, with several watchers at once.

SQLite keeps one trace callback per connection; a step reporting its last statement, the checks
analysing what a step wrote and the checker linting what a Python step ran all need it at the
same time. :func:`traced` stacks them.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from collections import deque
from collections.abc import Iterator, MutableSequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_tenantdb.migrations.statements import Statement

_CHANGES = re.compile(r"^\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)

_SINKS: dict[int, list[MutableSequence[Any]]] = {}


class Captured(list[Statement]):
    """The statements a Python-driven step (Python, callable, Alembic, Django) changed the
    database with, each with the line of ``path`` that ran it: what the checker lints."""

    def __init__(self, path: Path) -> None:
        from pytest_tenantdb.versioning import TABLES  # (versioning imports this package)

        super().__init__()
        self._path = str(path)
        self._bookkeeping = re.compile(rf"\b({'|'.join(TABLES)})\b", re.IGNORECASE)

    def append(self, sql: str) -> None:  # type: ignore[override]
        if _CHANGES.match(sql) and not self._bookkeeping.search(sql):
            super().append(Statement(sql.strip().rstrip(";"), self._line()))

    def _line(self) -> int:
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename == self._path:
                return frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return 1


@contextmanager
def traced(
    conn: sqlite3.Connection, keep: int | None = None, sink: MutableSequence[Any] | None = None
) -> Iterator[MutableSequence[Any]]:
    """Collect every statement ``conn`` runs inside the block (only the last ``keep`` if given,
    or into ``sink``)."""
    if sink is None:
        sink = deque(maxlen=keep) if keep else []
    sinks = _SINKS.setdefault(id(conn), [])
    sinks.append(sink)
    if len(sinks) == 1:

        def callback(sql: str) -> None:
            for each in sinks:
                each.append(sql)

        conn.set_trace_callback(callback)
    try:
        yield sink
    finally:
        for index, each in enumerate(sinks):
            if each is sink:
                del sinks[index]
                break
        if not sinks:
            del _SINKS[id(conn)]
            conn.set_trace_callback(None)
