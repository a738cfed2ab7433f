"""Watching the SQL a step runs, with several watchers at once.

SQLite keeps one trace callback per connection; a step reporting its last statement, the checks
analysing what a step wrote and the checker linting what a Python step ran all need it at the
same time. :func:`traced` stacks them.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterator, MutableSequence
from contextlib import contextmanager

_SINKS: dict[int, list[MutableSequence[str]]] = {}


@contextmanager
def traced(conn: sqlite3.Connection, keep: int | None = None) -> Iterator[MutableSequence[str]]:
    """Collect every statement ``conn`` runs inside the block (only the last ``keep`` if given)."""
    sink: MutableSequence[str] = deque(maxlen=keep) if keep else []
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
