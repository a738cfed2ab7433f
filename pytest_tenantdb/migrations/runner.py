"""Running steps on one connection: the one executor that the fleet migrator, the templates,
the checker's walker and the property checks all use, so a step behaves the same everywhere.

Each step runs in its own transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, the new version
recorded inside it) unless it is marked no-transaction; any error rolls the step back whole and
becomes a :class:`~pytest_tenantdb.errors.StepFailure` naming the step.

With ``one_transaction=True`` (the fleet migrator) the steps share one transaction that the
caller commits or rolls back, so the tenant's write lock is held from the first step to the
last and a failure leaves the tenant exactly as it was; a no-transaction step commits what came
before it and the next step opens a new transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_tenantdb.errors import StepFailure
from pytest_tenantdb.migrations import Direction, MigrationSet, Step

if TYPE_CHECKING:
    from pytest_tenantdb.versioning import VersionStore

ENDED_TRANSACTION = (
    "the step ended the migrator's transaction itself (a COMMIT or ROLLBACK statement, or "
    "conn.commit() / conn.rollback() / conn.close() in Python); leave transactions to the migrator, "
    "or mark the step no-transaction"
)


def in_transaction(conn: sqlite3.Connection) -> bool:
    """``conn.in_transaction``, False for a connection a step closed."""
    try:
        return conn.in_transaction
    except sqlite3.ProgrammingError:
        return False


def _closed(conn: sqlite3.Connection) -> bool:
    try:
        conn.total_changes  # noqa: B018  (raises on a closed connection)
    except sqlite3.ProgrammingError:
        return True
    return False


def run_plan(
    conn: sqlite3.Connection,
    migrations: MigrationSet,
    plan: Sequence[tuple[Step, Direction]],
    store: VersionStore,
    *,
    one_transaction: bool = False,
) -> list[str]:
    """Run ``plan`` on ``conn``, one transaction per step (or one for all); return the steps run."""
    done: list[str] = []
    for step, direction in plan:
        if direction == "up":
            new_version = step.version
        else:
            new_version = max((v for v in migrations.versions if v < step.version), default=0)
        opened = False
        if step.transactional and not (one_transaction and conn.in_transaction):
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StepFailure(step.label, "BEGIN IMMEDIATE", str(step.path), str(exc), direction) from exc
            opened = True
        elif not step.transactional and conn.in_transaction:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StepFailure(step.label, "COMMIT", str(step.path), str(exc), direction) from exc
        try:
            step.run(conn, direction)
            if step.transactional and not in_transaction(conn):
                raise StepFailure(step.label, None, str(step.path), ENDED_TRANSACTION, direction)
            store.record(conn, step, direction, new_version)
            if opened and not one_transaction:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if not one_transaction and in_transaction(conn):
                conn.execute("ROLLBACK")
            error = ENDED_TRANSACTION if _closed(conn) else str(exc)
            raise StepFailure(step.label, None, str(step.path), error, direction) from exc
        except BaseException:
            if not one_transaction and in_transaction(conn):
                conn.execute("ROLLBACK")
            raise
        done.append(step.label)
    return done
