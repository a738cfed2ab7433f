"""Schema and SchemaDiff: the one model of "what the database looks like" the project shares.

``Schema.from_database`` introspects a live SQLite file (templates, tenants, snapshots). The
seeder, the fleet's drift checks and (later) the static checker all consume this model.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_tenantdb import database

_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_IDENT = r'["`\[]?(\w+)["`\]]?'
_IN_LIST = re.compile(rf"^{_IDENT}\s+IN\s*\((.*)\)$", re.IGNORECASE | re.DOTALL)
_BETWEEN = re.compile(rf"^{_IDENT}\s+BETWEEN\s+({_NUMBER})\s+AND\s+({_NUMBER})$", re.IGNORECASE)
_COMPARE = re.compile(rf"^{_IDENT}\s*(>=|<=|>|<)\s*({_NUMBER})$")
_LENGTH = re.compile(rf"^length\s*\(\s*{_IDENT}\s*\)\s*(<=|<)\s*(\d+)$", re.IGNORECASE)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
_COLLATE = re.compile(r"\bCOLLATE\s+(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class Column:
    """A column as SQLite reports it (declared type, NOT NULL, default, primary key position)."""

    name: str
    type: str
    notnull: bool
    default: str | None
    pk: int
    collation: str | None = None
    hidden: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of the table reference ``ref_columns`` of ``ref_table``."""

    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str | None, ...]
    on_delete: str = "NO ACTION"


@dataclass(frozen=True)
class ColumnCheck:
    """A simple CHECK the seeder can honour: a numeric range, a max length or an IN list."""

    column: str
    low: float | None = None
    high: float | None = None
    choices: tuple[object, ...] | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    columns: tuple[str | None, ...]
    unique: bool
    sql: str | None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    sql: str
    foreign_keys: tuple[ForeignKey, ...] = ()
    unique_sets: tuple[tuple[str, ...], ...] = ()
    checks: tuple[str, ...] = ()
    without_rowid: bool = False

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name.lower() == name.lower():
                return column
        raise KeyError(f"table {self.name} has no column {name}")

    @property
    def primary_key(self) -> tuple[str, ...]:
        return tuple(c.name for c in sorted(self.columns, key=lambda c: c.pk) if c.pk)

    @property
    def rowid_alias(self) -> str | None:
        """The ``INTEGER PRIMARY KEY`` column that is the rowid, if any."""
        pk = [c for c in self.columns if c.pk]
        if len(pk) == 1 and pk[0].type.upper() == "INTEGER" and not self.without_rowid:
            return pk[0].name
        return None

    def column_checks(self) -> dict[str, ColumnCheck]:
        """The simple CHECKs of each column, merged (range bounds, IN list, max length)."""
        found: dict[str, ColumnCheck] = {}
        for text in self.checks:
            for check in _parse_check(text):
                key = check.column.lower()
                old = found.get(key)
                if old is None:
                    found[key] = check
                else:
                    found[key] = ColumnCheck(
                        old.column,
                        check.low if check.low is not None else old.low,
                        check.high if check.high is not None else old.high,
                        check.choices or old.choices,
                        check.max_length or old.max_length,
                    )
        return found


@dataclass(frozen=True)
class Schema:
    """Tables, indexes, views and triggers of one database (internal ``sqlite_`` objects left out)."""

    tables: dict[str, Table] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)
    triggers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_path(cls, path: Path) -> Schema:
        conn = database.connect(path)
        try:
            return cls.from_connection(conn)
        finally:
            conn.close()

    @classmethod
    def from_connection(
        cls, conn: sqlite3.Connection, ignore: tuple[str, ...] = (), previous: Schema | None = None
    ) -> Schema:
        """Introspect ``conn``. Tables and indexes whose SQL text equals ``previous``'s are reused:
        introspecting one version after another then costs only what changed."""
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ).fetchall()
        tables: dict[str, Table] = {}
        indexes: dict[str, Index] = {}
        views: dict[str, str] = {}
        triggers: dict[str, str] = {}
        for kind, name, table_name, sql in rows:
            if name in ignore or table_name in ignore:
                continue
            if kind == "table":
                old = previous.tables.get(name) if previous else None
                tables[name] = (
                    old if old is not None and old.sql == (sql or "") else _table(conn, name, sql or "")
                )
            elif kind == "index" and sql:
                old_index = previous.indexes.get(name) if previous else None
                if old_index is not None and old_index.sql == sql and old_index.table == table_name:
                    indexes[name] = old_index
                else:
                    indexes[name] = _index(conn, name, table_name, sql)
            elif kind == "view":
                views[name] = sql
            elif kind == "trigger":
                triggers[name] = sql
        return cls(tables, indexes, views, triggers)

    def insert_order(self) -> list[str]:
        """Tables ordered so that every referenced table comes before the ones referencing it."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order or name in visiting or name not in self.tables:
                return
            visiting.add(name)
            for fk in self.tables[name].foreign_keys:
                if fk.ref_table != name:
                    visit(fk.ref_table)
            visiting.discard(name)
            order.append(name)

        for name in sorted(self.tables):
            visit(name)
        return order


@dataclass(frozen=True)
class Change:
    """One difference between two schemas: ``kind`` (added/dropped/changed), object and detail."""

    kind: str
    object: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.object}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class SchemaDiff:
    """What changed from ``old`` to ``new``; empty when the two schemas are the same."""

    changes: tuple[Change, ...]

    @classmethod
    def between(cls, old: Schema, new: Schema) -> SchemaDiff:
        changes: list[Change] = []
        _diff_names(changes, "table", old.tables, new.tables)
        for name in sorted(old.tables.keys() & new.tables.keys()):
            changes.extend(_diff_table(old.tables[name], new.tables[name]))
        old_idx = {k: (v.table, v.columns, v.unique, _norm(v.sql)) for k, v in old.indexes.items()}
        new_idx = {k: (v.table, v.columns, v.unique, _norm(v.sql)) for k, v in new.indexes.items()}
        _diff_names(changes, "index", old_idx, new_idx)
        _diff_names(changes, "view", _normed(old.views), _normed(new.views))
        _diff_names(changes, "trigger", _normed(old.triggers), _normed(new.triggers))
        return cls(tuple(changes))

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __str__(self) -> str:
        return "\n".join(str(c) for c in self.changes) or "no schema changes"


def _norm(sql: str | None) -> str:
    return " ".join((sql or "").replace('"', "").split()).lower()


def _normed(objects: dict[str, str]) -> dict[str, str]:
    return {k: _norm(v) for k, v in objects.items()}


def _diff_names(
    changes: list[Change], what: str, old: Mapping[str, object], new: Mapping[str, object]
) -> None:
    for name in sorted(old.keys() - new.keys()):
        changes.append(Change("dropped", f"{what} {name}"))
    for name in sorted(new.keys() - old.keys()):
        changes.append(Change("added", f"{what} {name}"))
    if what != "table":
        for name in sorted(old.keys() & new.keys()):
            if old[name] != new[name]:
                changes.append(Change("changed", f"{what} {name}"))


def _diff_table(old: Table, new: Table) -> list[Change]:
    changes: list[Change] = []
    old_cols = {c.name: c for c in old.columns}
    new_cols = {c.name: c for c in new.columns}
    for name in old_cols.keys() - new_cols.keys():
        changes.append(Change("dropped", f"column {old.name}.{name}"))
    for name in new_cols.keys() - old_cols.keys():
        changes.append(Change("added", f"column {old.name}.{name}"))
    for name in sorted(old_cols.keys() & new_cols.keys()):
        a, b = old_cols[name], new_cols[name]
        for attr in ("type", "notnull", "default", "pk", "collation"):
            if getattr(a, attr) != getattr(b, attr):
                changes.append(
                    Change(
                        "changed",
                        f"column {old.name}.{name}",
                        f"{attr} {getattr(a, attr)!r} -> {getattr(b, attr)!r}",
                    )
                )
    if [c.name for c in old.columns if c.name in new_cols] != [
        c.name for c in new.columns if c.name in old_cols
    ]:
        changes.append(Change("changed", f"table {old.name}", "column order"))
    for attr in ("foreign_keys", "unique_sets", "without_rowid"):
        if getattr(old, attr) != getattr(new, attr):
            changes.append(Change("changed", f"table {old.name}", attr.replace("_", " ")))
    if sorted(_norm(c) for c in old.checks) != sorted(_norm(c) for c in new.checks):
        changes.append(Change("changed", f"table {old.name}", "checks"))
    return changes


def _table(conn: sqlite3.Connection, name: str, sql: str) -> Table:
    quoted = name.replace('"', '""')
    collations = _column_collations(sql)
    columns = tuple(
        Column(
            row[1],
            row[2] or "",
            bool(row[3]),
            row[4],
            int(row[5]),
            collations.get(row[1].lower()),
            hidden=bool(row[6]),
        )
        for row in conn.execute(f'PRAGMA table_xinfo("{quoted}")')
    )
    fks: dict[int, list[tuple[str, str, str | None, str]]] = {}
    for row in conn.execute(f'PRAGMA foreign_key_list("{quoted}")'):
        fks.setdefault(row[0], []).append((row[3], row[2], row[4], row[6]))
    foreign_keys = tuple(
        ForeignKey(tuple(p[0] for p in parts), parts[0][1], tuple(p[2] for p in parts), parts[0][3])
        for _, parts in sorted(fks.items())
    )
    uniques = []
    for row in conn.execute(f'PRAGMA index_list("{quoted}")'):
        if row[2] and row[3] in ("u", "pk") and not row[4]:
            cols = tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{row[1]}")'))
            if None not in cols:
                uniques.append(cols)
    pk = tuple(c.name for c in sorted(columns, key=lambda c: c.pk) if c.pk)
    if pk and pk not in uniques:
        uniques.append(pk)
    return Table(
        name,
        columns,
        sql,
        foreign_keys,
        tuple(sorted(uniques)),
        tuple(_checks(sql)),
        without_rowid=bool(re.search(r"\)\s*WITHOUT\s+ROWID\s*;?\s*$", sql, re.IGNORECASE)),
    )


def _index(conn: sqlite3.Connection, name: str, table: str, sql: str) -> Index:
    quoted = name.replace('"', '""')
    cols = tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{quoted}")'))
    unique = bool(re.match(r"\s*CREATE\s+UNIQUE\b", sql, re.IGNORECASE))
    return Index(name, table, cols, unique, sql)


def _scan(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """Each character outside quotes with the parenthesis depth after it (SQL-ish scanning)."""
    depth = 0
    quote: str | None = None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            quote = None if ch == quote else quote
            continue
        if ch in "'\"`":
            quote = ch
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        yield i, ch, depth


def _balanced(sql: str, start: int) -> tuple[str, int]:
    """The text inside the parenthesis opening at ``start`` and the index after its close."""
    for i, ch, depth in _scan(sql, start):
        if ch == ")" and depth == 0:
            return sql[start + 1 : i], i + 1
    return sql[start + 1 :], len(sql)


def _checks(sql: str) -> list[str]:
    found = []
    for match in re.finditer(r"\bCHECK\s*\(", sql, re.IGNORECASE):
        body, _ = _balanced(sql, match.end() - 1)
        found.append(body.strip())
    return found


def _column_collations(sql: str) -> dict[str, str]:
    start = sql.find("(")
    if start < 0:
        return {}
    body, _ = _balanced(sql, start)
    result: dict[str, str] = {}
    for part in _split_top_level(body):
        words = part.strip().split()
        match = _COLLATE.search(part)
        if (
            words
            and match
            and words[0].upper() not in {"PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT"}
        ):
            result[words[0].strip('"`[]').lower()] = match[1].upper()
    return result


def _split_top_level(body: str) -> list[str]:
    """``body`` split at commas that are outside parentheses and quotes."""
    cuts = [i for i, ch, depth in _scan(body) if ch == "," and depth == 0]
    edges = [-1, *cuts, len(body)]
    return [body[edges[n] + 1 : edges[n + 1]] for n in range(len(edges) - 1)]


def _literal(text: str) -> object:
    text = text.strip()
    if text[:1] in "'\"" and text[-1:] == text[:1]:
        return text[1:-1].replace(text[0] * 2, text[0])
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_check(text: str) -> list[ColumnCheck]:
    """The simple per-column conditions of a CHECK expression (ranges, IN lists, max length)."""
    return _parse_check(text)


def _parse_check(text: str) -> list[ColumnCheck]:
    text = " ".join(text.split())
    if (m := _IN_LIST.match(text)) is not None:
        try:
            return [ColumnCheck(m[1], choices=tuple(_literal(p) for p in _split_top_level(m[2])))]
        except ValueError:
            return []
    if (m := _BETWEEN.match(text)) is not None:
        return [ColumnCheck(m[1], low=float(m[2]), high=float(m[3]))]
    found = []
    for part in _AND.split(text):
        part = part.strip().strip("()").strip()
        if (m := _COMPARE.match(part)) is not None:
            value = float(m[3])
            step = 1.0 if m[2] in ("<", ">") else 0.0
            if m[2].startswith(">"):
                found.append(ColumnCheck(m[1], low=value + step))
            else:
                found.append(ColumnCheck(m[1], high=value - step))
        elif (m := _LENGTH.match(part)) is not None:
            found.append(ColumnCheck(m[1], max_length=int(m[3]) - (1 if m[2] == "<" else 0)))
    return found
