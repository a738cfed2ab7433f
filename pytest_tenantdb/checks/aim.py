"""Step-aware data: tenants drawn at the edge of what a step adds or tightens.

Data drawn valid for version v-1 rarely holds what makes step v fail: two emails that differ only
in case when the step adds a case-insensitive UNIQUE, a NULL where it adds NOT NULL, a value just
outside a new CHECK. The ``SchemaDiff`` of the step (its schemas before and after) names those
edges; :func:`aimed` draws a tenant as usual and then, for each edge, lets hypothesis decide
whether to push one row onto it (so it explores with and without each, and shrinks to the one that
matters). Rows that break a constraint the old schema already had are dropped on insert
(``INSERT OR IGNORE``), so an aimed tenant is still a tenant that can exist at v-1.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_tenantdb.schema import Column, Schema, Table
from pytest_tenantdb.sqltext import check_conditions, implied_by
from pytest_tenantdb.strategies import TenantData

if TYPE_CHECKING:
    from hypothesis import strategies as st

Row = dict[str, object]
_FOLD = re.compile(r"^(lower|upper)\((\w+)\)(?: collate \w+)?$")


@dataclass(frozen=True)
class Edge:
    """One thing step v adds or tightens on ``table``, and how to push a drawn row onto it."""

    kind: str  # duplicate | null | outside | affinity | orphan
    table: str
    columns: tuple[str, ...]
    values: tuple[object, ...] = ()  # candidate values (outside, affinity, orphan)
    folded: bool = False  # the new UNIQUE ignores case: case / space / normalisation variants

    def __str__(self) -> str:
        return f"{self.kind} {self.table}({', '.join(self.columns)})"


def edges(before: Schema, after: Schema) -> list[Edge]:
    """What the step from ``before`` to ``after`` adds or tightens on tables that hold data."""
    found: list[Edge] = []
    after_tables = {name.lower(): table for name, table in after.tables.items()}
    for name, old in before.tables.items():
        new = after_tables.get(name.lower())
        if new is None or not old.holds_data:
            continue
        old_cols = {c.name.lower(): c for c in old.columns if not c.hidden}
        found += _uniques(name, old, new, before, after, old_cols)
        for column in new.columns:
            was = old_cols.get(column.name.lower())
            if was is None:
                continue
            if column.notnull and not was.notnull and not column.pk:
                found.append(Edge("null", name, (was.name,)))
            if column.affinity != was.affinity:
                wrong: tuple[object, ...] = (
                    ("not a number", "12abc") if column.affinity != "TEXT" else (12345, 1.5)
                )
                found.append(Edge("affinity", name, (was.name,), wrong))
        for check in new.checks:
            if check in old.checks or implied_by(check, old.checks):
                continue
            for condition in check_conditions(check):
                if condition.column.lower() in old_cols:
                    outside = _outside(condition.low, condition.high, condition.choices, condition.max_length)
                    if outside:
                        found.append(
                            Edge("outside", name, (old_cols[condition.column.lower()].name,), outside)
                        )
        old_links = {fk.target for fk in old.foreign_keys}
        for fk in new.foreign_keys:
            if fk.target not in old_links and all(c.lower() in old_cols for c in fk.columns):
                found.append(
                    Edge(
                        "orphan",
                        name,
                        tuple(old_cols[c.lower()].name for c in fk.columns),
                        (987654321, "orphan"),
                    )
                )
    return found


def _uniques(
    name: str, old: Table, new: Table, before: Schema, after: Schema, old_cols: dict[str, Column]
) -> list[Edge]:
    """New UNIQUE sets (constraints or indexes, over columns the table had) that no old one implies."""
    old_nocase = {c.name.lower() for c in old.columns if (c.collation or "").upper() == "NOCASE"}
    old_keys = [({c.lower() for c in u}, any(c.lower() in old_nocase for c in u)) for u in old.unique_sets]
    old_keys += [
        (
            {c.lower() for c in i.columns if c},
            any(c.upper() == "NOCASE" for c in i.collations)
            or any(c.lower() in old_nocase for c in i.columns if c),
        )
        for i in before.indexes.values()
        if i.unique and i.table.lower() == name.lower() and None not in i.columns and not i.where
    ]
    candidates: list[tuple[tuple[str, ...], bool]] = []
    nocase = {c.name.lower() for c in new.columns if (c.collation or "").upper() == "NOCASE"}
    for unique in new.unique_sets:
        candidates.append((tuple(c.lower() for c in unique), any(c.lower() in nocase for c in unique)))
    for index in after.indexes.values():
        if not index.unique or index.table.lower() != name.lower() or index.where:
            continue
        keys, folded = [], False
        for n, column in enumerate(index.columns):
            if column is None:  # lower(email): the column, folded
                match = _FOLD.match(index.expressions[n] if n < len(index.expressions) else "")
                if match is None:
                    break
                column, folded = match[2], True
            if n < len(index.collations) and index.collations[n].upper() == "NOCASE":
                folded = True
            keys.append(column.lower())
        else:
            candidates.append((tuple(keys), folded or any(k in nocase for k in keys)))
    found = []
    for unique, ignores_case in dict.fromkeys(candidates):
        implied = any(k <= set(unique) and (folded_too or not ignores_case) for k, folded_too in old_keys)
        if all(k in old_cols for k in unique) and not implied:
            names = tuple(old_cols[k].name for k in unique)
            found.append(Edge("duplicate", name, names, folded=ignores_case))
    return found


def _outside(
    low: float | None, high: float | None, choices: tuple[object, ...] | None, max_length: int | None
) -> tuple[object, ...]:
    """Values just outside a CHECK: below its range, above it, not in its list, one too long."""
    values: list[object] = []
    if low is not None:
        values.append(int(low) - 1 if float(low).is_integer() else low - 0.5)
    if high is not None:
        values.append(int(high) + 1 if float(high).is_integer() else high + 0.5)
    if choices:
        values.append("zz-not-allowed" if any(isinstance(c, str) for c in choices) else -987654)
    if max_length is not None:
        values.append("x" * (max_length + 1))
    return tuple(values)


def _ascii_swapcase(value: str) -> str:
    """``value`` with the case of its ASCII letters swapped: the variant SQLite's NOCASE, lower()
    and upper() (which fold ASCII letters only) treat as equal and BINARY does not."""
    return "".join(c.swapcase() if c.isascii() else c for c in value)


def _variants(value: object, folded: bool) -> list[object]:
    """Values a twin of a row holding ``value`` gets; for a case-insensitive UNIQUE the first
    one always collides with ``value`` under it (see :func:`_push`)."""
    if not isinstance(value, str) or not folded:
        return [value]
    return [
        _ascii_swapcase(value),
        value.upper(),
        value.lower(),
        f" {value}",
        unicodedata.normalize("NFD", value),
        unicodedata.normalize("NFC", value),
    ]


def _push(edge: Edge, data: TenantData, draw: st.DrawFn) -> None:
    from hypothesis import strategies as st

    rows = data.rows.get(edge.table) or []
    if not rows:
        return
    row = rows[draw(st.integers(0, len(rows) - 1))]
    if edge.kind == "duplicate":
        table = data.schema.tables[edge.table]
        twin: Row = {k: v for k, v in row.items() if k != table.rowid_alias}
        for column in edge.columns:
            value = row.get(column)
            if edge.folded and isinstance(value, str) and _ascii_swapcase(value) == value:
                row[column] = value = f"{value}a"  # an ASCII letter to vary the case of
            if column in row:
                twin[column] = draw(st.sampled_from(_variants(value, edge.folded)))
        rows.append(twin)
    elif edge.kind == "null":
        row[edge.columns[0]] = None
    else:
        for column in edge.columns:
            row[column] = draw(st.sampled_from(edge.values))


def aimed(
    base: st.SearchStrategy[TenantData], before: Schema, after: Schema
) -> st.SearchStrategy[TenantData]:
    """``base``'s tenants, each edge of the step applied to a drawn row or not, as hypothesis
    chooses. Without edges, ``base`` itself."""
    from hypothesis import strategies as st

    found = edges(before, after)
    if not found:
        return base

    @st.composite
    def draw_aimed(draw: st.DrawFn) -> TenantData:
        data = draw(base)
        for edge in found:
            if draw(st.booleans()):
                _push(edge, data, draw)
        return data

    return draw_aimed()
