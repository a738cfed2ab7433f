"""Benchmarks of the backward-compatibility checker on a generated repository.

- a 1,000-migration repository (5,000 statements) checked (target: <= 3 s); statements per
  second; a re-check with the per-step findings cache;
- ``--base`` (only the steps new since the base) vs. the whole history: it lints only what changed.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from benchmarks.fleet import Figure
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.lint.engine import LintOptions, lint_project
from pytest_tenantdb.migrations import MigrationSet
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

    cold = run(keep_findings=False)  # nothing cached: the history is walked once in one database
    first = run(keep_findings=False)  # the same with the OS file cache warm
    again = run()  # nothing changed: every step's findings come from the cache
    base = run(since=migrations.head - 10, keep_findings=False)
    return [
        Figure(
            f"check {steps} migrations / {statements} statements, second vs first run "
            f"({statements / first:.0f} statements/s)",
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
    ]
