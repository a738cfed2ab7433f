"""Watching the SQL a step runs, with several watchers at once.

SQLite keeps one trace callback per connection; a step reporting its last statement, the checks
analysing what a step wrote and the checker linting what a Python step ran all need it at the
same time. :func:`traced` stacks them.
"""

from __future__ import annotations

import functools
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
        declared = None
        while frame is not None:
            if frame.f_code.co_filename == self._path:
                return frame.f_lineno
            if declared is None:
                declared = _declared_operation(frame.f_locals, self._path)
            frame = frame.f_back  # type: ignore[assignment]
        return declared or 1


def _declared_operation(names: dict[str, Any], path: str) -> int | None:
    """The line of the operation a declarative migration (Django's ``operations = [...]``) is
    running, when the stack shows its executor applying one: such files run no code of their
    own, so the statement is cited at the operation that made it."""
    operation, owner = names.get("operation"), names.get("self")
    operations = getattr(owner, "operations", None)
    if operation is None or not isinstance(operations, list):
        return None
    for index, item in enumerate(operations):
        if item is operation:
            lines = _operation_lines(path)
            return lines[index] if index < len(lines) else None
    return None


@functools.lru_cache(maxsize=1024)
def _operation_lines(path: str) -> tuple[int, ...]:
    """The line of each item of the ``operations = [...]`` list a migration file declares."""
    import ast

    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return ()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "operations" for t in node.targets)
            and isinstance(node.value, ast.List | ast.Tuple)
        ):
            return tuple(item.lineno for item in node.value.elts)
    return ()


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
