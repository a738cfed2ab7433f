"""Rollout simulation (fleet/rollout.py, the ``tenant_rollout`` fixture): app versions N and
N+1 run against tenants while the fleet migrates, eagerly, in batches or lazily."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_tenantdb.errors import ConfigError, QueryParameterError, RolloutFailure
from pytest_tenantdb.fleet.rollout import (
    AppPiece,
    Migrate,
    QueryFailure,
    Request,
    Rollout,
    RolloutFactory,
    Switch,
    app_pieces,
    group_query_failures,
    interleavings,
)
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.settings import Settings
from tests.conftest import EXAMPLE, apply_variant, make_builder

# App version 12 reads notes.heading: the column a new step 0012 brings.
NEW_QUERIES = """-- App version 12 reads and writes notes.heading.
-- name: create_user
INSERT INTO users (email, display_name) VALUES (:email, :name);
-- name: get_user
SELECT id, email, display_name, created_at FROM users WHERE id = :id;
-- name: find_note_by_heading
SELECT id, body FROM notes WHERE project_id = :project_id AND heading = :title;
-- name: urgent_notes
SELECT id, heading FROM notes WHERE project_id = :project_id AND priority >= 2;
"""

# The expand/contract way of renaming notes.title: add heading, backfill it, keep it in sync
# while app 11 still writes title; title is dropped by a later contract step.
EXPAND_HEADING = """-- migrate:up
ALTER TABLE notes ADD COLUMN heading TEXT;
UPDATE notes SET heading = title;
CREATE TRIGGER notes_heading_insert AFTER INSERT ON notes WHEN NEW.heading IS NULL
BEGIN
    UPDATE notes SET heading = NEW.title WHERE id = NEW.id;
END;
CREATE TRIGGER notes_heading_update AFTER UPDATE OF title ON notes
BEGIN
    UPDATE notes SET heading = NEW.title WHERE id = NEW.id;
END;

-- migrate:down
DROP TRIGGER notes_heading_update;
DROP TRIGGER notes_heading_insert;
ALTER TABLE notes DROP COLUMN heading;
"""


def _make_project(path: Path, variant: str) -> Path:
    """The example project with app version 12's queries, and step 0012 either the broken
    in-place rename (``rename``) or the expand step (``expand``)."""
    for name in ("migrations", "queries"):
        shutil.copytree(EXAMPLE / name, path / name)
    for name in ("schema.sql", "tenantdb.lock", "pyproject.toml"):
        shutil.copy(EXAMPLE / name, path / name)
    if variant == "rename":
        apply_variant(path, "rename_breaks_old_queries")
    else:
        (path / "migrations" / "0012_expand_note_heading.sql").write_text(EXPAND_HEADING)
    (path / "queries" / "0012.sql").write_text(NEW_QUERIES)
    return path


def _factory(tmp_path: Path, variant: str, **builder: object) -> RolloutFactory:
    project = _make_project(tmp_path / "project", variant)
    migrations = MigrationSet.from_path(project / "migrations")
    settings = dataclasses.replace(Settings(migrations=project / "migrations"), queries=project / "queries")
    return RolloutFactory(make_builder(tmp_path, migrations, **builder), settings)


@pytest.fixture
def broken(tmp_path: Path) -> Rollout:
    return _factory(tmp_path, "rename")(count=8, seed=1)


@pytest.fixture
def expand(tmp_path: Path) -> Rollout:
    return _factory(tmp_path, "expand")(count=8, seed=1)


# -- what a rollout finds ---------------------------------------------------------------------


def test_batched_rollout_reports_old_queries_broken_by_an_in_place_rename(broken: Rollout) -> None:
    result = broken.run(mode="batches", seed=123)
    assert not result.ok
    groups = result.failure_groups()
    assert {g.piece.name for g in groups} == {"find_note_by_title", "urgent_notes"}
    for group in groups:
        assert group.apps == [11] and group.schemas == [12]
        assert group.error == "OperationalError: no such column: title"
        assert group.piece.location.endswith(
            "queries/0010.sql:" + ("7" if "find" in group.piece.name else "9")
        )
        assert group.count == len(group.failures) >= 1
    # every failure is an old-app request on a tenant already migrated by an earlier batch
    for failure in result.failures:
        event = result.interleaving[failure.event]
        assert isinstance(event, Request) and event.app == 11 and event.tenant == failure.tenant
        migrated_before = {
            t for e in result.interleaving[: failure.event] if isinstance(e, Migrate) for t in e.tenants
        }
        assert failure.tenant in migrated_before
    text = str(result)
    assert "query find_note_by_title" in text and "under app 11 at schema 12" in text
    assert "interleaving (replay it with rollout.replay(...)):" in text
    with pytest.raises(RolloutFailure, match="no such column: title"):
        result.raise_on_failure()


def test_a_correct_expand_contract_rollout_passes_in_every_mode(expand: Rollout) -> None:
    for mode in ("eager", "batches", "lazy"):
        for seed in range(5):
            result = expand.run(mode=mode, seed=seed)
            assert result.ok, result
            assert result.requests > 0 or mode == "lazy"
        expand.check(mode=mode, max_examples=10)


def test_check_shrinks_to_a_minimal_failing_interleaving(broken: Rollout) -> None:
    with pytest.raises(RolloutFailure) as excinfo:
        broken.check(mode="batches", max_examples=25)
    message = str(excinfo.value)
    assert "under app 11 at schema 12: OperationalError: no such column: title" in message
    # shrunk: one request, of the old app, after the batches
    requests = [line for line in message.splitlines() if "Request(" in line]
    assert len(requests) == 1 and "app=11" in requests[0]
    assert any("Failing test case" in note or "Falsifying" in note for note in excinfo.value.__notes__)


def test_new_code_any_reports_new_queries_on_tenants_not_migrated_yet(expand: Rollout) -> None:
    failures = [f for seed in range(5) for f in expand.run("batches", seed, new_code="any").failures]
    assert failures, "the new app reached no tenant still at 11 in 5 seeds"
    assert {(f.app, f.schema) for f in failures} == {(12, 11)}
    assert {f.piece.name for f in failures} <= {"find_note_by_heading", "urgent_notes"}
    assert {f.error for f in failures} == {"OperationalError: no such column: heading"}


def test_errors_the_app_has_on_its_own_schema_are_ignored_not_reported(expand: Rollout) -> None:
    """create_user with a NULL email fails at 11 as at 12: a parameter, not the rollout."""
    tenant = expand.fleet[0].id
    null_email = {"email": None, "name": "x", "id": 1, "project_id": 1, "title": "t"}
    result = expand.replay([Migrate((tenant,)), Request(tenant, 11, null_email), Switch()])
    assert result.ok and result.ignored == 1 and result.requests == 1


# -- modes -------------------------------------------------------------------------------------


def test_eager_migrates_every_tenant_before_the_new_app_serves(broken: Rollout) -> None:
    events = broken.draw("eager", seed=7)
    switch = next(i for i, e in enumerate(events) if isinstance(e, Switch))
    before, after = events[:switch], events[switch + 1 :]
    assert [len(e.tenants) for e in before if isinstance(e, Migrate)] == [1] * len(broken.fleet)
    assert all(e.app == 11 for e in before if isinstance(e, Request))
    assert all(isinstance(e, Request) and e.app == 12 for e in after)


def test_batches_migrate_k_tenants_at_a_time_and_the_new_app_serves_migrated_ones(broken: Rollout) -> None:
    events = broken.draw("batches", seed=3, batch=3, requests=6)
    assert [len(e.tenants) for e in events if isinstance(e, Migrate)] == [3, 3, 2]
    migrated: set[str] = set()
    for event in events:
        if isinstance(event, Migrate):
            migrated.update(event.tenants)
        elif isinstance(event, Request) and event.app == 12:
            assert event.tenant in migrated
    assert {e.app for e in events if isinstance(e, Request)} == {11, 12}


def test_lazy_migrates_a_tenant_on_the_first_request_of_the_new_app(broken: Rollout) -> None:
    first, second = broken.fleet[0].id, broken.fleet[1].id
    params = {"id": 1, "project_id": 1, "title": "a", "email": "a@b", "name": "A"}
    result = broken.replay(
        [Request(first, 11, params), Request(first, 12, params), Request(first, 11, params), Switch()],
        mode="lazy",
    )
    assert [(o.tenant, o.start, o.end) for o in result.migrations] == [(first, 11, 12)]
    assert result.versions[first] == 12 and result.versions[second] == 11
    assert second in result.pending
    assert {(f.tenant, f.app, f.schema, f.event) for f in result.failures} == {(first, 11, 12, 2)}
    assert all(not isinstance(e, Migrate) for e in broken.draw("lazy", seed=5))


def test_tenants_already_at_the_new_version_meet_the_old_app_from_the_start(tmp_path: Path) -> None:
    rollout = _factory(tmp_path, "rename")(count=6, versions={11: 3, 12: 3}, seed=2)
    at_head = {t.id for t in rollout.fleet if t.version == 12}
    assert set(rollout.plan().pending) == {t.id for t in rollout.fleet} - at_head
    result = rollout.replay([Request(sorted(at_head)[0], 11, {"project_id": 1, "title": "x"}), Switch()])
    assert {f.schema for f in result.failures} == {12} and not result.migrations


def test_a_failed_migration_is_reported_and_the_tenant_stays_behind(tmp_path: Path) -> None:
    factory = _factory(tmp_path, "rename")
    rollout = factory(count=3, seed=1)
    victim = rollout.fleet[0]
    conn = sqlite3.connect(victim.path)  # the rename cannot run: notes.title is gone already
    conn.executescript("ALTER TABLE notes RENAME COLUMN title TO heading;")
    conn.close()
    result = rollout.replay([Migrate(tuple(t.id for t in rollout.fleet)), Switch()])
    failed = [o for o in result.migrations if o.status == "failed"]
    assert [o.tenant for o in failed] == [victim.id] and "no such column" in (failed[0].error or "")
    assert not result.ok and result.pending == [victim.id]
    assert "migration step 0012_rename_note_title" in str(result)


# -- determinism -------------------------------------------------------------------------------


def _comparable(result: object) -> list[str]:
    assert hasattr(result, "failures")
    return [f.describe() for f in result.failures]


def test_the_same_seed_gives_the_same_interleaving_and_result(broken: Rollout) -> None:
    for mode in ("eager", "batches", "lazy"):
        assert broken.draw(mode, seed=42) == broken.draw(mode, seed=42)
        first, second = broken.run(mode, seed=42), broken.run(mode, seed=42)
        assert first.interleaving == second.interleaving
        assert _comparable(first) == _comparable(second)
        assert first.versions == second.versions and first.requests == second.requests
        assert first.directory != second.directory  # each run on its own copies
    assert len({repr(broken.draw("batches", seed=s)) for s in range(5)}) > 1


def test_a_printed_interleaving_replays_to_the_same_result(broken: Rollout) -> None:
    result = broken.run("batches", seed=9)
    again = broken.replay(
        eval(repr(list(result.interleaving)), {"Request": Request, "Migrate": Migrate, "Switch": Switch})
    )
    assert _comparable(again) == _comparable(result)


def test_the_fleets_own_files_are_never_changed(broken: Rollout) -> None:
    before = {t.id: t.path.read_bytes() for t in broken.fleet}
    broken.run("eager", seed=1)
    broken.run("lazy", seed=1)
    assert {t.id: t.path.read_bytes() for t in broken.fleet} == before
    assert all(t.current_version() == 11 for t in broken.fleet)


# -- the strategy ------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    data=st.data(),
    mode=st.sampled_from(["eager", "batches", "lazy"]),
    batch=st.integers(1, 4),
    new_code=st.sampled_from(["migrated", "any"]),
)
def test_interleavings_keep_to_the_mode(data: st.DataObject, mode: str, batch: int, new_code: str) -> None:
    tenants = ["a", "b", "c", "d", "e"]
    events = data.draw(
        interleavings(tenants, old=3, new=4, mode=mode, batch=batch, new_code=new_code, params={3: ["id"]})
    )
    assert sum(isinstance(e, Switch) for e in events) == 1
    switch = next(i for i, e in enumerate(events) if isinstance(e, Switch))
    assert all(isinstance(e, Request) and e.app == 4 for e in events[switch + 1 :])
    migrated = [t for e in events if isinstance(e, Migrate) for t in e.tenants]
    if mode == "lazy":
        assert migrated == []
    else:
        assert sorted(migrated) == tenants
        assert all(isinstance(e, Request | Migrate) for e in events[:switch])
    for event in events:
        if isinstance(event, Request):
            assert set(event.params) == ({"id"} if event.app == 3 else set())


def test_bad_arguments_say_what_to_do(tmp_path: Path, broken: Rollout) -> None:
    with pytest.raises(ConfigError, match="not one of eager, batches, lazy"):
        broken.run(mode="sideways")
    with pytest.raises(ConfigError, match="batch must be an int >= 1"):
        broken.run(batch=0)
    with pytest.raises(ConfigError, match="choose 'migrated' or 'any'"):
        broken.run(new_code="some")
    with pytest.raises(ConfigError, match="not a tenant of this fleet"):
        broken.replay([Request("nobody", 11)])
    with pytest.raises(ConfigError, match="after the Switch that retired it"):
        broken.replay([Switch(), Request(broken.fleet[0].id, 11)])
    factory = _factory(tmp_path / "other", "rename")
    with pytest.raises(ConfigError, match="not between app versions 11 and 12"):
        factory(count=2, versions={10: 2})
    with pytest.raises(ConfigError, match="must be before new="):
        factory(count=2, old="head", new="head-1")
    empty = tmp_path / "no-queries"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no app code for app version 11 or 12"):
        factory(count=2, queries=empty)


# -- app code ----------------------------------------------------------------------------------


def test_registered_functions_and_recorded_queries_serve_as_app_code(tmp_path: Path) -> None:
    def titles(conn: sqlite3.Connection) -> object:
        return conn.execute("SELECT title FROM notes").fetchall()

    factory = _factory(tmp_path, "rename")
    empty = tmp_path / "no-queries"
    empty.mkdir()
    rollout = factory(
        count=2,
        seed=1,
        queries=empty,
        functions={10: [titles]},
        recorded={11: ["SELECT id FROM notes WHERE title = ?"]},
    )
    [tenant, _] = [t.id for t in rollout.fleet]
    result = rollout.replay([Migrate((tenant,)), Request(tenant, 11, {"?1": "x"}), Switch()])
    by_kind = {f.piece.kind: f for f in result.failures}
    assert set(by_kind) == {"function", "recorded"}
    assert by_kind["function"].piece.name.endswith("titles")
    assert by_kind["function"].piece.location.endswith(f"test_rollout.py:{titles.__code__.co_firstlineno}")
    assert by_kind["recorded"].piece.label.startswith("recorded statement 1")


def test_a_query_that_cannot_be_bound_is_refused_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "queries"
    folder.mkdir()
    (folder / "0001.sql").write_text("-- name: mixed\nSELECT * FROM t WHERE a = :a AND b = ?;\n")
    from pytest_tenantdb.queries import QueryFolder

    with pytest.raises(
        QueryParameterError, match=r"query mixed .*cannot be run in a rollout: .*use one style"
    ):
        app_pieces(1, QueryFolder(folder), {}, {})


def test_failures_are_grouped_by_query_and_error_without_tenant_ids() -> None:
    piece = AppPiece("query", "q", "queries/0001.sql:2", 1, sql="SELECT 1")
    other = AppPiece("query", "r", "queries/0001.sql:4", 1, sql="SELECT 2")
    failures = [
        QueryFailure(piece, "t1", 2, 1, "OperationalError: no such column: x in t1 (3)", 1),
        QueryFailure(piece, "t2", 2, 1, "OperationalError: no such column: x in t2 (4)", 2),
        QueryFailure(piece, "t2", 2, 1, "OperationalError: no such column: x in t2 (4)", 5),
        QueryFailure(other, "t1", 2, 1, "OperationalError: no such table: y", 3),
    ]
    groups = group_query_failures(failures)
    assert [(g.piece.name, g.count, g.tenants) for g in groups] == [("q", 3, ["t1", "t2"]), ("r", 1, ["t1"])]
    assert groups[0].headline().startswith("query q (queries/0001.sql:2) under app 1 at schema 2:")
    assert "3 times, 2 tenants: t1, t2" in groups[0].headline()


# -- the fixture, as users run it --------------------------------------------------------------

FIXTURE_TESTS = """
from pytest_tenantdb.fleet.rollout import Request

def test_batches(tenant_rollout):
    rollout = tenant_rollout(count=6, seed=1)
    assert (rollout.old, rollout.new) == (11, 12)
    result = rollout.run(mode="batches", seed=123, batch=2)
    assert result.ok, result

def test_explored(tenant_rollout):
    tenant_rollout(count=6, seed=1).check(mode="{mode}", max_examples=15)
"""


@pytest.fixture(autouse=True)
def _no_registered_app_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process pytest runs share @app_code's registry: another test's functions are not this project's."""
    from pytest_tenantdb.checks.appcode import REGISTRY

    for version in list(REGISTRY):
        monkeypatch.delitem(REGISTRY, version)


def _pytester_project(pytester: pytest.Pytester, variant: str, mode: str = "batches") -> pytest.Pytester:
    _make_project(pytester.path, variant)
    pytester.makepyfile(test_rollout_example=FIXTURE_TESTS.replace("{mode}", mode))
    return pytester


def test_fixture_passes_a_correct_expand_contract(pytester: pytest.Pytester) -> None:
    project = _pytester_project(pytester, "expand", "lazy")
    result = project.runpytest("test_rollout_example.py", "--no-tenantdb-checks", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_fixture_catches_the_in_place_rename_and_prints_the_shrunk_interleaving(
    pytester: pytest.Pytester,
) -> None:
    project = _pytester_project(pytester, "rename")
    result = project.runpytest("test_rollout_example.py", "--no-tenantdb-checks", "-p", "no:randomly")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*RolloutResult batches 11 -> 12, seed 123: * failed queries, 0 failed migrations*",
            "*query find_note_by_title under app 11 at schema 12: OperationalError: no such column: title*",
            "*test_rollout_example.py:10: RolloutFailure: rollout batches from app 11 to 12: 6 tenants*",
            "*query find_note_by_title (*queries/0010.sql:7) under app 11 at schema 12: "
            "OperationalError: no such column: title*",
            "*interleaving (replay it with rollout.replay(...)):*",
            "*Migrate(tenants=(*",
            "*Request(tenant='tenant-*', app=11,*",
        ]
    )


def test_a_seed_gives_the_same_rollout_in_separate_processes(pytester: pytest.Pytester) -> None:
    """Two pytest processes (each with its own hash seed): the same interleaving and failures."""
    _make_project(pytester.path, "rename")
    pytester.makepyfile(
        test_seeded="""
        def test_print(tenant_rollout):
            print(tenant_rollout(count=6, seed=1).run(mode="lazy", seed=77, requests=4))
        """
    )
    outputs = []
    for _ in range(2):
        result = pytester.runpytest_subprocess(
            "test_seeded.py", "-s", "--no-tenantdb-checks", "-p", "no:randomly"
        )
        result.assert_outcomes(passed=1)
        lines = result.stdout.lines
        outputs.append(
            [line for line in lines if "rollout lazy" in line or line.startswith(("query ", "  "))]
        )
    assert outputs[0] == outputs[1]
    assert "rollout lazy from app 11 to 12, seed 77: 6 tenants" in outputs[0][0]
    assert any("Request(" in line for line in outputs[0])
