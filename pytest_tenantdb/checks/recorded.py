"""Alembic revisions replayed as the SQL they ran, for the thousands of drawn tenants of a check.

Running a revision through Alembic costs 0.1-0.3 s in batch mode (SQLAlchemy reflects every table
it alters), so on real histories such as prefect's 115 revisions the property checks spent their
time in Alembic, not in the checks. A revision whose Python reads no tenant data emits the same
statements on every tenant whose schema is the one it was recorded on: the checks record them
once, on the empty template, and replay them on each drawn tenant.

A recording is used only when that is sound: every statement went through SQLAlchemy (the count of
changing statements SQLite saw matches), none reads rows of the app's tables (reflection reads
only ``sqlite_master`` and PRAGMAs), the tenant's ``sqlite_master`` is the one recorded on, and
the revision runs in the migrator's transaction. A replayed statement that fails is reported as a
run through Alembic reports it: the step, the statement, the revision's line that ran it (recorded
with the statement) and SQLite's error.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pytest_tenantdb.errors import StepFailure
from pytest_tenantdb.migrations import Direction, Step
from pytest_tenantdb.versioning import TABLES

_CHANGES = re.compile(r"^\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_READS = re.compile(r"^\s*(SELECT|WITH|VALUES)\b|\bRETURNING\b", re.IGNORECASE)
_SCHEMA_ONLY = re.compile(
    rf"\b(sqlite_master|sqlite_schema|sqlite_temp_master|sqlite_temp_schema|pragma_\w+|{'|'.join(TABLES)})\b",
    re.IGNORECASE,
)
_DATA_PRAGMA = re.compile(r"^\s*PRAGMA\s+([\w]+\.)?(foreign_key_check|integrity_check|quick_check)", re.I)
_BOOKKEEPING = re.compile(rf"\b({'|'.join(TABLES)})\b", re.IGNORECASE)
_FROM = re.compile(r"\b(FROM|JOIN)\s+([\"`\[]?[\w.]+)", re.IGNORECASE)

Call = tuple[str, object, bool, int]  # statement, parameters, executemany, line of the revision


_QUERY = re.compile(r"^\s*(SELECT|WITH|PRAGMA\s+[\w.]+\s*(\(|;|$))", re.IGNORECASE)


@dataclass(frozen=True)
class Recording:
    """What one revision ran, in one direction, from one schema: the statements that change
    something (its reads of the schema, reflection's queries, need not run again)."""

    start: tuple[tuple[str, ...], ...]  # the sqlite_master it ran from
    calls: tuple[Call, ...]

    @classmethod
    def of(cls, start: tuple[tuple[str, ...], ...], calls: list[Call]) -> Recording:
        return cls(start, tuple(c for c in calls if not _QUERY.match(c[0])))


def schema_key(conn: sqlite3.Connection) -> tuple[tuple[str, ...], ...]:
    return tuple(
        tuple(map(str, r)) for r in conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")
    )


def reads_data(sql: str) -> bool:
    """Whether ``sql`` hands rows of the app's tables to the revision's Python (a query, a
    ``RETURNING``, or a PRAGMA that reports on the data, such as ``foreign_key_check``)."""
    if _DATA_PRAGMA.match(sql):
        return True
    if not _READS.search(sql):
        return False
    return any(not _SCHEMA_ONLY.search(m[2]) for m in _FROM.finditer(sql)) or not _FROM.search(sql)


def usable(calls: list[Call], seen_by_sqlite: list[str]) -> bool:
    """Whether ``calls`` (what went through SQLAlchemy) are all the revision did and depend on
    no tenant's data (``seen_by_sqlite``: every statement SQLite's trace saw meanwhile)."""
    if any(reads_data(call[0]) for call in calls):
        return False

    def changes(sql: str) -> bool:  # the version store's bookkeeping is the migrator's, not the step's
        return bool(_CHANGES.match(sql)) and not _BOOKKEEPING.search(sql)

    through = sum(
        len(p) if many and isinstance(p, list | tuple) else 1 for sql, p, many, _ in calls if changes(sql)
    )
    return through == sum(1 for sql in seen_by_sqlite if changes(sql))


class ReplayedStep(Step):
    """``step`` whose run replays ``recording``."""

    def __init__(self, step: Step, recording: Recording) -> None:
        self.step, self.recording = step, recording
        self.version, self.name, self.path = step.version, step.name, Path(step.path)
        self.transactional = step.transactional

    @property
    def checksum(self) -> str:
        return self.step.checksum

    @property
    def has_down(self) -> bool:
        return self.step.has_down

    @property
    def ident(self) -> str:
        return self.step.ident

    def run(self, conn: sqlite3.Connection, direction: Direction = "up") -> None:
        conn.execute("SAVEPOINT tenantdb_replay")
        for sql, parameters, many, line in self.recording.calls:
            try:
                if many:
                    conn.executemany(sql, parameters)  # type: ignore[arg-type]
                else:
                    conn.execute(sql, parameters)  # type: ignore[arg-type]
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK TO tenantdb_replay")
                conn.execute("RELEASE tenantdb_replay")
                # what running it through Alembic reports, without its cost (shrinking a failure
                # runs the step hundreds of times)
                raise StepFailure(
                    self.label,
                    sql.strip(),
                    f"{self.path}:{line}" if line else str(self.path),
                    f"{type(exc).__name__}: {exc}",
                    direction,
                ) from exc
        conn.execute("RELEASE tenantdb_replay")
