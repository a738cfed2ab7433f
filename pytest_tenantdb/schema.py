"""Schema and SchemaDiff: the one model of "what the database looks like" the project shares.

``Schema.from_database`` introspects a live SQLite file (templates, tenants, snapshots). The
seeder, the fleet's drift checks, the property checks and the static checker all consume this
model. Pragmas give columns, keys and indexes; what only the SQL text says (CHECK, COLLATE,
``WITHOUT ROWID``, ``STRICT``, partial indexes) is read with sqlglot in :mod:`.sqltext`.

``SchemaDiff`` compares with SQLite's own semantics: what SQLite treats alike (``VARCHAR(30)``
and ``VARCHAR(150)``, ``ASC`` and no order, foreign keys listed in another order) is not a
difference; column order is a difference of its own kind, reported apart (see ``strict``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_tenantdb import database
from pytest_tenantdb.sqltext import (
    ColumnCheck,
    affinity,
    as_written,
    check_conditions,
    index_expressions,
    index_where,
    merged,
    table_clauses,
)

__all__ = ["Column", "ColumnCheck", "ForeignKey", "Index", "Schema", "SchemaDiff", "Table", "Trigger", "View"]


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

    @property
    def affinity(self) -> str:
        """What SQLite does with the declared type: INTEGER, TEXT, BLOB, REAL or NUMERIC."""
        return affinity(self.type)


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of the table reference ``ref_columns`` of ``ref_table``."""

    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str | None, ...]
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"

    @property
    def target(self) -> tuple[tuple[str, ...], str, tuple[str | None, ...]]:
        """What the key links, without its actions (lower case): the same link with another
        ON DELETE is a changed action, not a new constraint."""
        return (
            tuple(c.lower() for c in self.columns),
            self.ref_table.lower(),
            tuple(c.lower() if c else None for c in self.ref_columns),
        )

    def __str__(self) -> str:
        refs = ", ".join(c for c in self.ref_columns if c)
        text = f"({', '.join(self.columns)})->{self.ref_table}" + (f"({refs})" if refs else "")
        for what, action in (("DELETE", self.on_delete), ("UPDATE", self.on_update)):
            if action.upper() != "NO ACTION":
                text += f" ON {what} {action}"
        return text


@dataclass(frozen=True)
class Index:
    """An index; ``shape`` is what it does, whatever its name or spelling."""

    name: str
    table: str
    columns: tuple[str | None, ...]  # None: an expression (see ``expressions``)
    unique: bool
    sql: str | None
    desc: tuple[bool, ...] = ()
    collations: tuple[str, ...] = ()
    where: str | None = None
    expressions: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """Each key column (or expression) with its order and collation, ``ASC``/``BINARY`` left
        out as SQLite's defaults; names in lower case, as SQLite compares them."""
        return self._keys(written=False)

    def _keys(self, *, written: bool) -> tuple[str, ...]:
        keys = []
        for n, column in enumerate(self.columns):
            if column:
                key = column if written else column.lower()
            else:
                key = self.expressions[n] if n < len(self.expressions) else "?"
                key = as_written(key, self.sql) if written else key
            if n < len(self.desc) and self.desc[n]:
                key += " DESC"
            if n < len(self.collations) and self.collations[n].upper() != "BINARY":
                key += f" COLLATE {self.collations[n].upper()}"
            keys.append(key)
        return tuple(keys)

    @property
    def shape(self) -> tuple[str, tuple[str, ...], bool, str | None]:
        return (self.table.lower(), self.keys, self.unique, self.where)

    def __str__(self) -> str:
        """What the index does, its names spelled as written (``UNIQUE ON Users (Email)``)."""
        text = ("UNIQUE " if self.unique else "") + f"ON {self.table} ({', '.join(self._keys(written=True))})"
        return text + (f" WHERE {as_written(self.where, self.sql)}" if self.where else "")


@dataclass(frozen=True)
class View:
    name: str
    sql: str


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    sql: str


@dataclass(frozen=True)
class Table:
    """A table. ``kind`` is ``table``, ``virtual`` (FTS5, R*Tree, ...) or ``shadow`` (the tables a
    virtual table keeps its index in, named in ``shadow_of``): those hold derived data, which the
    seeder does not draw and ``data_kept`` does not compare."""

    name: str
    columns: tuple[Column, ...]
    sql: str
    foreign_keys: tuple[ForeignKey, ...] = ()
    unique_sets: tuple[tuple[str, ...], ...] = ()
    checks: tuple[str, ...] = ()
    without_rowid: bool = False
    strict: bool = False
    kind: str = "table"
    shadow_of: str | None = None

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name.lower() == name.lower():
                return column
        raise KeyError(f"table {self.name} has no column {name}")

    @property
    def holds_data(self) -> bool:
        """Rows of its own (not a virtual table's index or a view onto another table)."""
        return self.kind == "table"

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

    def written(self, check: str) -> str:
        """One of ``checks`` (normalised, lower case) as the CREATE TABLE spells it, for messages."""
        return as_written(check, self.sql)

    def column_checks(self) -> dict[str, ColumnCheck]:
        """The simple CHECKs of each column, merged (range bounds, IN list, max length)."""
        return merged([c for text in self.checks for c in check_conditions(text)])


@dataclass(frozen=True)
class Schema:
    """Tables, indexes, views and triggers of one database (internal ``sqlite_`` objects left out)."""

    tables: dict[str, Table] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)

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
        kinds = (
            _table_kinds(conn) if any(r[0] == "table" and r[3] and _is_virtual(r[3]) for r in rows) else {}
        )
        virtual = sorted((n for n, k in kinds.items() if k == "virtual"), key=len, reverse=True)
        tables: dict[str, Table] = {}
        indexes: dict[str, Index] = {}
        views: dict[str, View] = {}
        triggers: dict[str, Trigger] = {}
        for kind, name, table_name, sql in rows:
            if name in ignore or table_name in ignore:
                continue
            if kind == "table":
                old = previous.tables.get(name) if previous else None
                if old is not None and old.sql == (sql or ""):
                    tables[name] = old
                    continue
                table_kind = kinds.get(name, "table")
                owner = next((v for v in virtual if name.startswith(v + "_")), None)
                tables[name] = _table(
                    conn, name, sql or "", table_kind, owner if table_kind == "shadow" else None
                )
            elif kind == "index" and sql:
                old_index = previous.indexes.get(name) if previous else None
                if old_index is not None and old_index.sql == sql and old_index.table == table_name:
                    indexes[name] = old_index
                else:
                    indexes[name] = _index(conn, name, table_name, sql)
            elif kind == "view":
                views[name] = View(name, sql)
            elif kind == "trigger":
                triggers[name] = Trigger(name, table_name, sql)
        return cls(tables, indexes, views, triggers)

    def insert_order(self) -> list[str]:
        """Tables that hold rows of their own (no virtual tables and their shadow tables), ordered
        so that every referenced table comes before the ones referencing it."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if (
                name in order
                or name in visiting
                or name not in self.tables
                or not self.tables[name].holds_data
            ):
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


def _is_virtual(sql: str) -> bool:
    words = sql.split(None, 2)
    return len(words) > 1 and words[1].upper() == "VIRTUAL"


def _table_kinds(conn: sqlite3.Connection) -> dict[str, str]:
    """``table``, ``virtual`` or ``shadow`` for each table (``PRAGMA table_list``, SQLite 3.37+;
    on older SQLite, shadow tables are told by their names)."""
    try:
        return {r[1]: r[2] for r in conn.execute("PRAGMA main.table_list")}
    except sqlite3.Error:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
        virtual = [n for n, sql in rows if sql and _is_virtual(sql)]
        kinds = {n: "virtual" for n in virtual}
        for name, _ in rows:
            if name not in kinds and any(name.startswith(v + "_") for v in virtual):
                kinds[name] = "shadow"
        return kinds


@dataclass(frozen=True)
class Change:
    """One difference between two schemas: ``kind`` (added/dropped/changed), object and detail
    (``before -> after``). ``cosmetic``: SQLite behaves the same; only code that reads declared
    types or relies on column positions (``SELECT *``, ``INSERT`` without a column list) sees it."""

    kind: str
    object: str
    detail: str = ""
    cosmetic: bool = False

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
            if old.tables[name] is not new.tables[name]:
                changes.extend(_diff_table(old.tables[name], new.tables[name]))
        _diff_names(
            changes,
            "index",
            {k: str(v) for k, v in old.indexes.items()},
            {k: str(v) for k, v in new.indexes.items()},
        )
        _diff_names(changes, "view", _normed(old.views), _normed(new.views))
        _diff_names(changes, "trigger", _normed(old.triggers), _normed(new.triggers))
        return cls(tuple(changes))

    @property
    def significant(self) -> SchemaDiff:
        """The changes SQLite itself would behave differently on."""
        return SchemaDiff(tuple(c for c in self.changes if not c.cosmetic))

    @property
    def cosmetic(self) -> SchemaDiff:
        return SchemaDiff(tuple(c for c in self.changes if c.cosmetic))

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __str__(self) -> str:
        return "\n".join(str(c) for c in self.changes) or "no schema changes"


def _norm(sql: str | None) -> str:
    return " ".join((sql or "").replace('"', "").replace("`", "").split()).lower()


def _normed(objects: Mapping[str, View | Trigger]) -> dict[str, str]:
    return {k: _norm(v.sql) for k, v in objects.items()}


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
                changes.append(
                    Change(
                        "changed", f"{what} {name}", f"{_short(str(old[name]))}  ->  {_short(str(new[name]))}"
                    )
                )


def _listed(items: object) -> str:
    values = list(items)  # type: ignore[call-overload]
    return ", ".join(str(v) for v in values) if values else "(none)"


def _diff_table(old: Table, new: Table) -> list[Change]:
    changes: list[Change] = []
    old_cols = {c.name.lower(): c for c in old.columns}
    new_cols = {c.name.lower(): c for c in new.columns}
    for name in sorted(old_cols.keys() - new_cols.keys()):
        changes.append(Change("dropped", f"column {old.name}.{old_cols[name].name}"))
    for name in sorted(new_cols.keys() - old_cols.keys()):
        changes.append(Change("added", f"column {old.name}.{new_cols[name].name}"))
    strict = old.strict or new.strict
    for name in sorted(old_cols.keys() & new_cols.keys()):
        a, b = old_cols[name], new_cols[name]
        subject = f"column {old.name}.{b.name}"
        if a.type.upper() != b.type.upper():
            cosmetic = not strict and a.affinity == b.affinity
            changes.append(Change("changed", subject, f"type {a.type!r} -> {b.type!r}", cosmetic))
        for attr in ("notnull", "default", "pk"):
            if getattr(a, attr) != getattr(b, attr):
                changes.append(
                    Change("changed", subject, f"{attr} {getattr(a, attr)!r} -> {getattr(b, attr)!r}")
                )
        if (a.collation or "BINARY") != (b.collation or "BINARY"):
            changes.append(
                Change(
                    "changed", subject, f"collation {a.collation or 'BINARY'} -> {b.collation or 'BINARY'}"
                )
            )
    order_a = [c.name for c in old.columns if c.name.lower() in new_cols]
    order_b = [c.name for c in new.columns if c.name.lower() in old_cols]
    if [n.lower() for n in order_a] != [n.lower() for n in order_b]:
        changes.append(
            Change(
                "changed",
                f"table {old.name}",
                f"column order ({', '.join(order_a)}) -> ({', '.join(order_b)})",
                cosmetic=True,
            )
        )
    fks_a, fks_b = sorted(str(f) for f in old.foreign_keys), sorted(str(f) for f in new.foreign_keys)
    if [f.lower() for f in fks_a] != [f.lower() for f in fks_b]:
        changes.append(
            Change("changed", f"table {old.name}", f"foreign keys {_listed(fks_a)}  ->  {_listed(fks_b)}")
        )
    uniques_a = sorted(tuple(c.lower() for c in u) for u in old.unique_sets)
    uniques_b = sorted(tuple(c.lower() for c in u) for u in new.unique_sets)
    if uniques_a != uniques_b:
        listed = [_listed(f"({', '.join(u)})" for u in x) for x in (uniques_a, uniques_b)]
        changes.append(Change("changed", f"table {old.name}", f"unique {listed[0]}  ->  {listed[1]}"))
    for attr in ("without_rowid", "strict", "kind"):
        if getattr(old, attr) != getattr(new, attr):
            changes.append(
                Change(
                    "changed",
                    f"table {old.name}",
                    f"{attr.replace('_', ' ')} {getattr(old, attr)!r} -> {getattr(new, attr)!r}",
                )
            )
    if sorted(old.checks) != sorted(new.checks):
        before = _listed(f"CHECK ({old.written(c)})" for c in old.checks)
        after = _listed(f"CHECK ({new.written(c)})" for c in new.checks)
        changes.append(Change("changed", f"table {old.name}", f"checks {before}  ->  {after}"))
    return changes


def _table(
    conn: sqlite3.Connection, name: str, sql: str, kind: str = "table", shadow_of: str | None = None
) -> Table:
    quoted = name.replace('"', '""')
    clauses = table_clauses(sql) if kind == "table" else None
    collations = clauses.collations if clauses else {}
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
    fks: dict[int, list[tuple[str, str, str | None, str, str]]] = {}
    for row in conn.execute(f'PRAGMA foreign_key_list("{quoted}")'):
        fks.setdefault(row[0], []).append((row[3], row[2], row[4], row[6], row[5]))
    foreign_keys = tuple(
        ForeignKey(
            tuple(p[0] for p in parts), parts[0][1], tuple(p[2] for p in parts), parts[0][3], parts[0][4]
        )
        for _, parts in sorted(fks.items())
    )
    uniques = []
    for row in conn.execute(f'PRAGMA index_list("{quoted}")'):
        if row[2] and row[3] in ("u", "pk") and not row[4]:
            index = row[1].replace('"', '""')
            cols = tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{index}")'))
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
        clauses.checks if clauses else (),
        without_rowid=bool(clauses and clauses.without_rowid),
        strict=bool(clauses and clauses.strict),
        kind=kind,
        shadow_of=shadow_of,
    )


def _index(conn: sqlite3.Connection, name: str, table: str, sql: str) -> Index:
    quoted = name.replace('"', '""')
    keys = [r for r in conn.execute(f'PRAGMA index_xinfo("{quoted}")') if r[5]]
    unique = bool(
        conn.execute(
            'SELECT 1 FROM pragma_index_list(?) WHERE name = ? AND "unique"', (table, name)
        ).fetchone()
    )
    columns = tuple(r[2] for r in keys)
    return Index(
        name,
        table,
        columns,
        unique,
        sql,
        desc=tuple(bool(r[3]) for r in keys),
        collations=tuple(str(r[4] or "BINARY") for r in keys),
        where=index_where(sql) if " where " in " ".join(sql.lower().split()) else None,
        expressions=index_expressions(sql) if None in columns else (),
    )
