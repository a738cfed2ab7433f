"""SchemaDiff with SQLite's semantics, and what the SQL text of a table says (read with sqlglot)."""

from __future__ import annotations

import pytest

from pytest_tenantdb.schema import SchemaDiff
from pytest_tenantdb.sqltext import ColumnCheck, affinity, check_conditions, implied_by, table_clauses
from tests.conftest import schema_from_sql


def _diff(old: str, new: str) -> SchemaDiff:
    return SchemaDiff.between(schema_from_sql(old), schema_from_sql(new))


PARENTS = "CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE b (id INTEGER PRIMARY KEY);"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (  # foreign keys listed in another order
            PARENTS + "CREATE TABLE c (a_id INT REFERENCES a (id), b_id INT REFERENCES b (id));",
            PARENTS + "CREATE TABLE c (a_id INT, b_id INT, FOREIGN KEY (b_id) REFERENCES b (id), "
            "FOREIGN KEY (a_id) REFERENCES a (id));",
        ),
        (  # ASC is the default
            "CREATE TABLE t (x TEXT); CREATE INDEX ix ON t (x ASC);",
            "CREATE TABLE t (x TEXT); CREATE INDEX ix ON t (x);",
        ),
        (  # a CHECK spelled differently
            "CREATE TABLE t (x INT CHECK(x>0));",
            'CREATE TABLE t ("x" INT CHECK ( x > 0 ));',
        ),
        (  # BINARY is the default collation
            "CREATE TABLE t (x TEXT COLLATE BINARY);",
            "CREATE TABLE t (x TEXT);",
        ),
    ],
    ids=["fk-order", "index-asc", "check-spelling", "binary-collation"],
)
def test_what_sqlite_treats_alike_is_no_difference(old: str, new: str) -> None:
    assert not _diff(old, new), str(_diff(old, new))


def test_every_change_shows_before_and_after() -> None:
    diff = _diff(
        PARENTS + "CREATE TABLE c (a_id INT REFERENCES a (id), b_id INT REFERENCES b (id));"
        "CREATE INDEX ix ON c (a_id);",
        PARENTS + "CREATE TABLE c (a_id INT, b_id INT REFERENCES b (id) ON DELETE CASCADE, "
        "CHECK (a_id > 0));CREATE INDEX ix ON c (a_id DESC);",
    )
    text = str(diff)
    assert "foreign keys (a_id)->a(id), (b_id)->b(id)  ->  (b_id)->b(id) ON DELETE CASCADE" in text
    assert "checks (none)  ->  CHECK (a_id > 0)" in text
    assert "changed index ix: ON c (a_id)  ->  ON c (a_id DESC)" in text
    assert all(c.detail for c in diff.changes if c.kind == "changed")


def test_column_order_and_type_spelling_are_cosmetic_an_affinity_change_is_not() -> None:
    diff = _diff(
        "CREATE TABLE u (id INTEGER PRIMARY KEY, name VARCHAR(30), age TEXT);",
        "CREATE TABLE u (id INTEGER PRIMARY KEY, age INTEGER, name VARCHAR(150));",
    )
    assert [str(c) for c in diff.cosmetic.changes] == [
        "changed column u.name: type 'VARCHAR(30)' -> 'VARCHAR(150)'",
        "changed table u: column order (id, name, age) -> (id, age, name)",
    ]
    assert [str(c) for c in diff.significant.changes] == ["changed column u.age: type 'TEXT' -> 'INTEGER'"]


def test_in_a_strict_table_any_type_change_counts() -> None:
    diff = _diff("CREATE TABLE s (x INT) STRICT;", "CREATE TABLE s (x INTEGER) STRICT;")
    assert diff.significant and not diff.cosmetic


def test_table_clauses_are_read_with_sqlglot() -> None:
    clauses = table_clauses(
        "CREATE TABLE t (id INTEGER, s TEXT COLLATE NOCASE CHECK (s IN ('a','b')), "
        "CONSTRAINT c1 CHECK (length(s) <= 5), PRIMARY KEY (id)) STRICT, WITHOUT ROWID"
    )
    assert clauses.checks == ("s in ('a', 'b')", "length(s) <= 5")
    assert clauses.collations == {"s": "NOCASE"}
    assert clauses.without_rowid and clauses.strict
    assert not table_clauses(
        "CREATE TABLE t (x) -- WITHOUT ROWID\n"
    ).without_rowid  # a comment is not a clause
    assert table_clauses("CREATE TABLE t (x TEXT DEFAULT 'CHECK (x)')").checks == ()  # nor is a string


@pytest.mark.parametrize(
    ("declared", "expected"),
    [("VARCHAR(30)", "TEXT"), ("BIGINT", "INTEGER"), ("JSON", "NUMERIC"), ("", "BLOB"), ("DOUBLE", "REAL")],
)
def test_affinity_follows_sqlites_rules(declared: str, expected: str) -> None:
    assert affinity(declared) == expected


def test_check_conditions() -> None:
    assert check_conditions("x BETWEEN 1 AND 9") == (ColumnCheck("x", low=1.0, high=9.0),)
    assert check_conditions("0 < x AND x <= 10") == (ColumnCheck("x", low=1.0), ColumnCheck("x", high=10.0))
    assert check_conditions("status IN ('a', 'b')") == (ColumnCheck("status", choices=("a", "b")),)
    assert check_conditions("length(name) < 11") == (ColumnCheck("name", max_length=10),)
    assert check_conditions("x > 0 OR y > 0") == ()  # nothing is assumed about the rest


@pytest.mark.parametrize(
    ("new", "old", "implied"),
    [
        ("x BETWEEN 0 AND 100", ("x BETWEEN 1 AND 10",), True),  # a wider range
        ("x >= 0", ("x > 0 AND x < 5",), True),
        ("x BETWEEN 2 AND 100", ("x BETWEEN 1 AND 10",), False),  # narrower at the bottom
        ("s IN ('a', 'b', 'c')", ("s IN ('a', 'b')",), True),  # one more allowed value
        ("s IN ('a')", ("s IN ('a', 'b')",), False),
        ("length(s) <= 100", ("length(s) <= 30",), True),
        ("length(s) <= 10", ("length(s) <= 30",), False),
        ("x BETWEEN 0 AND 9", ("x IN (1, 2, 3)",), True),  # an IN list inside a range
        ("x > 0", (), False),  # a new constraint
        ("y > 0", ("x > 0",), False),  # on another column
    ],
)
def test_a_check_is_implied_by_the_old_one_only_when_it_allows_everything_it_did(
    new: str, old: tuple[str, ...], implied: bool
) -> None:
    assert implied_by(new, old) is implied


def test_renamed_columns_are_followed() -> None:
    assert implied_by("b >= 0", ("a > 0",), {"a": "b"})


@pytest.mark.parametrize("compare", ["semantic", "exact"])
def test_schema_compare_decides_whether_column_order_fails_round_trip(
    compare: str, pytester: pytest.Pytester
) -> None:
    migrations = pytester.path / "migrations"
    migrations.mkdir()
    (migrations / "0001_t.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);\n")
    (migrations / "0002_c.sql").write_text(
        "-- migrate:up\nALTER TABLE t ADD COLUMN c TEXT;\n-- migrate:down\n"
        "CREATE TABLE t_tmp (id INTEGER PRIMARY KEY, b TEXT, a TEXT);\n"
        "INSERT INTO t_tmp (id, b, a) SELECT id, b, a FROM t;\nDROP TABLE t;\nALTER TABLE t_tmp RENAME TO t;\n"
    )
    pytester.makeini(
        f"[pytest]\ntenantdb_checks = true\ntenantdb_examples = 5\ntenantdb_schema_compare = {compare}\n"
    )
    result = pytester.runpytest("-k", "round_trip")
    if compare == "semantic":
        assert result.parseoutcomes()["passed"] == 1 and result.parseoutcomes()["warnings"] >= 1
        result.stdout.fnmatch_lines(["*SchemaDifferenceWarning*", "*column order (id, a, b) -> (id, b, a)*"])
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*changed table t: column order (id, a, b) -> (id, b, a)*"])
