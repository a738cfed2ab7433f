"""Fleets: version and size mixes, tenant ids, snapshots."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from pytest_tenantdb.errors import ConfigError, TenantDatabaseError, TenantIdError
from pytest_tenantdb.fleet.fleet import Tenant, allocate, validate_tenant_id
from pytest_tenantdb.migrations import MigrationSet
from tests.conftest import EXAMPLE, make_builder


def test_allocate_shares_and_counts() -> None:
    assert allocate(10, {"a": 0.7, "b": 0.2, "c": 0.1}, "x").count("a") == 7
    spread = allocate(7, {"a": 1.0, "b": 1.0, "c": 1.0}, "x")
    assert len(spread) == 7 and sorted(set(spread)) == ["a", "b", "c"]
    assert allocate(None, {3: 2, 4: 1}, "x") == [3, 3, 4]
    for count, mix, message in (
        (5, {3: 2, 4: 1}, "add up to 3 but count=5"),
        (None, {3: 0.5}, "count= is needed"),
        (5, {}, "must not be empty"),
        (5, {3: -1}, "non-negative"),
        (5, {3: 0.0}, "add up to 0"),
        (5, {3: "x"}, "non-negative"),
    ):
        with pytest.raises(ConfigError, match=message):
            allocate(count, mix, "x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "a/b",
        "a\\b",
        "..",
        "",
        ".hidden",
        "x" * 101,
        "a b",
        "ten..ant",
        7,
        "acme\n",
        "acme\r",
    ],
)
def test_unsafe_tenant_ids_are_refused(bad: object) -> None:
    with pytest.raises(TenantIdError):
        validate_tenant_id(bad)


@pytest.mark.parametrize("good", ["acme", "tenant-0001", "a.b_c-d", "user@example.com", "x" * 100])
def test_safe_tenant_ids_pass(good: str) -> None:
    assert validate_tenant_id(good) == good


def test_fleet_at_mixed_versions(tmp_path: Path, example_migrations: MigrationSet) -> None:
    builder = make_builder(tmp_path, example_migrations, seed=5)
    fleet = builder(count=200, versions={"head": 0.7, "head-1": 0.2, "oldest": 0.1})
    assert len(fleet) == 200
    assert fleet.created_versions() == {11: 140, 10: 40, 1: 20}
    assert fleet.versions() == fleet.created_versions()
    assert {t.size for t in fleet} == {"empty", "small", "large"}
    assert all(t.path.parent == tmp_path / "tenants" / "fleet-1" for t in fleet)
    first = fleet[0]
    assert fleet.tenant(first.id) is first and first.id == "tenant-0001"
    with pytest.raises(KeyError, match="no tenant 'nope'"):
        fleet.tenant("nope")
    with first.connect() as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == first.version
    assert "users" in first.schema().tables
    assert "Fleet of 200 tenants" in repr(fleet)


def test_explicit_counts_ids_and_determinism(tmp_path: Path, example_migrations: MigrationSet) -> None:
    builder = make_builder(tmp_path, example_migrations)
    one = builder(versions={3: 4, 8: 2}, seed=1)
    two = builder(versions={3: 4, 8: 2}, seed=1)
    assert [(t.version, t.size) for t in one] == [(t.version, t.size) for t in two]
    assert [t.path.read_bytes() for t in one] == [t.path.read_bytes() for t in two]
    named = builder(versions=[5], ids=["acme", "globex"], sizes="large", name="named")
    assert [t.id for t in named] == ["acme", "globex"] and named[0].path.name == "acme.sqlite3"
    assert {t.version for t in named} == {5}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"count": -1}, ConfigError, "non-negative int"),
        ({"count": 2, "ids": ["a"]}, ConfigError, "make them agree"),
        ({"ids": ["a", "a"]}, TenantIdError, "unique"),
        ({"ids": ["../x"]}, TenantIdError, "unsafe tenant id"),
        ({"count": 3, "versions": {99: 1.0}}, ConfigError, "version 99 is not a step"),
        ({"count": 3, "sizes": {"huge": 1.0}}, ConfigError, "unknown size 'huge'"),
        ({"count": 3, "versions": 3.5}, ConfigError, "mapping, a list or a single value"),
    ],
)
def test_bad_fleet_arguments(
    tmp_path: Path, example_migrations: MigrationSet, kwargs: dict, error: type, message: str
) -> None:  # type: ignore[type-arg]
    with pytest.raises(error, match=message):
        make_builder(tmp_path, example_migrations).build(**kwargs)


def test_single_tenant(tmp_path: Path, example_migrations: MigrationSet) -> None:
    tenant = make_builder(tmp_path, example_migrations).tenant("head-2", tenant_id="solo", size="medium")
    assert isinstance(tenant, Tenant) and tenant.version == 9 and tenant.current_version() == 9
    with tenant.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] > 10
    tenant.path.unlink()
    with pytest.raises(TenantDatabaseError, match="no database file"):
        tenant.connect()


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_snapshots_are_copied_and_originals_never_touched(
    tmp_path: Path, example_migrations: MigrationSet
) -> None:
    source = tmp_path / "snapshots"
    shutil.copytree(EXAMPLE / "snapshots", source)
    before = _digest(source)
    fleet = make_builder(tmp_path, example_migrations).from_snapshots(source)
    assert sorted(t.id for t in fleet) == ["acme", "globex", "initech"]
    assert {t.id: t.version for t in fleet} == {"acme": 4, "globex": 7, "initech": 6}
    report = fleet.migrate()
    assert report.totals() == {"migrated": 2, "current": 0, "failed": 1}
    assert _digest(source) == before
    assert all(source not in t.path.parents for t in fleet)


def test_snapshot_edge_cases(tmp_path: Path, example_migrations: MigrationSet) -> None:
    builder = make_builder(tmp_path, example_migrations)
    with pytest.raises(ConfigError, match="does not exist"):
        builder.from_snapshots(tmp_path / "missing")
    with pytest.raises(ConfigError, match="does not exist"):
        builder.from_snapshots([tmp_path / "missing.sqlite3"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.db").write_bytes(b"x")
    (bad / "a.sqlite3").write_bytes(b"y")
    with pytest.raises(TenantIdError, match="same tenant id"):
        builder.from_snapshots(bad)
    wal = tmp_path / "wal"
    wal.mkdir()
    conn = sqlite3.connect(wal / "w.sqlite3")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    copied = builder.from_snapshots([wal / "w.sqlite3"])  # opened while the WAL holds the data
    conn.close()
    with copied[0].connect() as check:
        assert check.execute("SELECT x FROM t").fetchall() == [(1,)]
    (wal / "junk.db").write_bytes(b"not sqlite at all" * 100)
    junk = builder.from_snapshots([wal / "junk.db"])
    assert junk[0].version == -1


def test_big_templates_are_copied_not_held_in_memory(
    tmp_path: Path, example_migrations: MigrationSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_tenantdb.fleet import fleet as module

    monkeypatch.setattr(module, "IN_MEMORY_TEMPLATE", 0)
    small = make_builder(tmp_path / "a", example_migrations)(count=6, versions=[3, "head"], seed=4)
    monkeypatch.undo()
    big = make_builder(tmp_path / "b", example_migrations)(count=6, versions=[3, "head"], seed=4)
    assert [t.path.read_bytes() for t in small] == [t.path.read_bytes() for t in big]


def test_fleets_with_custom_generators_never_share_templates(
    tmp_path: Path, simple_migrations: MigrationSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeders come and go; a new one can get a dead one's id(). Custom templates are keyed by a
    token of their own (id() made constant here, to show it plays no part)."""
    from pytest_tenantdb.fleet import templates

    monkeypatch.setattr(templates, "id", lambda _: 1, raising=False)
    builder = make_builder(tmp_path, simple_migrations)
    first = builder(
        3, {"head": 1.0}, sizes="small", generators={"users.email": lambda f, i: f"first-{i}@x.org"}
    )
    second = builder(
        3, {"head": 1.0}, sizes="small", generators={"users.email": lambda f, i: f"second-{i}@x.org"}
    )
    for fleet, prefix in ((first, "first-"), (second, "second-")):
        for tenant in fleet:
            with tenant.connect() as conn:
                emails = [row[0] for row in conn.execute("SELECT email FROM users")]
            assert emails and all(e.startswith(prefix) for e in emails), emails[:3]
