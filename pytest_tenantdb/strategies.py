"""Hypothesis strategies for tenant data: rows a real tenant could hold at a schema version.

Everything is derived from a :class:`~pytest_tenantdb.schema.Schema`: declared types, NOT NULL,
defaults, UNIQUE sets (case-insensitively under ``COLLATE NOCASE``), simple CHECKs and foreign
keys. On purpose the values include the edges that break migrations in production: NULL where
allowed, empty strings, emoji, right-to-left text, NUL inside text, 64-bit integer bounds,
floats, long text, blobs, boundary dates and near-duplicates. Lists shrink towards few rows and
simple values, so a failure ends as a minimal failing tenant.

    from hypothesis import given
    from pytest_tenantdb import strategies as tst

    @given(tst.tenant_data(schema))
    def test_step(data): ...
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from pytest_tenantdb.errors import ConfigError, SeedingError
from pytest_tenantdb.fleet.seeding import value_kind
from pytest_tenantdb.schema import Column, ColumnCheck, Schema, Table
from pytest_tenantdb.versioning import TABLES

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EDGE_TEXT = (
    "",
    " ",
    "a\x00b",
    "🎉🚀👩‍👩‍👧",
    "שלום עולם",
    "مرحبا",
    "O'Brien",
    'say "hi"',
    "NULL",
    "  padded  ",
    "Ä",
    "ä",
    "x" * 3000,
)
EDGE_DATETIMES = (
    "1970-01-01 00:00:00",
    "1999-12-31 23:59:59",
    "2000-02-29 12:00:00",
    "2038-01-19 03:14:08",
    "9999-12-31 23:59:59",
    "0001-01-01 00:00:00",
)
EDGE_INTS = (0, 1, -1, INT64_MAX, INT64_MIN, 2**31 - 1, -(2**31))
ROWID_STARTS = (1, 1000, 2**31 - 4, INT64_MAX - 64)


class _Default:
    """Marks a column left out of the INSERT so that its DEFAULT applies."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()


@dataclass
class TenantData:
    """Rows per table for one tenant at one schema version, as drawn by hypothesis."""

    schema: Schema
    rows: dict[str, list[dict[str, object]]] = field(default_factory=dict)

    def apply(self, conn: sqlite3.Connection) -> None:
        """Insert the rows (``INSERT OR IGNORE``: a row breaking a constraint not modelled is dropped)."""
        for table, rows in self.rows.items():
            quoted = table.replace('"', '""')
            for names, values in _batches(rows):
                if names:
                    cols = ", ".join(f'"{c}"' for c in names)
                    marks = ", ".join("?" * len(names))
                    conn.executemany(f'INSERT OR IGNORE INTO "{quoted}" ({cols}) VALUES ({marks})', values)
                else:
                    for _ in values:
                        conn.execute(f'INSERT OR IGNORE INTO "{quoted}" DEFAULT VALUES')

    def __repr__(self) -> str:
        shown = {t: r for t, r in self.rows.items() if r}
        return f"TenantData({shown!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis shows a falsifying example: the rows, not the whole schema."""
        printer.text(repr(self))


def _batches(rows: list[dict[str, object]]) -> list[tuple[tuple[str, ...], list[list[object]]]]:
    """Consecutive rows with the same columns (DEFAULT ones left out), kept in order."""
    batches: list[tuple[tuple[str, ...], list[list[object]]]] = []
    for row in rows:
        names = tuple(c for c, v in row.items() if v is not DEFAULT)
        if not batches or batches[-1][0] != names:
            batches.append((names, []))
        batches[-1][1].append([row[c] for c in names])
    return batches


def _affinity(declared: str) -> str:
    """SQLite's type affinity rules (https://sqlite.org/datatype3.html#type_affinity)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(t in upper for t in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in upper or not upper:
        return "BLOB" if upper else "ANY"
    if any(t in upper for t in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def column_values(column: Column, check: ColumnCheck | None = None) -> st.SearchStrategy[object]:
    """Values a column may hold, edges included (NULL is added by :func:`rows`)."""
    if check is not None and check.choices:
        return st.sampled_from(check.choices)
    kind = value_kind(column)
    affinity = _affinity(column.type)
    low = check.low if check and check.low is not None else None
    high = check.high if check and check.high is not None else None
    if affinity == "INTEGER" or (kind in ("bool", "small_int") and affinity in ("NUMERIC", "ANY")):
        lo = INT64_MIN if low is None else math.ceil(low)
        hi = INT64_MAX if high is None else math.floor(high)
        if kind == "bool" and low is None and high is None:
            lo, hi = 0, 1
        edges = [v for v in EDGE_INTS if lo <= v <= hi]
        base = st.integers(lo, max(lo, hi))
        return st.one_of(st.sampled_from(edges), base) if edges else base
    if affinity == "REAL" or kind == "money":
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False, width=64)
    if affinity == "BLOB":
        return st.one_of(st.sampled_from([b"", b"\x00" * 8]), st.binary(max_size=48))
    if kind in ("datetime", "date"):
        moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
        fmt: Callable[[datetime], str] = (
            (lambda d: d.date().isoformat())
            if kind == "date"
            else (lambda d: d.isoformat(sep=" ", timespec="seconds"))
        )
        edges_dt = [e[:10] for e in EDGE_DATETIMES] if kind == "date" else list(EDGE_DATETIMES)
        return st.one_of(st.sampled_from(edges_dt), moments.map(fmt))
    text = st.one_of(
        st.sampled_from(EDGE_TEXT),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=24),
    )
    if check is not None and check.max_length is not None:
        limit = check.max_length
        text = text.map(lambda s: s[:limit])
    if affinity == "ANY":
        return st.one_of(text, st.integers(INT64_MIN, INT64_MAX), st.floats(allow_nan=False))
    if affinity == "NUMERIC":
        return st.one_of(st.integers(INT64_MIN, INT64_MAX), st.floats(allow_nan=False, allow_infinity=False))
    return text


def _key(table: Table, columns: tuple[str, ...]) -> Callable[[dict[str, object]], object]:
    nocase = {c.name for c in table.columns if (c.collation or "") == "NOCASE"}

    def key(row: dict[str, object]) -> object:
        values = []
        for name in columns:
            value = row.get(name)
            if value is None:
                return object()  # NULLs never collide in a UNIQUE constraint
            if isinstance(value, str) and name in nocase:
                value = value.lower()
            if isinstance(value, bool | int | float):
                value = float(value) if not isinstance(value, int) or abs(value) < 2**53 else value
            values.append(value)
        return tuple(values)

    return key


@dataclass(frozen=True)
class _Ref:
    """A drawn reference to the n-th row of a parent table, resolved once the parent is drawn."""

    n: int


def _rows_strategy(
    table: Table,
    max_rows: int,
    overrides: Mapping[str, st.SearchStrategy[object]],
    unique_indexes: tuple[tuple[str, ...], ...] = (),
) -> st.SearchStrategy[list[dict[str, object]]]:
    """Rows of ``table`` with foreign keys as :class:`_Ref`; built once, drawn many times."""
    columns = [c for c in table.columns if not c.hidden]
    checks = table.column_checks()
    _satisfiable(table, checks)
    fk_of = {fk.columns[0]: fk for fk in table.foreign_keys if len(fk.columns) == 1}
    rowid = table.rowid_alias
    fields: dict[str, st.SearchStrategy[object]] = {}
    for column in columns:
        if column.name == rowid:
            continue
        override = overrides.get(f"{table.name}.{column.name}")
        override = override if override is not None else overrides.get(column.name)
        if override is not None:
            fields[column.name] = override
            continue
        if column.name in fk_of:
            values: st.SearchStrategy[object] = st.integers(0, max(0, max_rows - 1)).map(_Ref)
        else:
            values = column_values(column, checks.get(column.name.lower()))
        if not column.notnull and not column.pk:
            values = st.one_of(st.none(), values)
        if column.default is not None and not any(column.name in u for u in table.unique_sets):
            values = st.one_of(values, st.just(DEFAULT))
        fields[column.name] = values
    unique_sets = [u for u in (*table.unique_sets, *unique_indexes) if u != (rowid,)]
    return st.lists(
        st.fixed_dictionaries(fields),
        max_size=max_rows,
        unique_by=tuple(_key(table, u) for u in unique_sets) or None,
    )


def _satisfiable(table: Table, checks: Mapping[str, ColumnCheck]) -> None:
    """A table whose CHECKs contradict each other can hold no row: every drawn tenant would have it
    empty and the checks would pass on nothing, so say which table and constraint instead."""
    for check in checks.values():
        empty_range = check.low is not None and check.high is not None and check.low > check.high
        if empty_range or (check.max_length is not None and check.max_length < 0):
            column = table.column(check.column)
            if empty_range and not column.notnull:
                continue  # NULL still satisfies it
            wanted = f"between {check.low:g} and {check.high:g}" if empty_range else "shorter than 0"
            raise SeedingError(
                f"table {table.name}: no value of {column.name} satisfies its CHECKs ({wanted}): "
                f"{'; '.join(table.checks)}. No row can be drawn for it; fix the constraint."
            )


def _resolve(
    table: Table,
    drawn: list[dict[str, object]],
    start: int,
    parent_keys: Mapping[str, list[object]],
    unique_indexes: tuple[tuple[str, ...], ...] = (),
) -> list[dict[str, object]]:
    """Give rowids, turn references into real parent keys, drop rows whose parent is missing
    and rows that became duplicates once their references were resolved."""
    keyers = [_key(table, u) for u in (*table.unique_sets, *unique_indexes)]
    seen: set[object] = set()
    columns = [c for c in table.columns if not c.hidden]
    rowid = table.rowid_alias
    pk = table.primary_key
    fk_of = {fk.columns[0]: fk for fk in table.foreign_keys if len(fk.columns) == 1}
    notnull = {c.name for c in columns if c.notnull}
    own: list[object] = []
    result = []
    for n, row in enumerate(drawn):
        if rowid is not None:
            row[rowid] = start + n
        keep = True
        for name, fk in fk_of.items():
            ref = row.get(name)
            if not isinstance(ref, _Ref):
                continue
            keys = (
                own
                if fk.ref_table.lower() == table.name.lower()
                else parent_keys.get(fk.ref_table.lower(), [])
            )
            if keys:
                row[name] = keys[ref.n % len(keys)]
            elif name in notnull:
                keep = False
            else:
                row[name] = None
        if not keep:
            continue
        keys_of_row = [(n, keyer(row)) for n, keyer in enumerate(keyers)]
        if any(k in seen for k in keys_of_row):
            continue
        seen.update(keys_of_row)
        result.append({c.name: row[c.name] for c in columns if c.name in row})
        if len(pk) == 1 and row.get(pk[0]) not in (None, DEFAULT):
            own.append(row[pk[0]])
    return result


def _unique_indexes(schema: Schema, table: str) -> tuple[tuple[str, ...], ...]:
    return tuple(
        tuple(str(c) for c in index.columns)
        for index in schema.indexes.values()
        if index.unique
        and index.table == table
        and None not in index.columns
        and " where " not in (index.sql or "").lower()
    )


def _with_parents(schema: Schema, tables: set[str]) -> set[str]:
    """``tables`` and every table their foreign keys reference, transitively (lower case)."""
    by_name = {name.lower(): table for name, table in schema.tables.items()}
    found, todo = set(tables), list(tables)
    while todo:
        table = by_name.get(todo.pop())
        for fk in table.foreign_keys if table is not None else ():
            parent = fk.ref_table.lower()
            if parent not in found:
                found.add(parent)
                todo.append(parent)
    return found


def tenant_data(
    schema: Schema,
    *,
    max_rows: int = 6,
    overrides: Mapping[str, st.SearchStrategy[object]] | None = None,
    skip_tables: tuple[str, ...] = TABLES,
    tables: Collection[str] | None = None,
) -> st.SearchStrategy[TenantData]:
    """A whole tenant's data valid for ``schema``; tables filled in foreign-key order.

    ``overrides`` maps ``"table.column"`` or ``"column"`` to a strategy of your own. ``tables``
    (any case) limits the rows to those tables and the tables they reference (at most two rows
    each: their keys are what matters), the others stay empty: drawing costs grow with the tables
    drawn, and a check of one migration step needs rows only where the step can reach.
    """
    if max_rows < 0:
        raise ConfigError(f"max_rows must be >= 0, got {max_rows}")
    order = [name for name in schema.insert_order() if name not in skip_tables]
    sizes = dict.fromkeys(order, max_rows)
    if tables is not None:
        focus = {t.lower() for t in tables}
        wanted = _with_parents(schema, focus)
        order = [name for name in order if name.lower() in wanted]
        # a table drawn only for its keys (its children reference it) needs few rows
        sizes = {name: max_rows if name.lower() in focus else min(max_rows, 2) for name in order}
    uniques = {name: _unique_indexes(schema, name) for name in order}  # once, not per example
    drawn = {
        name: _rows_strategy(schema.tables[name], sizes[name], overrides or {}, uniques[name])
        for name in order
    }

    @st.composite
    def draw_tenant(draw: st.DrawFn) -> TenantData:
        data = TenantData(schema)
        keys: dict[str, list[object]] = {}
        for name in order:
            table = schema.tables[name]
            start = draw(st.sampled_from(ROWID_STARTS)) if table.rowid_alias else 0
            rows = _resolve(table, draw(drawn[name]), start, keys, uniques[name])
            data.rows[name] = rows
            pk = table.primary_key
            if len(pk) == 1:
                keys[name.lower()] = [row[pk[0]] for row in rows if row.get(pk[0]) not in (None, DEFAULT)]
        return data

    return draw_tenant()


def rows(
    schema: Schema,
    table: str,
    *,
    max_rows: int = 6,
    overrides: Mapping[str, st.SearchStrategy[object]] | None = None,
) -> st.SearchStrategy[list[dict[str, object]]]:
    """Rows for one table of ``schema`` (its foreign keys point at no rows: NULL, or no row)."""
    if table not in schema.tables:
        raise ConfigError(f"schema has no table {table!r}; tables: {sorted(schema.tables)}")
    info = schema.tables[table]
    uniques = _unique_indexes(schema, table)
    strategy = _rows_strategy(info, max_rows, overrides or {}, uniques)
    return strategy.map(lambda drawn: _resolve(info, drawn, 1, {}, uniques))


def fleet_data(
    schemas: Mapping[int, Schema], *, max_tenants: int = 5, max_rows: int = 4
) -> st.SearchStrategy[list[tuple[int, TenantData]]]:
    """Tenants at mixed versions: ``[(version, TenantData), ...]`` drawn from ``schemas``."""
    if not schemas:
        raise ConfigError("fleet_data needs at least one schema version")
    versions = sorted(schemas)
    per_version = {v: tenant_data(schemas[v], max_rows=max_rows) for v in versions}  # built once

    @st.composite
    def one(draw: st.DrawFn) -> tuple[int, TenantData]:
        version = draw(st.sampled_from(versions))
        return version, draw(per_version[version])

    return st.lists(one(), min_size=1, max_size=max_tenants)


__all__ = ["DEFAULT", "TenantData", "column_values", "fleet_data", "rows", "tenant_data"]
