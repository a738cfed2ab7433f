"""Lending a tenant's connection to a migration tool (Alembic, Django) without giving it away.

The fleet migrator owns the transaction of a step (``BEGIN IMMEDIATE`` ... ``COMMIT``, with the
version recorded inside it). Tools written for their own connections commit, roll back, close
and change the isolation level as they please; on a borrowed connection those calls do nothing,
so the step stays one transaction that the migrator commits or rolls back as a whole.
"""

from __future__ import annotations

import linecache
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_tenantdb.errors import StepFailure
from pytest_tenantdb.migrations.tracing import traced

# what tools run after a statement failed: PRAGMAs, savepoints, Alembic's batch clean-up
_CLEAN_UP = re.compile(
    r"^\s*(PRAGMA|SAVEPOINT|RELEASE|ROLLBACK|DROP\s+TABLE\s+(IF\s+EXISTS\s+)?_alembic_tmp_)", re.IGNORECASE
)


class BorrowedConnection:
    """A ``sqlite3.Connection`` look-alike whose transaction control belongs to someone else."""

    _conn: sqlite3.Connection

    def __init__(self, conn: sqlite3.Connection) -> None:
        object.__setattr__(self, "_conn", conn)

    def commit(self) -> None:
        """The step's transaction is committed by the migrator, after the version is recorded."""

    def rollback(self) -> None:
        """A failing step is rolled back by the migrator, which then restores the tenant."""

    def close(self) -> None:
        """The migrator closes the tenant's connection."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "isolation_level":
            return  # ignored: setting it to None would COMMIT the step's transaction
        setattr(self._conn, name, value)


@contextmanager
def step_errors(label: str, path: Path, direction: str, conn: sqlite3.Connection) -> Iterator[None]:
    """Turn anything a tool raises inside a step (``SystemExit`` included) into a StepFailure that
    names the step, the file and line in it, and the error that really happened.

    A database error wrapped by a tool (Django's ``IntegrityError`` around SQLite's, the
    ``TransactionManagementError`` Django raises when a step goes on after one) is reported as
    the database error, at the step's line that ran it, with the last statement SQLite saw. Any
    other exception is reported as raised, at the step's line, without a statement (the last SQL
    the step ran is not what failed)."""
    with traced(conn, keep=8) as last:
        try:
            yield
        except StepFailure:
            raise
        except (Exception, SystemExit) as exc:
            chain = error_chain(exc)
            root = chain[-1]
            wanted = str(path).__eq__
            where = next((w for e in reversed(chain) if (w := deepest_frame(e, wanted))), None)
            location = f"{path}:{where[1]}" if where else str(path)
            error = f"{type(root).__name__}: {root}"
            if root is not exc and str(root) not in str(exc):
                error += f" (surfaced as {type(exc).__name__}: the step went on after it)"
            statement = _culprit(last) if is_database_error(root) else None
            code = linecache.getline(where[0], where[1]).strip() or None if where else None
            raise StepFailure(label, statement, location, error, direction, code=code) from exc


#: Libraries whose exceptions wrap the database error that caused them.
_WRAPPERS = ("django.", "sqlalchemy.", "alembic.")


def is_database_error(exc: BaseException) -> bool:
    """SQLite's own errors, and the database errors of Django and SQLAlchemy."""
    if isinstance(exc, sqlite3.Error):
        return True
    kind = type(exc)
    return kind.__module__ == "django.db.utils" or any(c.__name__ == "DBAPIError" for c in kind.__mro__)


def error_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it wraps, down to the database error a library wrapped
    (``__cause__``, or the ``__context__`` it was raised while handling); just ``[exc]`` when the
    chain does not end in a database error (a library's ``KeyError`` turned into its own error
    stays that error)."""
    chain = [exc]
    current = exc
    while type(current).__module__.startswith(_WRAPPERS):
        inner = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if inner is None or any(inner is seen for seen in chain):
            break
        chain.append(inner)
        current = inner
    while len(chain) > 1 and not is_database_error(chain[-1]):
        chain.pop()
    return chain


def _culprit(statements: Sequence[str]) -> str | None:
    """The last statement that did something (a tool's clean-up PRAGMAs and savepoints after a
    failure are not what failed)."""
    for sql in reversed(statements):
        if not _CLEAN_UP.match(sql):
            return sql.strip()
    return statements[-1].strip() if statements else None


def deepest_frame(exc: BaseException, wanted: Callable[[str], bool]) -> tuple[str, int] | None:
    """File and line of the deepest frame of ``exc``'s traceback whose file is ``wanted``: the
    user's line (a revision, a migration) under the library frames that raised."""
    where = None
    tb = exc.__traceback__
    while tb is not None:
        if wanted(tb.tb_frame.f_code.co_filename):
            where = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return where
