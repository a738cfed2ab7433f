"""Postgres old queries resolved by sqlglot against a schema built from DDL (query_static.py)."""

from __future__ import annotations

import pytest
import sqlglot

from pytest_tenantdb.lint.ddl import apply_ddl
from pytest_tenantdb.lint.rules.query_static import Resolver
from pytest_tenantdb.migrations.statements import Statement
from pytest_tenantdb.schema import Schema

DDL = """
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, name text);
CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint REFERENCES users(id), title text);
CREATE VIEW named AS SELECT id, name FROM users;
CREATE VIEW named_again AS SELECT * FROM named;
CREATE VIEW gone AS SELECT id, nickname FROM users;
CREATE VIEW on_gone AS SELECT id FROM gone;
"""


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    statements = [Statement(sql.strip() + ";", n) for n, sql in enumerate(DDL.split(";"), 1) if sql.strip()]
    schema, unread = apply_ddl(Schema(), statements, "postgres")
    assert not unread
    return Resolver(schema, "postgres")


def _problems(resolver: Resolver, sql: str) -> list[tuple[str, str]]:
    return resolver.problems(sqlglot.parse_one(sql, read="postgres"))


def test_views_resolve_in_turn_and_broken_views_say_why(resolver: Resolver) -> None:
    assert resolver.columns["named_again"] == ["id", "name"]  # a view over a view, star expanded
    assert set(resolver.broken_views) == {"gone", "on_gone"}
    assert _problems(resolver, "SELECT id FROM on_gone") == [
        ("TDB201", "view on_gone no longer resolves: view gone no longer resolves: no such column: nickname")
    ]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT name FROM named_again", []),
        (
            "INSERT INTO posts (user_id, title) SELECT id, nope FROM users",
            [("TDB201", "no such column: nope")],
        ),
        (
            "INSERT INTO posts (user_id, body) VALUES ($1, $2)",
            [("TDB201", "table posts has no column named body")],
        ),
        ("UPDATE posts AS p SET title = $1 WHERE p.body = $2", [("TDB201", "no such column: p.body")]),
        ("DELETE FROM posts WHERE id IN (SELECT id FROM users WHERE email = $1)", []),
        (
            "DELETE FROM posts USING users WHERE posts.user_id = users.id AND id = $1",
            [("TDB203", "ambiguous column name: id")],
        ),
        ("SELECT p.title FROM posts p JOIN users u ON u.id = p.user_id WHERE u.email = $1", []),
        ("SELECT title FROM missing", [("TDB201", "no such table: missing")]),
        ("CREATE TABLE x (id int)", []),
    ],
)
def test_query_shapes(resolver: Resolver, sql: str, expected: list[tuple[str, str]]) -> None:
    assert _problems(resolver, sql) == expected


def test_output_of_a_query(resolver: Resolver) -> None:
    assert resolver.output(sqlglot.parse_one("SELECT * FROM named", read="postgres")) == ("id", "name")
    assert resolver.output(sqlglot.parse_one("SELECT nope FROM users", read="postgres")) is None
    assert resolver.output(sqlglot.parse_one("DELETE FROM users", read="postgres")) is None
