"""Running steps on one connection: the one executor that the fleet migrator, the templates,
the checker's walker and the property checks all use, so a step behaves the same everywhere.

Each step runs in its own transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, the new version
recorded inside it) unless it is marked no-transaction; any error rolls the step back whole and
becomes a :class:`~pytest_tenantdb.errors.StepFailure` naming the step.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_tenantdb.errors import StepFailure
from pytest_tenantdb.migrations import Direction, MigrationSet, Step

if TYPE_CHECKING:
    from pytest_tenantdb.versioning import VersionStore


def run_plan(
    conn: sqlite3.Connection,
    migrations: MigrationSet,
    plan: Sequence[tuple[Step, Direction]],
    store: VersionStore,
) -> list[str]:
    """Run ``plan`` on ``conn``, one transaction per step; return the labels of the steps run."""
    done: list[str] = []
    for step, direction in plan:
        if direction == "up":
            new_version = step.version
        else:
            new_version = max((v for v in migrations.versions if v < step.version), default=0)
        if step.transactional:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StepFailure(step.label, "BEGIN IMMEDIATE", str(step.path), str(exc), direction) from exc
        try:
            step.run(conn, direction)
            store.record(conn, step, direction, new_version)
            if step.transactional:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StepFailure(step.label, None, str(step.path), str(exc), direction) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        done.append(step.label)
    return done
