"""Benchmarks of the migration sources (Alembic, Django) and of the real histories the suite runs.

- loading a 115-revision Alembic history (generated, date-prefixed files; and prefect's real 115
  revisions in a fresh process, imports included) vs. Alembic's own ScriptDirectory reading the
  same folder (target: <= 2 s);
- a revision run through Alembic (batch mode, on a tenant with rows) vs. running the SQL it emits
  on the same tenant (target: <= 3x);
- a fleet from the Alembic fixture project: the fleet figures of fleet.py on that source;
- the built-in checks of each real history, as a user runs them (``pytest`` with
  ``tenantdb_checks = true``, 2 workers): the table in docs/sources/index.md.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.checks import timed_pytest
from benchmarks.fleet import Figure, _timed, bench_build
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.migrations.tracing import traced

ROOT = Path(__file__).resolve().parent.parent
ALEMBIC = ROOT / "fixtures" / "alembic_project"
DJANGO = ROOT / "fixtures" / "django_project"


def write_history(folder: Path, count: int) -> Path:
    """``count`` Alembic revisions in date-prefixed files: tables, columns, batch rebuilds, indexes."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = None
    for n in range(count):
        rev = f"{n:04x}ab{n:06x}"
        table = f"t{n // 3}"
        if n % 3 == 0:
            body = f"op.create_table({table!r}, sa.Column('id', sa.Integer, primary_key=True), sa.Column('name', sa.String(50)))"
        elif n % 3 == 1:
            body = f"op.add_column({table!r}, sa.Column('c{n}', sa.Integer, nullable=True))"
        else:
            body = (
                f"with op.batch_alter_table({table!r}) as batch:\n"
                f"        batch.alter_column('name', existing_type=sa.String(50), nullable=False, server_default='')\n"
                f"    op.create_index('ix_{table}_name', {table!r}, ['name'])"
            )
        (folder / f"2024_{n // 28 + 1:02d}_{n % 28 + 1:02d}_1200-{rev}_step_{n}.py").write_text(
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f"revision = {rev!r}\ndown_revision = {previous!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade():\n    {body}\n\n\ndef downgrade():\n    pass\n"
        )
        previous = rev
    return folder


def bench_load(workdir: Path, count: int) -> Figure:
    from alembic.script import ScriptDirectory

    folder = write_history(workdir / "versions", count)
    ours = _timed(lambda: MigrationSet.from_path(folder))
    baseline = _timed(
        lambda: list(
            ScriptDirectory(str(folder), version_locations=[str(folder)]).walk_revisions("base", "heads")
        )
    )
    return Figure(f"load a {count}-revision Alembic history", ours, baseline, "s", "<= 2 s", ours <= 2.0)


def _prefect_sqlite() -> Path:
    return _package_dir("prefect") / "server" / "database" / "_migrations" / "versions" / "sqlite"


def bench_load_prefect() -> Figure:
    """prefect's 115 real revisions, each side in a fresh process (its imports included): ours vs
    Alembic's own ScriptDirectory reading the same folder."""
    folder = str(_prefect_sqlite())
    ours_code = f"from pytest_tenantdb.migrations import MigrationSet; MigrationSet.from_path({folder!r})"
    alembic_code = (
        "from alembic.script import ScriptDirectory; "
        f"list(ScriptDirectory({folder!r}, version_locations=[{folder!r}]).walk_revisions('base', 'heads'))"
    )

    def fresh(code: str) -> float:
        return min(_timed(lambda: subprocess.run([sys.executable, "-c", code], check=True)) for _ in range(3))

    empty = fresh("pass")  # the interpreter's own start, paid by both sides
    ours, baseline = fresh(ours_code) - empty, fresh(alembic_code) - empty
    return Figure("load prefect's 115 revisions (fresh process)", ours, baseline, "s", "<= 2 s", ours <= 2.0)


REVISION = """\
import sqlalchemy as sa
from alembic import op

revision = "b1"
down_revision = "a1"


def upgrade():
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("price", sa.Integer, nullable=False, server_default="0"))
        batch.alter_column("name", existing_type=sa.String(100), nullable=False)
    op.create_index("ix_items_price", "items", ["price"])


def downgrade():
    pass
"""
BASE = """\
import sqlalchemy as sa
from alembic import op

revision = "a1"
down_revision = None


def upgrade():
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(100)))


def downgrade():
    pass
"""


def bench_revision(workdir: Path, rows: int) -> Figure:
    folder = workdir / "revision"
    folder.mkdir()
    (folder / "a1_base.py").write_text(BASE)
    (folder / "b1_price.py").write_text(REVISION)
    migrations = MigrationSet.from_path(folder)
    template = workdir / "items.sqlite3"
    conn = sqlite3.connect(template, isolation_level=None)
    migrations[0].run(conn)
    conn.executemany("INSERT INTO items (name) VALUES (?)", [(f"item {n}",) for n in range(rows)])
    conn.close()
    step = migrations[1]

    def tenant(n: int) -> sqlite3.Connection:
        path = workdir / f"tenant{n}.sqlite3"
        shutil.copyfile(template, path)
        return sqlite3.connect(path, isolation_level=None)

    first = tenant(0)
    with traced(first) as emitted:
        first.execute("BEGIN IMMEDIATE")
        step.run(first)
        first.execute("COMMIT")
    sql = [s for s in emitted if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))]
    first.close()

    def through(run: object, n: int) -> float:
        conn = tenant(n)
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        run(conn)  # type: ignore[operator]
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed

    ours = min(through(step.run, n) for n in range(1, 6))
    baseline = min(through(lambda c: [c.execute(s).fetchall() for s in sql], n) for n in range(6, 11))
    return Figure(
        f"revision through Alembic vs its SQL ({rows} rows)",
        ours,
        baseline,
        "s",
        "<= 3x its SQL",
        ours <= 3 * baseline,
    )


def _package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


def _optuna_location() -> Path:
    return _package_dir("optuna") / "storages" / "_rdb" / "alembic"


REAL_HISTORIES = {
    # name: (tenantdb_migrations, extra ini lines)
    "optuna 5.0.0 (Alembic)": (lambda: str(_optuna_location()), ""),
    "ihatemoney 7.2.1 (Alembic)": (lambda: str(_package_dir("ihatemoney") / "migrations"), ""),
    "prefect 3.9.1 (Alembic, 115 revisions)": (lambda: str(_prefect_sqlite()), ""),
    "alembic_project fixture (Alembic)": (lambda: str(ALEMBIC / "alembic.ini"), ""),
    "Django 5.2 contrib + django-taggit (Django)": (
        lambda: "django:auth,contenttypes,sessions,admin,taggit",
        f"tenantdb_django_settings = django_project_settings\npythonpath = {DJANGO}\n",
    ),
}


def bench_real_histories(workdir: Path, examples: int, names: list[str]) -> list[Figure]:
    """The built-in checks of each real history, as a user runs them (failures are findings, not
    errors of the benchmark); baseline: the 10-minute budget of a CI job (issue 10)."""
    figures = []
    for name in names:
        spec, extra = REAL_HISTORIES[name]
        project = workdir / name.split()[0]
        project.mkdir()
        (project / "pytest.ini").write_text(
            f"[pytest]\ntenantdb_migrations = {spec()}\ntenantdb_checks = true\n"
            f"tenantdb_examples = {examples}\n{extra}"
        )
        elapsed, summary, _ = timed_pytest(project, "-n", "2")  # failed items are findings
        assert " in " in summary, f"{name}: {summary}"
        figures.append(
            Figure(
                f"built-in checks: {name} [{summary.strip('= ')}]",
                elapsed,
                600.0,
                "s",
                "<= 600 s",
                elapsed <= 600,
            )
        )
    return figures


def bench_sources(workdir: Path, full: bool) -> list[Figure]:
    figures = [
        bench_load(workdir / "load", 115 if full else 20),
        bench_load_prefect(),
        bench_revision(_mk(workdir / "rev"), 20_000 if full else 500),
    ]
    alembic = MigrationSet.from_path(ALEMBIC / "alembic.ini")
    built = bench_build(_mk(workdir / "fleet"), 1000 if full else 40, alembic, "Alembic source: ")
    figures += built
    # in the suite's smoke run only the fixture (the real ones take a minute each even at 2 examples)
    names = list(REAL_HISTORIES) if full else ["alembic_project fixture (Alembic)"]
    figures += bench_real_histories(_mk(workdir / "real"), 100 if full else 2, names)
    return figures


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
