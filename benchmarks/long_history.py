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
- the cost of a step's checks against the number of tables in its schema (from pytest's
  per-item durations): flat means no per-example cost grows with the schema;
- ``pytest -n 2`` against ``-n 0`` (target: faster).
"""

from __future__ import annotations

import re
import statistics
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


def _tables_at(folder: Path) -> dict[str, int]:
    """Step label -> number of tables in the schema the step's checks draw tenants for."""
    count, found = 0, {}
    for path in sorted(folder.iterdir()):
        label = path.name.split(".")[0]
        if label not in found:
            found[label] = count
            count += "_create_" in label
    return found


def _step_seconds(junit: Path, tables_at: dict[str, int]) -> dict[int, list[float]]:
    """Tables in the schema -> seconds of all step checks (upgrade, data_kept, round_trip) of
    each step drawn at that size."""
    per_step: dict[str, float] = {}
    for case in ET.parse(junit).iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        match = re.search(r"(\d{4}_\w+)::(upgrade|data_kept|round_trip)$", test_id)
        if match:
            per_step[match[1]] = per_step.get(match[1], 0.0) + float(case.get("time", "0"))
    by_size: dict[int, list[float]] = {}
    for label, seconds in per_step.items():
        if "_create_" not in label:  # a step creating a table is cheap: nothing to keep
            by_size.setdefault(tables_at[label], []).append(seconds)
    return by_size


def bench_long_history(workdir: Path, full: bool) -> list[Figure]:
    steps, tables, examples = (115, 40, 100) if full else (12, 4, 3)
    project = workdir / "long"
    write_history(project / "migrations", steps, tables)
    (project / "pyproject.toml").write_text(PYPROJECT)
    junit = workdir / "long.xml"
    args = ["--tenantdb-examples", str(examples), "-p", "no:cacheprovider"]
    cold, summary, code = timed_pytest(
        project, *args[:2], f"--junitxml={junit}", "-p", "no:xdist", env={"CI": "true"}
    )
    if code != 0:
        raise RuntimeError(f"the built-in checks failed on the generated history: {summary}")
    by_size = _step_seconds(junit, _tables_at(project / "migrations"))
    sizes = sorted(by_size)
    small = statistics.median(by_size[sizes[0]] + by_size.get(sizes[min(1, len(sizes) - 1)], []))
    large = statistics.median(by_size[sizes[-1]])
    added = project / "migrations" / f"{steps + 1:04d}_add_t01_extra.sql"
    added.write_text("ALTER TABLE t01 ADD COLUMN extra TEXT;\n")
    again, summary_again, _ = timed_pytest(project, *args[:2], "-p", "no:xdist", env={"CI": "true"})
    added.unlink()
    figures = [
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
            f"({', '.join(f'{n}: {statistics.median(by_size[n]):.2f}s' for n in sizes[:: max(1, len(sizes) // 6)])})",
            large,
            small,
            "s",
            "within 2x (flat)",
            large <= 2 * small,
        ),
    ]
    parallel, summary_parallel, _ = timed_pytest(project, *args, "-n", "2", env={"CI": "true"})
    serial, _, _ = timed_pytest(project, *args, "-p", "no:xdist", env={"CI": "true"})
    figures.append(
        Figure(
            f"long history: pytest -n 2 vs -n 0, no cache ({summary_parallel})",
            parallel,
            serial,
            "s",
            "faster",
            parallel < serial,
        )
    )
    return figures
