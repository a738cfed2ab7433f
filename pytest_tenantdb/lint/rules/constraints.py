"""Constraint rules: UNIQUE, CHECK and FOREIGN KEY added to a table that holds tenant data, and
whatever a rebuild loses (indexes, triggers, CHECKs, foreign keys).

The rules judge what a constraint *does*, not how it is spelled or named: an index recreated
under another name is not lost; a UNIQUE over a superset of an existing unique key, or over the
rowid, or over a column this step adds (all NULL, and NULLs are distinct) cannot be violated; a
CHECK implied by the old one (a wider range, more IN values) cannot fail; a foreign key that
only changes its ON DELETE action is not a new constraint; and what goes with a dropped column
is part of that drop (TDB102), not a second finding.
"""

from __future__ import annotations

from collections.abc import Iterator

from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.lint.rules import rule
from pytest_tenantdb.lint.rules.context import StepContext
from pytest_tenantdb.schema import ForeignKey, Index, Table
from pytest_tenantdb.sqltext import check_columns, check_conditions, implied_by

_ROWID = {"rowid", "oid", "_rowid_"}


def _mapped(columns: tuple[str | None, ...], renames: dict[str, str]) -> tuple[str, ...]:
    return tuple(renames.get(c.lower(), c.lower()) if c else "?" for c in columns)


def _shape(index: Index, renames: dict[str, str]) -> tuple[tuple[str, ...], bool, str | None]:
    """What an index does, its key columns named as after the step."""
    keys = []
    for key in index.keys:
        column, _, rest = key.partition(" ")
        keys.append(renames.get(column, column) + (" " + rest if rest else ""))
    return (tuple(keys), index.unique, index.where)


def _old_target(ctx: StepContext, fk: ForeignKey, renames: dict[str, str]) -> tuple[object, ...]:
    """What an old foreign key links, named as after the step (its columns and the table it
    references may have been renamed: SQLite rewrites the reference on a table rename)."""
    table = ctx.facts.table_renames.get(fk.target[1], fk.target[1])
    return (_mapped(fk.columns, renames), table, fk.target[2])


def _covered(ctx: StepContext, lower: str, index: Index, renames: dict[str, str]) -> bool:
    """An old index whose job a new one does: the same keys and condition (a unique one also
    covers a plain one), or for a plain unique index a UNIQUE constraint on its columns."""
    keys, unique, where = _shape(index, renames)
    for other in _indexes(ctx.after.indexes, lower):
        other_keys, other_unique, other_where = _shape(other, {})
        if other_keys == keys and other_where == where and (other_unique or not unique):
            return True
    columns = set(_mapped(index.columns, renames))
    return (
        unique
        and where is None
        and None not in index.columns
        and any(set(_mapped(u, {})) == columns for u in ctx.new_table(lower).unique_sets)
    )


def _indexes(schema_indexes: dict[str, Index], table: str) -> list[Index]:
    return [i for i in schema_indexes.values() if i.table.lower() == table]


def _all_null(ctx: StepContext, lower: str, column: str) -> bool:
    """True when every existing row holds NULL in ``column`` after the step: a column the step
    adds without a default and does not fill from old data."""
    old, new = ctx.old_table(lower), ctx.new_table(lower)
    if column in {c.name.lower() for c in old.columns} or column in ctx.column_renames(lower).values():
        return False
    if new.column(column).default is not None or lower in ctx.facts.written:
        return False
    if ctx.source_writes(lower, ("update", "save", "bulk_update")):
        return False  # a Python backfill that runs only when there are rows
    copy = ctx.facts.copies.get(lower)
    if copy is None or column not in copy.columns or column in copy.nulls:
        return True
    source = copy.columns[column]
    return source is not None and source not in {c.name.lower() for c in old.columns}


def _rowid_kept(ctx: StepContext, lower: str, new: Table) -> bool:
    """The new rowid alias holds the old rows' rowids (or fresh ones): it cannot repeat."""
    copy = ctx.facts.copies.get(lower)
    alias = (new.rowid_alias or "").lower()
    if copy is None or alias not in copy.columns:
        return True
    old = ctx.old_table(lower)
    return copy.columns[alias] in _ROWID | {(old.rowid_alias or "").lower()} - {""}


@rule(
    "TDB108",
    "add-unique",
    "warning",
    "a UNIQUE constraint or index is added to an existing table",
    "Tenants whose data already has duplicates fail the step (the release stops half way), "
    "and old code inserting duplicates fails afterwards.",
    "Deduplicate in the same step (or an earlier one) and make sure old code cannot insert duplicates.",
)
def add_unique(ctx: StepContext) -> Iterator[Finding]:
    for lower in ctx.changed_tables():
        new = ctx.new_table(lower)
        renames = ctx.column_renames(lower)
        old_shapes = {_shape(i, renames) for i in _indexes(ctx.before.indexes, lower)}
        for unique in new.unique_sets:
            if _cannot_be_violated(ctx, lower, unique) or ctx.cleans(lower, set(unique)):
                continue  # (cleaning the data in the step before adding the constraint is the safe way)
            columns = ", ".join(unique)
            yield ctx.finding(
                "TDB108",
                f"UNIQUE ({columns}) added to existing table {new.name}",
                f"unique {new.name}({columns})",
                ctx.cause(new.name),
            )
        for index in _indexes(ctx.after.indexes, lower):
            if (
                not index.unique
                or _shape(index, {}) in old_shapes
                or _cannot_be_violated(ctx, lower, index.columns)
                or ctx.cleans(lower, {c for c in index.columns if c})
            ):
                continue
            columns = ", ".join(index.keys)
            yield ctx.finding(
                "TDB108",
                f"unique index {index.name} added to existing table {new.name}: {index}",
                f"unique {new.name}({columns})",
                ctx.facts.created_indexes.get(index.name.lower()) or ctx.mentioning(index.name),
            )


def _cannot_be_violated(ctx: StepContext, lower: str, columns: tuple[str | None, ...]) -> bool:
    """A table the step empties (dropped and created again, nothing copied in), a superset of a
    key that is already unique, the rowid, or a column that is NULL in every existing row (NULLs
    are distinct in a UNIQUE)."""
    if ctx.emptied(lower):
        return True
    if None in columns:
        return False  # an expression index: nothing is assumed
    old, new = ctx.old_table(lower), ctx.new_table(lower)
    renames = ctx.column_renames(lower)
    keys = set(_mapped(columns, {}))
    old_keys = [set(_mapped(u, renames)) for u in old.unique_sets]
    old_keys += [
        set(_mapped(i.columns, renames))
        for i in _indexes(ctx.before.indexes, lower)
        if i.unique and not i.where and None not in i.columns
    ]
    if any(k <= keys for k in old_keys):
        return True
    if new.rowid_alias and keys == {new.rowid_alias.lower()} and _rowid_kept(ctx, lower, new):
        return True
    return any(_all_null(ctx, lower, c) for c in keys)


@rule(
    "TDB109",
    "add-check-or-foreign-key",
    "warning",
    "a CHECK or FOREIGN KEY is added to an existing table",
    "Existing rows that break it make the step fail on some tenants; old code that writes "
    "such values fails afterwards.",
    "Clean the data first and make every app version respect the constraint before adding it.",
)
def add_check_or_foreign_key(ctx: StepContext) -> Iterator[Finding]:
    for lower in ctx.changed_tables():
        old, new = ctx.old_table(lower), ctx.new_table(lower)
        renames = ctx.column_renames(lower)
        added = {c.name.lower() for c in new.columns} - {
            renames.get(c.name.lower(), c.name.lower()) for c in old.columns
        }
        for check in new.checks:
            if check in old.checks or implied_by(check, old.checks, renames):
                continue
            columns = check_columns(check)
            if ctx.emptied(lower):
                continue  # no row is left to break it
            if columns and columns <= added:
                continue  # on columns this step adds: existing rows get their defaults
            if ctx.cleans(lower, columns):
                continue  # the step cleans the data first: the safe way
            yield ctx.finding(
                "TDB109",
                f"CHECK ({new.written(check)}) added to existing table {new.name}"
                + (
                    f" (before: {', '.join(f'CHECK ({old.written(c)})' for c in old.checks)})"
                    if old.checks
                    else ""
                ),
                f"check {new.name}: {check}",
                ctx.cause(new.name),
            )
        old_targets = {_old_target(ctx, fk, renames) for fk in old.foreign_keys}
        for fk in new.foreign_keys:
            if fk.target in old_targets or all(c.lower() in added for c in fk.columns):
                continue  # the same link (maybe another ON DELETE), or on a new column (NULL)
            yield ctx.finding(
                "TDB109",
                f"FOREIGN KEY {fk} added to existing table {new.name}",
                f"foreign key {new.name}({', '.join(fk.columns)})",
                ctx.cause(new.name),
            )


@rule(
    "TDB114",
    "rebuild-loses-something",
    "error",
    "a table rebuild loses an index, trigger, CHECK or foreign key",
    "SQLite's 12-step rebuild drops the old table with its indexes and triggers; whatever is "
    "not recreated is silently gone on migrated tenants but present on new ones.",
    "Recreate every index and trigger of the old table after the rename, and keep its constraints.",
)
def rebuild_loses(ctx: StepContext) -> Iterator[Finding]:
    for lower in sorted(ctx.rebuilt):
        old, new = ctx.old_table(lower), ctx.new_table(lower)
        renames = ctx.column_renames(lower)
        dropped = {c.name.lower() for c in old.columns} - set(renames) - {c.name.lower() for c in new.columns}
        drop = ctx.facts.dropped_tables.get(lower) or ctx.cause(new.name)
        for index in _indexes(ctx.before.indexes, lower):
            if index.name in ctx.after.indexes or ctx.dropped_on_purpose("index", index.name):
                continue  # kept, or dropped on purpose
            if _covered(ctx, lower, index, renames) or dropped & {c.lower() for c in index.columns if c}:
                continue  # recreated (under another name, or as a UNIQUE), or gone with a dropped column
            yield ctx.finding(
                "TDB114",
                f"the rebuild of {new.name} loses index {index.name} ({index})",
                f"index {index.name}",
                drop,
            )
        for name, trigger in ctx.before.triggers.items():
            if trigger.table.lower() != lower or name in ctx.after.triggers:
                continue
            if ctx.dropped_on_purpose("trigger", name):
                continue  # dropped on purpose: TDB111
            if _names(trigger.sql) & dropped:
                continue  # it served a column the step drops
            yield ctx.finding(
                "TDB114", f"the rebuild of {new.name} loses trigger {name}", f"trigger {name}", drop
            )
        if not ctx.hand_written:
            continue  # generated from declared operations: a constraint left out was dropped on purpose
        new_columns = {c.column.lower() for text in new.checks for c in check_conditions(text)}
        for check in old.checks:
            if check in new.checks:
                continue
            columns = {renames.get(c.column.lower(), c.column.lower()) for c in check_conditions(check)}
            if columns and (columns & new_columns or columns & dropped):
                continue  # replaced by another CHECK on the same columns (TDB109 if tighter), or dropped with them
            if not columns and _names(check) & dropped:
                continue
            yield ctx.finding(
                "TDB114",
                f"the rebuild of {new.name} loses CHECK ({old.written(check)})",
                f"check {new.name}: {check}",
                ctx.cause(new.name),
            )
        new_targets = {fk.target for fk in new.foreign_keys}
        for fk in old.foreign_keys:
            if _old_target(ctx, fk, renames) in new_targets or set(_mapped(fk.columns, renames)) & dropped:
                continue
            yield ctx.finding(
                "TDB114",
                f"the rebuild of {new.name} loses FOREIGN KEY {fk}",
                f"foreign key {new.name}({', '.join(fk.columns)})",
                ctx.cause(new.name),
            )


def _names(sql: str) -> set[str]:
    import re

    return {w.lower() for w in re.findall(r"[A-Za-z_]\w*", sql)}
