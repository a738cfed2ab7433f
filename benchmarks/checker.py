"""Benchmarks of the backward-compatibility checker on a generated repository.

- a 1,000-migration repository (5,000 statements) checked (target: <= 3 s); statements per
  second; a re-check with the per-step findings cache;
- ``--base`` (only the steps new since the base) vs. the whole history: it lints only what changed;
- the schemas of every version as the checker builds them (a scratch database per step) vs. the
  whole history run in one database (quadratic: SQLite re-parses its schema after ADD COLUMN).
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.fleet import Figure
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.lint.engine import LintOptions, lint_project
from pytest_tenantdb.lint.walker import IGNORED, Walker
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.migrations.runner import run_plan
from pytest_tenantdb.schema import Schema
from pytest_tenantdb.versioning import UserVersionStore


def generate_repository(folder: Path, steps: int) -> int:
    """``steps`` migrations of five statements each, a realistic mix; returns the statement count."""
    folder.mkdir(parents=True)
    statements = 0
    for n in range(1, steps + 1):
        table = f"t{(n - 1) // 10}"
        if n % 10 == 1:
            body = [
                f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, v INTEGER DEFAULT 0);",
                f"CREATE INDEX {table}_name ON {table}(name);",
                f"INSERT INTO {table} (name) VALUES ('seed');",
                f"UPDATE {table} SET v = 1 WHERE name = 'seed';",
                f"CREATE VIEW {table}_view AS SELECT id, name FROM {table};",
            ]
        else:
            body = [
                f"ALTER TABLE {table} ADD COLUMN c{n} TEXT;",
                f"CREATE INDEX {table}_c{n} ON {table}(c{n});",
                f"UPDATE {table} SET c{n} = name WHERE c{n} IS NULL;",
                f"DELETE FROM {table} WHERE v < 0;",
                f"CREATE TRIGGER {table}_tr{n} AFTER INSERT ON {table} BEGIN SELECT 1; END;",
            ]
        (folder / f"{n:04d}_step.sql").write_text("\n".join(body) + "\n")
        statements += len(body)
    return statements


def _parser() -> str:
    """Which sqlglot parses: the compiled one of the ``speed`` extra or the pure Python one."""
    import sqlglot.parser

    return "pure-Python sqlglot" if sqlglot.parser.__file__.endswith(".py") else "sqlglot[c]"


def _time(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _walk(migrations: MigrationSet, templates: TemplateCache) -> None:
    """Only the schema of every version, as the checker builds it (walker.py)."""
    walker = Walker(migrations, templates)
    for step in migrations:
        walker.apply(step)


def _walk_one_database(migrations: MigrationSet, path: Path) -> None:
    """The baseline: the whole history in one database, introspecting what each step changed
    (how the checker worked before walker.py; SQLite re-parses its growing schema)."""
    conn = sqlite3.connect(path, isolation_level=None, cached_statements=0)
    conn.execute("PRAGMA journal_mode = MEMORY")
    conn.execute("PRAGMA synchronous = OFF")
    schema = Schema()
    try:
        for step in migrations:
            run_plan(conn, migrations, [(step, "up")], UserVersionStore())
            schema = Schema.from_connection(conn, ignore=IGNORED, previous=schema)
    finally:
        conn.close()


def bench_checker(workdir: Path, steps: int) -> list[Figure]:
    statements = generate_repository(workdir / "migrations", steps)
    migrations = MigrationSet.from_path(workdir / "migrations")
    templates = TemplateCache(workdir / "cache", migrations, UserVersionStore())

    def run(since: int = 0, keep_findings: bool = True) -> float:
        if not keep_findings:
            shutil.rmtree(workdir / "findings", ignore_errors=True)
        started = time.perf_counter()
        lint_project(migrations, templates, None, LintOptions(since=since))
        return time.perf_counter() - started

    cold = run(keep_findings=False)  # nothing cached: every step runs once on a scratch database
    first = run(keep_findings=False)  # the same with the OS file cache warm
    again = run()  # nothing changed: every step's findings come from the cache
    base = run(since=migrations.head - 10, keep_findings=False)
    walked = _time(lambda: _walk(migrations, templates))
    one_database = _time(lambda: _walk_one_database(migrations, workdir / "one.sqlite3"))
    return [
        Figure(
            f"check {steps} migrations / {statements} statements, second vs first run "
            f"({statements / first:.0f} statements/s, {_parser()})",
            first,
            cold,
            "s",
            "<= 3 s",
            first <= 3.0,
        ),
        Figure(
            f"re-check of the same {steps} migrations (findings cached)",
            again,
            first,
            "s",
            "reported only",
            True,
        ),
        Figure(
            f"--base with 10 new steps vs whole history of {steps}", base, first, "s", "faster", base < first
        ),
        Figure(
            f"schemas of {steps} steps: scratch database per step vs one database for the history",
            walked,
            one_database,
            "s",
            "reported only",
            True,
        ),
    ]
