"""Alembic revisions replayed as the SQL they ran: same result as running them, used only when sound."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from pytest_tenantdb.checks.context import CheckContext, table_rows
from pytest_tenantdb.checks.recorded import ReplayedStep, reads_data
from pytest_tenantdb.errors import StepFailure
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet, Step
from pytest_tenantdb.migrations.runner import run_plan
from pytest_tenantdb.schema import Schema, SchemaDiff
from pytest_tenantdb.strategies import TenantData, tenant_data
from pytest_tenantdb.versioning import TABLES, version_store

pytest.importorskip("alembic")

ROOT = Path(__file__).resolve().parent.parent
ALEMBIC = ROOT / "fixtures" / "alembic_project" / "alembic.ini"

REVISION = '''
"""{doc}"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down}


def upgrade():
{body}


def downgrade():
    pass
'''


CREATE_T = (
    "aaa",
    "    op.create_table('t', sa.Column('id', sa.Integer, primary_key=True), sa.Column('a', sa.Text))",
)


def _context(tmp_path: Path, ini: Path) -> CheckContext:
    migrations = MigrationSet.from_path(ini)
    return CheckContext(TemplateCache(tmp_path / "cache", migrations, version_store("auto", migrations)))


def _write(folder: Path, revisions: list[tuple[str, str]]) -> Path:
    versions = folder / "versions"
    versions.mkdir(parents=True)
    down = "None"
    for n, (rev, body) in enumerate(revisions):
        text = REVISION.format(doc=rev, rev=rev, down=down, body=body)
        (versions / f"{n:04d}_{rev}.py").write_text(text)
        down = repr(rev)
    (folder / "env.py").write_text("")
    ini = folder / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {folder}\n")
    return ini


def _run_and_replay(ctx: CheckContext, step: Step, start: int) -> None:
    """On drawn tenants, running ``step`` and replaying its recording end the same."""

    @settings(max_examples=15, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(tenant_data(ctx.schema(start), max_rows=4))
    def same(data: TenantData) -> None:
        ran = ctx.fresh(start)
        data.apply(ran)
        replayed = ctx.clone(ran)  # the same rows, defaults like now() included
        outcomes = []
        for conn, how in ((ran, step), (replayed, ctx._replayed(replayed, step, "up"))):
            try:
                run_plan(conn, ctx.migrations, [(how, "up")], ctx.templates.store)
                outcomes.append("ok")
            except StepFailure as exc:  # SQLite's own error, whether or not SQLAlchemy wraps it
                outcomes.append(re.sub(r"^\w+: (\(sqlite3\.\w+\) )?|\n.*", "", exc.error, flags=re.DOTALL))
        assert outcomes[0] == outcomes[1]
        # as SQLite sees them: Alembic itself orders reflected constraints differently run to run
        after_ran, after_replayed = (Schema.from_connection(c, ignore=TABLES) for c in (ran, replayed))
        assert not SchemaDiff.between(after_ran, after_replayed).significant
        assert table_rows(ran, after_ran) == table_rows(replayed, after_replayed)

    same()


def test_a_replayed_revision_leaves_what_running_it_leaves(tmp_path: Path) -> None:
    ctx = _context(tmp_path, ALEMBIC)
    checked = 0
    for version in ctx.migrations.versions:
        ctx.focus(version)  # records the revision on the empty template
        if ctx._recordings.get((version, "up")) is None:
            continue
        step = ctx.migrations.step(version)
        start = ctx.previous(version)
        assert isinstance(ctx._replayed(ctx.fresh(start), step, "up"), ReplayedStep)
        _run_and_replay(ctx, step, start)
        checked += 1
    assert checked >= 3  # most of the fixture's revisions are replayed


def test_a_revision_that_reads_the_data_is_always_run(tmp_path: Path) -> None:
    ini = _write(
        tmp_path / "alembic",
        [
            CREATE_T,
            (
                "bbb",
                "    bind = op.get_bind()\n"
                "    for (ident,) in bind.execute(sa.text('SELECT id FROM t')).fetchall():\n"
                "        bind.execute(sa.text('UPDATE t SET a = :a WHERE id = :i'), {'a': str(ident), 'i': ident})",
            ),
        ],
    )
    ctx = _context(tmp_path, ini)
    ctx.focus(1)
    ctx.focus(2)
    assert (1, "up") in ctx._recordings  # DDL only: recorded
    assert (2, "up") not in ctx._recordings  # its Python reads rows: each tenant runs it


def test_statements_that_read_rows_are_told_from_schema_reads() -> None:
    assert reads_data("SELECT id FROM t")
    assert reads_data("WITH x AS (SELECT 1) SELECT * FROM x JOIN users ON 1")
    assert reads_data("DELETE FROM t RETURNING id")
    assert reads_data("PRAGMA main.foreign_key_check")
    assert not reads_data("SELECT sql FROM sqlite_master WHERE name = ?")
    assert not reads_data("SELECT version_num FROM alembic_version")
    assert not reads_data("UPDATE t SET a = 1")
    assert not reads_data("INSERT INTO t2 SELECT * FROM t")  # rows move inside SQLite, unseen by Python


def test_a_replayed_failure_names_the_statement_and_the_revision_line(tmp_path: Path) -> None:
    ini = _write(
        tmp_path / "alembic",
        [
            CREATE_T,
            (
                "bbb",
                "    op.add_column('t', sa.Column('b', sa.Text))\n    op.create_index('ix_t_a', 't', ['a'], unique=True)",
            ),
        ],
    )
    ctx = _context(tmp_path, ini)
    ctx.focus(2)
    tenant = ctx.fresh(1)
    tenant.executemany("INSERT INTO t (a) VALUES (?)", [("x",), ("x",)])
    step = ctx._replayed(tenant, ctx.migrations.step(2), "up")
    assert isinstance(step, ReplayedStep)
    with pytest.raises(StepFailure) as failed:
        run_plan(tenant, ctx.migrations, [(step, "up")], ctx.templates.store)
    revision = ctx.migrations.step(2).path
    line = next(n for n, text in enumerate(revision.read_text().splitlines(), 1) if "create_index" in text)
    assert failed.value.location == f"{revision}:{line}"
    assert "CREATE UNIQUE INDEX ix_t_a" in (failed.value.statement or "")
    assert "UNIQUE constraint failed: t.a" in failed.value.error
    assert tenant.execute("SELECT COUNT(*) FROM t").fetchone() == (2,)  # rolled back whole
    assert "b" not in {r[1] for r in tenant.execute("PRAGMA table_info(t)")}
