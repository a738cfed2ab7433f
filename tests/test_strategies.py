"""Hypothesis strategies: drawn tenants are valid, reach the edges, and shrink small."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from pytest_tenantdb.errors import ConfigError
from pytest_tenantdb.schema import Schema
from pytest_tenantdb.strategies import DEFAULT, TenantData, column_values, fleet_data, rows, tenant_data
from tests.test_schema_and_seeding import CONSTRAINED

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    path = tmp_path_factory.mktemp("s") / "c.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        CONSTRAINED
        + "CREATE UNIQUE INDEX orgs_name ON orgs(name); CREATE TABLE counters (n INTEGER, r REAL);"
    )
    conn.close()
    return Schema.from_path(path)


def _load(schema: Schema, data: TenantData) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for table in schema.tables.values():
        conn.execute(table.sql)
    for index in schema.indexes.values():
        if index.sql:
            conn.execute(index.sql)
    conn.execute("PRAGMA foreign_keys = ON")
    data.apply(conn)
    return conn


@FAST
@given(data=st.data())
def test_drawn_tenants_are_valid_and_fully_inserted(schema: Schema, data: st.DataObject) -> None:
    tenant = data.draw(tenant_data(schema, max_rows=5))
    conn = _load(schema, tenant)
    for table, drawn in tenant.rows.items():
        count = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        assert count == len(drawn), (table, drawn)  # nothing dropped: every constraint was honoured
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    for row in tenant.rows.get("members", []):
        assert row["role"] in ("owner", "admin", "member")
        assert row["age"] is None or row["age"] is DEFAULT or 18 <= row["age"] <= 99  # type: ignore[operator]
    names = [r["name"].lower() for r in tenant.rows.get("orgs", [])]  # type: ignore[union-attr]
    assert len(names) == len(set(names))  # UNIQUE index under NOCASE


def test_edges_are_reached(schema: Schema) -> None:
    strategy = tenant_data(schema, max_rows=3)
    quick = settings(max_examples=2000, deadline=None, database=None, derandomize=True)

    def has(predicate: object) -> TenantData:
        return find(
            strategy,
            lambda t: any(predicate(v) for r in t.rows.values() for row in r for v in row.values()),
            settings=quick,
        )  # type: ignore[operator]

    has(lambda v: isinstance(v, str) and "\x00" in v)
    has(lambda v: isinstance(v, str) and any(ord(c) > 0xFFFF for c in v))
    has(lambda v: v == 2**63 - 1 or v == -(2**63))
    has(lambda v: v == "")
    has(lambda v: isinstance(v, bytes))
    has(lambda v: v is None)
    has(lambda v: v is DEFAULT)


def test_shrinks_to_a_minimal_tenant(schema: Schema) -> None:
    minimal = find(
        tenant_data(schema, max_rows=6),
        lambda t: len(t.rows.get("members", [])) >= 1,
        settings=settings(max_examples=500, database=None, derandomize=True),
    )
    # one member and the org it needs (unique_by lists do not always shrink to the last row)
    assert len(minimal.rows["members"]) == 1 and 1 <= len(minimal.rows["orgs"]) <= 2
    assert all(not drawn for name, drawn in minimal.rows.items() if name not in ("members", "orgs"))
    assert "TenantData({" in repr(minimal) and "Schema(" not in repr(minimal)


def test_rows_and_fleet_data(schema: Schema) -> None:
    drawn = find(rows(schema, "members", max_rows=4), lambda _: True)
    assert all(row["org_id"] is None for row in drawn) or drawn == []  # no parent rows to point at
    fleet = find(fleet_data({1: schema, 2: schema}, max_tenants=3), lambda f: len(f) >= 2)
    assert len(fleet) == 2 and all(version in (1, 2) for version, _ in fleet)
    with pytest.raises(ConfigError, match="no table 'nope'"):
        rows(schema, "nope")
    with pytest.raises(ConfigError, match="at least one schema"):
        fleet_data({})
    with pytest.raises(ConfigError, match="max_rows"):
        tenant_data(schema, max_rows=-1)


def test_overrides_and_column_values(schema: Schema) -> None:
    strategy = tenant_data(schema, max_rows=3, overrides={"members.email": st.just("fixed@example.test")})
    tenant = find(strategy, lambda t: bool(t.rows.get("members")), settings=settings(database=None))
    assert {r["email"] for r in tenant.rows["members"]} == {"fixed@example.test"}
    table = schema.tables["members"]
    checks = table.column_checks()
    score = find(column_values(table.column("score"), checks["score"]), lambda v: v > 1)
    assert isinstance(score, float) and 1 < score <= 4


def test_tenant_data_apply_handles_defaults_only(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (a TEXT DEFAULT 'x')")
    schema = Schema.from_connection(conn)
    TenantData(schema, {"t": [{"a": DEFAULT}]}).apply(conn)
    assert conn.execute("SELECT a FROM t").fetchall() == [("x",)]
