"""Schema introspection, SchemaDiff, and schema-aware fake data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pytest_tenantdb.errors import ConfigError, SeedingError
from pytest_tenantdb.fleet.seeding import SIZE_ROWS, Seeder, value_kind
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.schema import Column, Schema, SchemaDiff
from pytest_tenantdb.versioning import version_store

CONSTRAINED = """
CREATE TABLE orgs (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL COLLATE NOCASE);
CREATE TABLE members (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    manager_id INTEGER REFERENCES members(id),
    email TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    age INTEGER CHECK (age BETWEEN 18 AND 99),
    score REAL NOT NULL CHECK (score >= 0 AND score < 5),
    nickname TEXT CHECK (length(nickname) <= 8),
    token TEXT,
    avatar BLOB,
    joined_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    external_uuid TEXT UNIQUE,
    UNIQUE (org_id, email)
);
CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT) WITHOUT ROWID;
CREATE TABLE member_tags (member_id INTEGER NOT NULL REFERENCES members(id), tag TEXT NOT NULL REFERENCES tags(code),
    PRIMARY KEY (member_id, tag));
CREATE INDEX members_org ON members(org_id);
CREATE VIEW admins AS SELECT * FROM members WHERE role = 'admin';
CREATE TRIGGER members_touch AFTER UPDATE ON members BEGIN SELECT 1; END;
"""


@pytest.fixture
def constrained(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "c.sqlite3", isolation_level=None)
    conn.executescript(CONSTRAINED)
    return conn


def test_schema_from_connection(constrained: sqlite3.Connection) -> None:
    schema = Schema.from_connection(constrained)
    assert sorted(schema.tables) == ["member_tags", "members", "orgs", "tags"]
    members = schema.tables["members"]
    assert members.rowid_alias == "id"
    assert members.column("EMAIL").notnull
    assert ("email",) in members.unique_sets and ("org_id", "email") in members.unique_sets
    assert {fk.ref_table for fk in members.foreign_keys} == {"orgs", "members"}
    assert schema.tables["orgs"].column("name").collation == "NOCASE"
    assert schema.tables["tags"].without_rowid and schema.tables["tags"].rowid_alias is None
    assert schema.tables["member_tags"].primary_key == ("member_id", "tag")
    checks = members.column_checks()
    assert checks["role"].choices == ("owner", "admin", "member")
    assert (checks["age"].low, checks["age"].high) == (18, 99)
    assert (checks["score"].low, checks["score"].high) == (0, 4)
    assert checks["nickname"].max_length == 8
    assert (
        list(schema.indexes) == ["members_org"]
        and "admins" in schema.views
        and "members_touch" in schema.triggers
    )
    order = schema.insert_order()
    assert order.index("orgs") < order.index("members") < order.index("member_tags")
    assert order.index("tags") < order.index("member_tags")
    with pytest.raises(KeyError):
        members.column("nope")


def test_schema_diff_names_every_change(tmp_path: Path, constrained: sqlite3.Connection) -> None:
    before = Schema.from_connection(constrained)
    assert not SchemaDiff.between(before, before)
    assert str(SchemaDiff.between(before, before)) == "no schema changes"
    constrained.executescript(
        """
        ALTER TABLE orgs ADD COLUMN plan TEXT DEFAULT 'free';
        DROP INDEX members_org;
        CREATE UNIQUE INDEX members_org ON members(org_id, id);
        DROP VIEW admins;
        DROP TRIGGER members_touch;
        CREATE TABLE audit (id INTEGER PRIMARY KEY);
        DROP TABLE member_tags;
        """
    )
    diff = SchemaDiff.between(before, Schema.from_connection(constrained))
    text = str(diff)
    for expected in (
        "added column orgs.plan",
        "changed index members_org",
        "dropped view admins",
        "dropped trigger members_touch",
        "added table audit",
        "dropped table member_tags",
    ):
        assert expected in text


def test_schema_diff_sees_column_changes_in_a_rebuild(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "r.sqlite3", isolation_level=None)
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT NOT NULL, c TEXT)")
    before = Schema.from_connection(conn)
    conn.executescript("DROP TABLE t; CREATE TABLE t (a TEXT, c TEXT, b TEXT, CHECK (a != ''));")
    text = str(SchemaDiff.between(before, Schema.from_connection(conn)))
    assert "changed column t.a: type 'INTEGER' -> 'TEXT'" in text
    assert "changed column t.b: notnull True -> False" in text
    assert "column order" in text and "checks" in text


def test_value_kinds_by_name_then_type() -> None:
    def kind(name: str, type_: str = "TEXT") -> str:
        return value_kind(Column(name, type_, False, None, 0))

    assert kind("email") == "email"
    assert kind("created_at") == "datetime"
    assert kind("birthday") == "date"
    assert kind("external_uuid") == "uuid"
    assert kind("metadata") == "json"
    assert kind("is_active", "INTEGER") == "bool"
    assert kind("total_amount", "REAL") == "money"
    assert kind("position", "INTEGER") == "small_int"
    assert kind("n", "BIGINT") == "int"
    assert kind("ratio", "DOUBLE") == "real"
    assert kind("avatar", "BLOB") == "blob"
    assert kind("display_name") == "name"
    assert kind("whatever") == "word"


def _fill(conn: sqlite3.Connection, rows: int, seed: int = 0, **kw: object) -> dict[str, int]:
    return Seeder(seed, **kw).fill(conn, Schema.from_connection(conn), rows)  # type: ignore[arg-type]


def test_seeded_rows_respect_constraints(constrained: sqlite3.Connection) -> None:
    counts = _fill(constrained, 60)
    assert all(n > 0 for n in counts.values()), counts
    assert constrained.execute("PRAGMA foreign_key_check").fetchall() == []
    assert constrained.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    roles = {r[0] for r in constrained.execute("SELECT role FROM members")}
    assert roles <= {"owner", "admin", "member"}
    low, high = constrained.execute("SELECT MIN(age), MAX(age) FROM members").fetchone()
    assert 18 <= low <= high <= 99
    assert constrained.execute("SELECT MAX(length(nickname)) FROM members").fetchone()[0] <= 8
    assert constrained.execute("SELECT MIN(score) >= 0 AND MAX(score) < 5 FROM members").fetchone() == (1,)
    emails = [r[0] for r in constrained.execute("SELECT email FROM members")]
    assert len(emails) == len(set(emails)) and all("@" in e for e in emails)
    assert constrained.execute("SELECT COUNT(*) FROM members WHERE token IS NULL").fetchone()[0] > 0


def test_seeding_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    dumps = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        conn = sqlite3.connect(tmp_path / f"{name}.sqlite3", isolation_level=None)
        conn.executescript(CONSTRAINED)
        _fill(conn, 20, seed=seed)
        dumps.append("\n".join(conn.iterdump()))
    assert dumps[0] == dumps[1]
    assert dumps[0] != dumps[2]


def test_user_generators_override_columns(constrained: sqlite3.Connection) -> None:
    _fill(
        constrained,
        10,
        generators={
            "members.email": lambda faker, i: f"user{i}@corp.test",
            "slug": lambda f, i: f"org-{i}",
        },
    )
    assert all(r[0].endswith("@corp.test") for r in constrained.execute("SELECT email FROM members"))
    assert all(r[0].startswith("org-") for r in constrained.execute("SELECT slug FROM orgs"))
    with pytest.raises(ConfigError, match="must be callable"):
        Seeder(0, {"email": "x"})  # type: ignore[dict-item]


def test_seeding_error_is_typed_and_rolled_back(constrained: sqlite3.Connection) -> None:
    constrained.execute("CREATE TABLE strict_t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL) STRICT")
    with pytest.raises(SeedingError, match="override the offending column"):
        _fill(constrained, 5, generators={"strict_t.v": lambda f, i: "not an int"})
    assert constrained.execute("SELECT COUNT(*) FROM orgs").fetchone() == (0,)


def test_empty_size_inserts_nothing(constrained: sqlite3.Connection) -> None:
    assert set(_fill(constrained, 0).values()) == {0}


def test_example_schema_seeds_every_table(tmp_path: Path, example_migrations: MigrationSet) -> None:
    cache = TemplateCache(tmp_path, example_migrations, version_store("user_version"))
    path = cache.seeded_template(example_migrations.head, "large", 0, Seeder(3))
    conn = sqlite3.connect(path)
    for table in ("users", "projects", "notes", "tags", "note_tags"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] >= SIZE_ROWS["large"] // 4
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    statuses = {r[0] for r in conn.execute("SELECT status FROM notes")}
    assert statuses <= {"draft", "published", "archived"}
