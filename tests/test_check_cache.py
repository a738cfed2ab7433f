"""A step's checks that passed are not run again while nothing they depend on changed."""

from __future__ import annotations

from pathlib import Path

import pytest

COUNTING_STEP = """
from pathlib import Path


def up(conn):
    log = Path(__file__).parent.parent / "runs.log"
    log.write_text(log.read_text() + "x" if log.exists() else "x")
    conn.execute("ALTER TABLE t ADD COLUMN b TEXT")
"""


def _runs(root: Path) -> int:
    log = root / "runs.log"
    return len(log.read_text()) if log.exists() else 0


def test_a_pull_request_that_adds_a_step_reruns_only_what_it_can_affect(pytester: pytest.Pytester) -> None:
    migrations = pytester.path / "migrations"
    migrations.mkdir()
    (migrations / "0001_t.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);\n")
    (migrations / "0002_b.py").write_text(COUNTING_STEP)
    pytester.makeini("[pytest]\ntenantdb_checks = true\ntenantdb_examples = 5\n")
    first = pytester.runpytest("-k", "upgrade or data_kept")
    first.assert_outcomes(passed=4)
    after_first = _runs(pytester.path)
    assert after_first > 0

    again = pytester.runpytest("-k", "upgrade or data_kept")
    again.assert_outcomes(passed=4)
    assert _runs(pytester.path) == after_first  # step 2 was not run again: its checks are cached

    (migrations / "0003_c.sql").write_text("ALTER TABLE t ADD COLUMN c TEXT;\n")
    added = pytester.runpytest("-k", "upgrade or data_kept", "-rA")
    added.assert_outcomes(passed=6)
    assert _runs(pytester.path) - after_first <= 2  # only to build the template step 3 starts from

    (migrations / "0002_b.py").write_text(COUNTING_STEP.replace("b TEXT", "b INTEGER"))
    edited = pytester.runpytest("-k", "upgrade or data_kept")
    edited.assert_outcomes(passed=6)
    assert _runs(pytester.path) - after_first > 2  # an edited step, and all after it, run again

    cleared = pytester.runpytest("-k", "upgrade or data_kept", "--cache-clear")
    cleared.assert_outcomes(passed=6)


def test_each_check_keeps_its_examples_under_its_own_keys() -> None:
    """All checks share one test function's source, so hypothesis would give them one key:
    the example database is wrapped, through its public API, to keep them apart."""
    from hypothesis.database import InMemoryExampleDatabase

    from pytest_tenantdb.checks.items import _keyed_database

    inner = InMemoryExampleDatabase()
    upgrade, round_trip = (
        _keyed_database()(inner, "0002_b::upgrade"),
        _keyed_database()(inner, "0002_b::round_trip"),
    )
    upgrade.save(b"key", b"tenant-1")
    assert list(upgrade.fetch(b"key")) == [b"tenant-1"]
    assert list(round_trip.fetch(b"key")) == []
    upgrade.move(b"key", b"other", b"tenant-1")
    assert list(upgrade.fetch(b"other")) == [b"tenant-1"] and list(upgrade.fetch(b"key")) == []
    upgrade.delete(b"other", b"tenant-1")
    assert list(upgrade.fetch(b"other")) == []
