"""The built-in checks on a long generated history (issue: real histories have 100+ steps and
~40 tables, and a pre-merge gate must fit an ordinary CI job).

The history is generated, good (every check passes) and shaped like real ones: tables created
all along the history (so each step runs on a schema of a different size), columns added and
backfilled, indexes created, most steps reversible, foreign keys forming a tree a few levels deep
(accounts -> projects -> tasks -> comments), not a 40-table chain. Figures:

- all built-in checks of a 115-step, 40-table history from cold (target: <= 10 minutes on 2
  cores at the CI profile, 100 examples per check);
- the same run after one step is added (target: <= 60 s: only what the new step can affect
  re-runs);
- the cost of one step's checks (a column added to one table) on schemas of 5 to 40 tables
  (pytest's per-item durations): flat means no per-example cost grows with the schema;
- ``pytest -n 2`` against ``-n 0``, both from cold (target: faster).
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.checks import timed_pytest
from benchmarks.fleet import Figure

PYPROJECT = """\
[tool.pytest.ini_options]
tenantdb_migrations = "migrations"
tenantdb_checks = true
"""


@dataclass
class _Table:
    name: str
    columns: list[str] = field(default_factory=list)  # added columns, in order
    filled: set[str] = field(default_factory=set)  # added columns already backfilled


def write_history(folder: Path, steps: int, tables: int) -> None:
    """Write a good ``steps``-step history creating ``tables`` tables into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    made: list[_Table] = []
    every = max(1, steps // tables)
    for number in range(1, steps + 1):
        stem = f"{number:04d}"
        if len(made) < tables and (number - 1) % every == 0:
            table = _Table(f"t{len(made) + 1:02d}")
            parent = made[len(made) // 3].name if made else None  # a tree a few levels deep
            reference = (
                f",\n    parent_id INTEGER REFERENCES {parent}(id) ON DELETE CASCADE" if parent else ""
            )
            up = (
                f"CREATE TABLE {table.name} (\n    id INTEGER PRIMARY KEY,\n    name TEXT NOT NULL,\n"
                f"    amount INTEGER NOT NULL DEFAULT 0,\n    note TEXT{reference}\n);\n"
            )
            _write(folder, f"{stem}_create_{table.name}", up, f"DROP TABLE {table.name};\n")
            made.append(table)
            continue
        table = made[number % len(made)]
        kind = number % 4
        unfilled = [c for c in table.columns if c not in table.filled]
        if kind == 0 and unfilled:
            column = unfilled[0]
            table.filled.add(column)
            up = f"UPDATE {table.name} SET {column} = upper(name) WHERE {column} IS NULL;\n"
            _write(folder, f"{stem}_backfill_{table.name}_{column}", up, None)
        elif kind == 1:
            _write(
                folder,
                f"{stem}_index_{table.name}_{stem}",
                f"CREATE INDEX {table.name}_by_name_{stem} ON {table.name} (name, amount);\n",
                f"DROP INDEX {table.name}_by_name_{stem};\n",
            )
        else:
            column = f"c{stem}"
            table.columns.append(column)
            _write(
                folder,
                f"{stem}_add_{table.name}_{column}",
                f"ALTER TABLE {table.name} ADD COLUMN {column} TEXT;\n",
                f"ALTER TABLE {table.name} DROP COLUMN {column};\n",
            )


def _write(folder: Path, name: str, up: str, down: str | None) -> None:
    if down is None:
        (folder / f"{name}.sql").write_text(up)
        return
    (folder / f"{name}.up.sql").write_text(up)
    (folder / f"{name}.down.sql").write_text(down)


def _step_seconds(junit: Path, step: str) -> float:
    """Seconds of the step checks (upgrade, data_kept, round_trip) of ``step`` in a junit file."""
    total = 0.0
    for case in ET.parse(junit).iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        if re.search(rf"{step}::(upgrade|data_kept|round_trip)$", test_id):
            total += float(case.get("time", "0"))
    return total


def _one_step_at(workdir: Path, tables: int, examples: int) -> float:
    """Seconds of the checks of one step (a column added to a table) on a schema of ``tables``
    tables: the cost that must not grow with the tables the step does not touch."""
    project = workdir / f"at_{tables}"
    folder = project / "migrations"
    folder.mkdir(parents=True)
    (folder / "0001_tables.sql").write_text(
        "".join(
            f"CREATE TABLE t{n:02d} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, amount INTEGER, note TEXT);\n"
            for n in range(1, tables + 1)
        )
    )
    _write(
        folder,
        "0002_extra",
        "ALTER TABLE t01 ADD COLUMN extra TEXT;\n",
        "ALTER TABLE t01 DROP COLUMN extra;\n",
    )
    (project / "pyproject.toml").write_text(PYPROJECT)
    junit = workdir / f"at_{tables}.xml"
    timed_pytest(
        project,
        "--tenantdb-examples",
        str(examples),
        "-k",
        "0002_extra and not history",
        f"--junitxml={junit}",
        "-p",
        "no:xdist",
        env={"CI": "true"},
    )
    return _step_seconds(junit, "0002_extra")


def bench_long_history(workdir: Path, full: bool) -> list[Figure]:
    steps, tables, examples = (115, 40, 100) if full else (12, 4, 3)
    project = workdir / "long"
    write_history(project / "migrations", steps, tables)
    (project / "pyproject.toml").write_text(PYPROJECT)
    twin = workdir / "long_parallel"  # the same history, cold, for pytest -n 2
    shutil.copytree(project, twin)
    args = ("--tenantdb-examples", str(examples))
    # the generated history counts as released: its lock is written on the cold runs
    released = "--tenantdb-update-lock"
    cold, summary, code = timed_pytest(project, *args, released, "-p", "no:xdist", env={"CI": "true"})
    if code != 0:
        raise RuntimeError(f"the built-in checks failed on the generated history: {summary}")
    added = project / "migrations" / f"{steps + 1:04d}_add_t01_extra.sql"
    added.write_text("ALTER TABLE t01 ADD COLUMN extra TEXT;\n")
    again, summary_again, _ = timed_pytest(project, *args, "-p", "no:xdist", env={"CI": "true"})
    parallel, summary_parallel, _ = timed_pytest(twin, *args, released, "-n", "2", env={"CI": "true"})
    sizes = (5, 10, 20, 40) if full else (2, 8)
    per_step = {n: _one_step_at(workdir, n, examples) for n in sizes}
    return [
        Figure(
            f"built-in checks, {steps}-step {tables}-table history, {examples} examples ({summary})",
            cold,
            600.0,
            "s",
            "<= 10 minutes",
            cold <= 600,
        ),
        Figure(
            f"long history: one step added to a cached run ({summary_again})",
            again,
            60.0,
            "s",
            "<= 60 s",
            again <= 60,
        ),
        Figure(
            f"long history: a step's checks at {sizes[-1]} tables vs at {sizes[0]} "
            f"({', '.join(f'{n} tables: {t:.2f}s' for n, t in per_step.items())})",
            per_step[sizes[-1]],
            per_step[sizes[0]],
            "s",
            "within 1.5x (flat)",
            per_step[sizes[-1]] <= 1.5 * per_step[sizes[0]],
        ),
        Figure(
            f"long history: pytest -n 2 vs -n 0, both cold ({summary_parallel})",
            parallel,
            cold,
            "s",
            "faster",
            parallel < cold,
        ),
    ]
