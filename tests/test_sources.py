"""Migration sources: Alembic, Django and module:attribute, on the fixture projects (each with a
deliberate bug), their version stores, names as versions, and bad input."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_tenantdb.errors import ConfigError, MigrationSetError, StepFailure, TenantDatabaseError
from pytest_tenantdb.fleet.migrator import migrate_tenant
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.migrations.runner import run_plan
from pytest_tenantdb.versioning import version_store
from tests.conftest import ROOT, make_builder

ALEMBIC = ROOT / "fixtures" / "alembic_project"
DJANGO = ROOT / "fixtures" / "django_project"
CALLABLES = ROOT / "fixtures" / "callables_project"
ALEMBIC_ORDER = ["1a2b3c4d5e6f", "3c4d5e6f7a8b", "2b3c4d5e6f7a", "4d5e6f7a8b9c", "5e6f7a8b9c0d"]
Writer = Callable[..., Path]


@pytest.fixture(scope="module")
def django_settings() -> None:
    """Django is configured once per process; every Django test uses the fixture project."""
    if str(DJANGO) not in sys.path:
        sys.path.insert(0, str(DJANGO))
    os.environ["DJANGO_SETTINGS_MODULE"] = "django_project_settings"


def manage(cwd: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``manage.py <command>`` of the fixture Django project, in a process of its own, on
    ``cwd/app.sqlite3``."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.core.management import call_command; "
            f"call_command({command}, verbosity=0)",
        ],
        cwd=cwd,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "django_project_settings", "PYTHONPATH": str(DJANGO)},
        capture_output=True,
        text=True,
        check=False,
    )


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# -- Alembic -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "through_env"),
    [("alembic.ini", True), ("migrations", True), ("migrations/versions", False)],
)
def test_every_alembic_layout_loads_the_revision_graph_in_order(spec: str, through_env: bool) -> None:
    migrations = MigrationSet.from_path(spec, root=ALEMBIC)
    # date-prefixed file names are not versions; branches come before their merge
    assert [s.name for s in migrations] == ALEMBIC_ORDER
    assert migrations.versioning == "alembic"
    assert all((s.env is not None) == through_env for s in migrations)  # type: ignore[attr-defined]
    assert migrations[0].ident == "alembic:1a2b3c4d5e6f"
    assert migrations.resolve("alembic:4d5e6f7a8b9c") == 4
    assert migrations.resolve("alembic:5e6f") == 5  # a unique prefix, as Alembic accepts
    assert migrations.resolve("head-1") == 4


@pytest.mark.parametrize("spec", ["alembic.ini", "migrations/versions"])
def test_alembic_steps_keep_alembic_version_as_alembic_does(tmp_path: Path, spec: str) -> None:
    migrations = MigrationSet.from_path(spec, root=ALEMBIC)
    store = version_store("auto", migrations)
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    run_plan(conn, migrations, migrations.plan(0, 3), store)
    # both branches applied, not merged yet: two heads, as Alembic lists them
    assert {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")} == {
        "2b3c4d5e6f7a",
        "3c4d5e6f7a8b",
    }
    assert store.read(conn) == 3
    run_plan(conn, migrations, migrations.plan(3, 5), store)
    assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("5e6f7a8b9c0d",)]
    run_plan(conn, migrations, migrations.plan(5, 0), store)
    assert store.read(conn) == 0 and tables(conn) == {"alembic_version"}


def _alembic_config(database: Path) -> object:
    from alembic.config import Config

    config = Config(str(ALEMBIC / "alembic.ini"))
    config.set_main_option("script_location", str(ALEMBIC / "migrations"))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{database}")
    return config


def test_a_tenant_the_real_alembic_made_is_read_right_and_alembic_accepts_ours(tmp_path: Path) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    migrations = MigrationSet.from_path(ALEMBIC / "alembic.ini")
    store = version_store("auto", migrations)
    made_by_alembic = tmp_path / "alembic.db"
    command.upgrade(_alembic_config(made_by_alembic), "4d5e6f7a8b9c")  # type: ignore[arg-type]
    conn = sqlite3.connect(made_by_alembic, isolation_level=None)
    assert store.read(conn) == 4
    conn.close()

    fleet = make_builder(tmp_path, migrations, "auto")(versions={"oldest": 2, 4: 2}, sizes="empty")
    fleet.migrate(to="alembic:4d5e6f7a8b9c").raise_on_failure()
    for tenant in fleet:
        engine = create_engine(f"sqlite:///{tenant.path}")
        with engine.connect() as bind:
            assert MigrationContext.configure(bind).get_current_heads() == ("4d5e6f7a8b9c",)
        engine.dispose()
        command.upgrade(_alembic_config(tenant.path), "heads")  # type: ignore[arg-type]  # Alembic takes over
        check = sqlite3.connect(tenant.path)
        assert {"notes", "tags"} <= tables(check)
        assert store.read(check) == 5
        check.close()


def test_an_alembic_state_off_our_order_is_a_clear_tenant_error(tmp_path: Path) -> None:
    from alembic import command

    migrations = MigrationSet.from_path(ALEMBIC / "alembic.ini")
    path = tmp_path / "branch_a.db"
    command.upgrade(_alembic_config(path), "2b3c4d5e6f7a")  # type: ignore[arg-type]  # branch A only
    outcome = migrate_tenant("branch_a", path, migrations, migrations.head, version_store("auto", migrations))
    assert outcome.status == "failed" and "not a state of the history" in (outcome.error or "")
    assert "merge point" in (outcome.error or "")
    with pytest.raises(TenantDatabaseError, match="not a state of the history"):
        make_builder(tmp_path, migrations, "auto").from_snapshots([path])


def test_the_alembic_fixture_bug_is_found_by_the_upgrade_check(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")  # the derandomized CI profile: the same examples every run
    shutil.copytree(ALEMBIC, pytester.path / "project")
    pytester.makeini(
        "[pytest]\ntenantdb_migrations = project/alembic.ini\ntenantdb_checks = true\ntenantdb_examples = 50\n"
    )
    result = pytester.runpytest("-k", "upgrade or round_trip")
    result.assert_outcomes(passed=9, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FAILED *::0005_5e6f7a8b9c0d::upgrade*",
        ]
    )
    assert "UNIQUE constraint failed: _alembic_tmp_notes.title" in result.stdout.str()  # batch mode
    result.stdout.fnmatch_lines(
        ["*statement: INSERT INTO _alembic_tmp_notes (id, title, body, archived) SELECT*"]
    )
    assert "2024_03_01_0800-5e6f7a8b9c0d_unique_titles.py" in result.stdout.str()


def test_the_checker_lints_what_an_alembic_revision_runs(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ALEMBIC, project)
    (project / "pyproject.toml").write_text('[tool.tenantdb]\nmigrations = "alembic.ini"\n')
    result = subprocess.run(
        [sys.executable, "-m", "pytest_tenantdb.cli", "check", str(project), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    import json

    findings = json.loads(result.stdout)
    unique = [f for f in findings if f["step"] == "0005_5e6f7a8b9c0d"]
    assert unique, result.stdout + result.stderr
    revision = project / "migrations" / "versions" / "2024_03_01_0800-5e6f7a8b9c0d_unique_titles.py"
    assert all(
        f["file"] == revision.relative_to(project).as_posix() for f in unique
    )  # outside git: the project
    upgrade_lines = (15, 16)  # the batch block of upgrade(): Alembic runs it when the block ends
    assert all(f["line"] in upgrade_lines for f in unique), unique
    # --since takes the tool's own names, like every place a version is accepted
    for since, expected in (("alembic:4d5e6f7a8b9c", len(unique)), ("head", 0)):
        again = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest_tenantdb.cli",
                "check",
                str(project),
                "--format",
                "json",
                "--since",
                since,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert len(json.loads(again.stdout)) == expected, again.stderr


def _revision(rev: str, down: str | None, body: str = "pass", extra: str = "") -> str:
    return textwrap.dedent(
        f"""\
        from alembic import op
        import sqlalchemy as sa
        {extra}
        revision = {rev!r}
        down_revision = {down!r}


        def upgrade():
            {body}


        def downgrade():
            pass
        """
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"a.py": _revision("a", None), "b.py": _revision("b", "a", extra="import not_a_module_at_all")},
            r"b.py:3: importing this Alembic revision raised ModuleNotFoundError",
        ),
        ({"a.py": _revision("a", None), "b.py": _revision("a", None)}, "present more than once"),
        (
            {"a.py": b'revision = "a"\ndown_revision = None\nx = "\xff"\n'},
            r"a.py:3: importing this Alembic revision raised SyntaxError.*utf-8",
        ),
        ({"a.py": _revision("a", None), "b.py": _revision("b", "a"), "c.py": _revision("c", "a")}, "2 heads"),
        ({"a.py": _revision("a", "b"), "b.py": _revision("b", "a")}, "revision graph"),
    ],
    ids=["import-error", "duplicate-id", "not-utf8", "unmerged-heads", "cycle"],
)
def test_bad_alembic_histories_are_clear_errors(
    write_migrations: Writer, files: dict[str, str | bytes], message: str
) -> None:
    with pytest.raises(MigrationSetError, match=message):
        MigrationSet.from_path(write_migrations(files))


def test_a_revision_that_exits_fails_its_step_only(tmp_path: Path, write_migrations: Writer) -> None:
    folder = write_migrations(
        {
            "a.py": _revision(
                "a", None, "op.create_table('t', sa.Column('id', sa.Integer, primary_key=True))"
            ),
            "b.py": _revision("b", "a", "import sys; sys.exit(3)"),
        }
    )
    migrations = MigrationSet.from_path(folder)
    fleet = make_builder(tmp_path, migrations, "auto")(versions={1: 3}, sizes="small")
    report = fleet.migrate()
    assert len(report.failed) == 3 and fleet.versions() == {1: 3}
    assert "SystemExit: 3" in (report.failed[0].error or "")
    assert (report.failed[0].location or "").endswith("b.py:9")


# -- Django ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("django_settings")
def test_django_apps_load_in_migrates_order_with_their_dependencies() -> None:
    migrations = MigrationSet.from_path("django:notes")
    names = [s.name for s in migrations]
    assert names[0] == "contenttypes.0001_initial"
    assert names.index("auth.0001_initial") < names.index("auth.0012_alter_user_first_name_max_length")
    assert "sessions.0001_initial" not in names  # only what notes depends on
    assert names[-3:] == ["notes.0001_initial", "notes.0002_note_slug", "notes.0003_unique_slug"]
    assert migrations.versioning == "django"
    assert migrations.resolve("django:notes.0002") == len(names) - 1
    assert (
        migrations.resolve("django:auth.0008") == names.index("auth.0008_alter_user_username_max_length") + 1
    )
    with pytest.raises(ConfigError, match="ambiguous"):
        migrations.resolve("django:auth.00")
    with pytest.raises(MigrationSetError, match="no migrations for app"):
        MigrationSet.from_path("django:nope")


@pytest.mark.usefixtures("django_settings")
def test_django_tenants_migrate_and_the_real_django_accepts_them(tmp_path: Path) -> None:
    migrations = MigrationSet.from_path("django:notes,taggit,sessions,admin")
    store = version_store("auto", migrations)
    fleet = make_builder(tmp_path, migrations, "auto")(versions={"head-4": 2, "oldest": 1}, sizes="empty")
    fleet.migrate().raise_on_failure()
    tenant = next(iter(fleet))
    conn = sqlite3.connect(tenant.path)
    assert store.read(conn) == migrations.head
    applied = conn.execute("SELECT COUNT(*) FROM django_migrations").fetchone()[0]
    assert applied == len(migrations)
    conn.close()
    # Django itself, in a fresh process on that file: nothing left to apply
    work = tmp_path / "app"
    work.mkdir()
    shutil.copy(tenant.path, work / "app.sqlite3")
    result = manage(work, "'migrate', check_unapplied=True")
    assert result.returncode == 0, result.stderr
    # and down again, one transaction per migration, through Django's executor
    conn = sqlite3.connect(tenant.path, isolation_level=None)
    run_plan(
        conn, migrations, migrations.plan(migrations.head, migrations.resolve("django:notes.0001")), store
    )
    assert "notes_note" in tables(conn) and "taggit_tag" not in tables(conn)


@pytest.mark.usefixtures("django_settings")
def test_a_tenant_the_real_django_made_is_read_right(tmp_path: Path) -> None:
    migrations = MigrationSet.from_path("django:notes,taggit,sessions,admin")
    made = manage(tmp_path, "'migrate', 'notes', '0002'")
    assert made.returncode == 0, made.stderr
    conn = sqlite3.connect(tmp_path / "app.sqlite3", isolation_level=None)
    store = version_store("auto", migrations)
    applied = set(conn.execute("SELECT app, name FROM django_migrations").fetchall())
    version = store.read(conn)  # the longest applied run from the start of our order
    assert all((s.app, s.migration_name) in applied for s in migrations[:version])  # type: ignore[attr-defined]
    first_gap = migrations[version]
    assert (first_gap.app, first_gap.migration_name) not in applied  # type: ignore[attr-defined]
    assert ("notes", "0002_note_slug") in applied and version < migrations.resolve("django:notes.0002")
    # from there, what migrate already applied is skipped, as Django does, and the rest runs
    run_plan(conn, migrations, migrations.plan(version, migrations.head), store)
    assert store.read(conn) == migrations.head and "taggit_tag" in tables(conn)
    assert conn.execute("SELECT COUNT(*) FROM django_migrations").fetchone()[0] == len(migrations)


@pytest.mark.usefixtures("django_settings")
def test_a_failing_django_migration_is_rolled_back_whole(tmp_path: Path) -> None:
    migrations = MigrationSet.from_path("django:notes")
    store = version_store("auto", migrations)
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    before_unique = migrations.resolve("django:notes.0002")
    run_plan(conn, migrations, migrations.plan(0, before_unique), store)
    conn.execute("INSERT INTO notes_note (title, body, slug) VALUES ('a', '', 'same'), ('b', '', 'same')")
    with pytest.raises(StepFailure, match="UNIQUE constraint failed") as failure:
        run_plan(conn, migrations, migrations.plan(before_unique, migrations.head), store)
    assert "0003_unique_slug.py" in failure.value.location
    assert store.read(conn) == before_unique  # Django did not commit behind the migrator's back
    assert conn.execute("SELECT COUNT(*) FROM notes_note").fetchone()[0] == 2


def test_django_without_settings_says_how_to_set_them(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest_tenantdb.cli", "versions", "django:auth"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "DJANGO_SETTINGS_MODULE" in result.stderr and "Traceback" not in result.stderr


def test_the_django_fixture_bug_is_found_by_the_upgrade_check(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")  # the derandomized CI profile: the same examples every run
    pytester.makeini(
        f"[pytest]\ntenantdb_migrations = django:notes\ntenantdb_django_settings = django_project_settings\n"
        f"tenantdb_checks = true\npythonpath = {DJANGO}\n"
    )
    result = pytester.runpytest("-k", "notes and upgrade")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*FAILED *::*_notes.0003_unique_slug::upgrade*"])
    assert (
        "UNIQUE constraint failed: new__notes_note.slug" in result.stdout.str()
    )  # Django rebuilds the table


# -- module:attribute --------------------------------------------------------------------------


def test_a_python_list_of_steps_loads_by_position_and_name() -> None:
    migrations = MigrationSet.from_path("runner.steps:STEPS", root=CALLABLES)
    assert [s.label for s in migrations] == [
        "0001_create_accounts",
        "0002_add_email",
        "0003_add_plan",
        "0004_backfill_names",
    ]
    assert [s.has_down for s in migrations] == [False, True, True, False]
    assert migrations.resolve("runner.steps:STEPS[2]") == 3
    assert migrations[0].path == CALLABLES / "runner" / "steps.py"


def test_the_callables_fixture_bug_is_found_by_round_trip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")  # the derandomized CI profile: the same examples every run
    shutil.copytree(CALLABLES / "runner", pytester.path / "runner")
    pytester.makeini("[pytest]\ntenantdb_migrations = runner.steps:STEPS\ntenantdb_checks = true\n")
    result = pytester.runpytest("-k", "round_trip")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAILED *::0003_add_plan::round_trip*"])
    assert "ix_accounts_name" in result.stdout.str()


def test_glue_for_a_runner_whose_steps_take_a_wrapper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 10-line glue example of docs/sources/callables.md, run as written there."""
    docs = (ROOT / "docs" / "sources" / "callables.md").read_text()
    glue = docs.split("```python\n# tenantdb_glue.py")[1].split("```")[0]
    runner = textwrap.dedent(
        """\
        class Database:
            def __init__(self, conn):
                self.conn = conn

            def run(self, sql):
                self.conn.execute(sql)


        def create_users(db):
            db.run("CREATE TABLE users (id INTEGER PRIMARY KEY)")


        def add_email(db):
            db.run("ALTER TABLE users ADD COLUMN email TEXT")


        MIGRATIONS = [create_users, add_email]
        """
    )
    (tmp_path / "myrunner.py").write_text(runner)
    (tmp_path / "tenantdb_glue.py").write_text("# tenantdb_glue.py" + glue)
    monkeypatch.syspath_prepend(str(tmp_path))
    migrations = MigrationSet.from_path("tenantdb_glue:STEPS", root=tmp_path)
    assert [s.name for s in migrations] == ["create_users", "add_email"]
    conn = sqlite3.connect(":memory:", isolation_level=None)
    run_plan(conn, migrations, migrations.plan(0, 2), version_store("user_version"))
    assert [r[1] for r in conn.execute("PRAGMA table_info(users)")] == ["id", "email"]


def test_a_base_runs_before_the_first_step(tmp_path: Path) -> None:
    (tmp_path / "base.sql").write_text("CREATE TABLE legacy (id INTEGER PRIMARY KEY);\n")
    migrations = MigrationSet.from_path(
        str(CALLABLES / "runner.steps:STEPS"), base=str(tmp_path / "base.sql")
    )
    assert [s.name for s in migrations][:2] == ["base", "create_accounts"]
    conn = sqlite3.connect(":memory:", isolation_level=None)
    run_plan(conn, migrations, migrations.plan(0, 2), version_store("user_version"))
    assert {"legacy", "accounts"} <= tables(conn)
    with pytest.raises(MigrationSetError, match="put it in the first step file"):
        MigrationSet.from_path(ROOT / "fixtures" / "example" / "migrations", base=str(tmp_path / "base.sql"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("runner.steps:NOPE", "has no attribute 'NOPE'"),
        ("runner.nothing:STEPS", "cannot import runner.nothing"),
        ("runner.steps:create_accounts", "must be a list"),
    ],
)
def test_bad_module_specs_are_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(MigrationSetError, match=message):
        MigrationSet.from_path(spec, root=CALLABLES)


def test_empty_steps_are_legal_in_every_layout(tmp_path: Path, write_migrations: Writer) -> None:
    """A step with nothing to do on SQLite (realworld-patterns/H_empty_step) is a no-op step."""
    pattern = (
        Path(__file__).resolve().parents[2] / "shared" / "realworld-patterns" / "H_empty_step" / "migrations"
    )
    folder = (
        pattern
        if pattern.is_dir()
        else write_migrations(
            {
                "0001_t.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY);",
                "0002_pg.sql": "-- migrate:up\n-- pg only\n-- migrate:down\n",
            }
        )
    )
    migrations = MigrationSet.from_path(folder)
    assert len(migrations) == 2 and migrations[1].up == ()  # type: ignore[attr-defined]
    fleet = make_builder(tmp_path, migrations)(versions={1: 2}, sizes="small")
    fleet.migrate().raise_on_failure()
    assert fleet.versions() == {2: 2}


def test_a_base_before_alembic_revisions_that_expect_create_all(
    tmp_path: Path, write_migrations: Writer
) -> None:
    """Projects such as mlflow create their first tables with metadata.create_all, then migrate:
    the base runs as step 1 and alembic_version starts after it."""
    folder = write_migrations(
        {"a.py": _revision("a", None, "op.add_column('runs', sa.Column('tag', sa.String(20)))")}
    )
    (tmp_path / "models.py").write_text(
        "def create_all(conn):\n    conn.execute('CREATE TABLE runs (id INTEGER PRIMARY KEY)')\n"
    )
    migrations = MigrationSet.from_path(folder, base="models:create_all", root=tmp_path)
    assert [s.label for s in migrations] == ["0001_base", "0002_a"]
    store = version_store("auto", migrations)
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    run_plan(conn, migrations, migrations.plan(0, 1), store)
    assert store.read(conn) == 1 and tables(conn) == {"runs", "alembic_version"}
    run_plan(conn, migrations, migrations.plan(1, 2), store)
    assert store.read(conn) == 2
    assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("a",)]


@pytest.mark.parametrize(
    ("migrations", "message"),
    [
        (
            {"0001_initial.py": "import not_a_module_at_all\n"},
            r"0001_initial.py:1: importing this Django migration raised ModuleNotFoundError",
        ),
        (
            {
                "0001_initial.py": "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    pass\n",
                "0002_a.py": "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
                "    dependencies = [('shop', '0001_initial')]\n",
                "0002_b.py": "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
                "    dependencies = [('shop', '0001_initial')]\n",
            },
            r"conflicting Django migrations .*shop: 0002_a, 0002_b.*makemigrations --merge",
        ),
    ],
    ids=["import-error", "two-leaves"],
)
def test_bad_django_histories_are_clear_errors(
    tmp_path: Path, migrations: dict[str, str], message: str
) -> None:
    """In a fresh process each: Django's settings are once per process."""
    app = tmp_path / "shop" / "migrations"
    app.mkdir(parents=True)
    (tmp_path / "shop" / "__init__.py").write_text("")
    (app / "__init__.py").write_text("")
    for name, text in migrations.items():
        (app / name).write_text(text)
    (tmp_path / "shop_settings.py").write_text(
        "SECRET_KEY = 'x'\nINSTALLED_APPS = ['shop']\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest_tenantdb.cli", "versions", "django:shop"],
        cwd=tmp_path,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "shop_settings", "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    flat = re.sub(r"\s+", "", result.stderr)  # the CLI wraps long lines (also inside paths)
    assert re.search(message.replace(" ", ""), flat), result.stderr


def test_an_irreversible_django_migration_has_no_down(tmp_path: Path) -> None:
    """A RunPython without reverse_code: no down (so no round_trip item), as Django sees it."""
    app = tmp_path / "shop" / "migrations"
    app.mkdir(parents=True)
    (tmp_path / "shop" / "__init__.py").write_text("")
    (app / "__init__.py").write_text("")
    (app / "0001_initial.py").write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        "    operations = [migrations.RunSQL('CREATE TABLE t (id integer)', 'DROP TABLE t')]\n"
    )
    (app / "0002_fill.py").write_text(
        "from django.db import migrations\n\n\ndef fill(apps, schema_editor):\n    pass\n\n\n"
        "class Migration(migrations.Migration):\n    dependencies = [('shop', '0001_initial')]\n"
        "    operations = [migrations.RunPython(fill)]\n"
    )
    (tmp_path / "shop_settings.py").write_text(
        "SECRET_KEY = 'x'\nINSTALLED_APPS = ['shop']\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}}\n"
    )
    code = (
        "from pytest_tenantdb.migrations import MigrationSet; "
        "print([s.has_down for s in MigrationSet.from_path('django:shop')])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "shop_settings", "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "[True, False]", result.stderr


def test_an_alembic_ini_elsewhere_with_here_and_version_locations(tmp_path: Path) -> None:
    """script_location with %(here)s, version_locations relative to the file."""
    shutil.copytree(ALEMBIC / "migrations", tmp_path / "db" / "migrations")
    (tmp_path / "config").mkdir()
    ini = tmp_path / "config" / "alembic.ini"
    ini.write_text(
        "[alembic]\nscript_location = %(here)s/../db/migrations\n"
        "version_locations = ../db/migrations/versions\n"
    )
    migrations = MigrationSet.from_path(ini)
    assert [s.name for s in migrations] == ALEMBIC_ORDER
    assert all(s.env is not None for s in migrations)  # type: ignore[attr-defined]


def test_a_django_finding_cites_the_operation_that_made_it(tmp_path: Path) -> None:
    """A Django migration runs no code of its own: the statement is cited at its operation."""
    project = tmp_path / "project"
    shutil.copytree(DJANGO, project)
    (project / "pyproject.toml").write_text(
        '[tool.tenantdb]\nmigrations = "django:notes"\ndjango_settings = "django_project_settings"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest_tenantdb.cli", "check", str(project), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
    )
    import json

    findings = json.loads(result.stdout)
    unique = [f for f in findings if f["code"] == "TDB108"]
    assert [(Path(f["file"]).name, f["line"], f["subject"]) for f in unique] == [
        ("0003_unique_slug.py", 10, "unique notes_note(slug)")
    ], result.stdout + result.stderr
