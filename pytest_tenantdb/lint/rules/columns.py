"""Column rules: a table kept by the step (altered in place or rebuilt) with columns dropped,
renamed, added NOT NULL, tightened, retyped or stripped of their default.

A rename is one finding (TDB104), whether done with ``RENAME COLUMN`` or by a rebuild that
copies ``old`` into ``new``; it is never also a drop of ``old`` and an add of ``new``.
"""

from __future__ import annotations

from collections.abc import Iterator

from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.lint.rules import rule
from pytest_tenantdb.lint.rules.context import StepContext
from pytest_tenantdb.lint.rules.tables import old_code_phrase
from pytest_tenantdb.schema import Column


def _pairs(ctx: StepContext, lower: str) -> Iterator[tuple[Column, Column]]:
    """(before, after) of each column the table keeps, through renames."""
    renames = ctx.column_renames(lower)
    new_cols = {c.name.lower(): c for c in ctx.new_table(lower).columns if not c.hidden}
    for column in ctx.old_table(lower).columns:
        if column.hidden:
            continue
        target = renames.get(column.name.lower(), column.name.lower())
        if target in new_cols:
            yield column, new_cols[target]


@rule(
    "TDB102",
    "drop-column",
    "error",
    "a column is dropped",
    "Old app code that selects, inserts or updates this column fails on migrated tenants.",
    "Release app code that no longer uses the column first; drop it in a later step.",
)
def drop_column(ctx: StepContext) -> Iterator[Finding]:
    for lower in ctx.changed_tables():
        table = ctx.new_table(lower).name
        renames = ctx.column_renames(lower)
        kept = {c.name.lower() for c in ctx.new_table(lower).columns}
        for column in ctx.old_table(lower).columns:
            name = column.name.lower()
            if column.hidden or name in kept or name in renames:
                continue
            uses = ctx.old_code_uses(table, column.name)
            if uses is False:
                continue
            yield ctx.finding(
                "TDB102",
                f"column {table}.{column.name} is dropped; {old_code_phrase(uses)}",
                f"column {table}.{column.name}",
                ctx.cause(table, column.name),
            )


@rule(
    "TDB104",
    "rename-column",
    "error",
    "a column is renamed (in place or by a rebuild)",
    "Old app code uses the old column name, which no longer exists on migrated tenants.",
    "Add the new column, keep both in sync (trigger or dual writes), backfill, switch reads, "
    "then drop the old column in a later step.",
)
def rename_column(ctx: StepContext) -> Iterator[Finding]:
    for lower in ctx.changed_tables():
        table = ctx.new_table(lower)
        in_place = {old for (t, old) in ctx.facts.column_renames if t == lower}
        for old, new in sorted(ctx.column_renames(lower).items()):
            if new not in {c.name.lower() for c in table.columns}:
                continue  # renamed, then dropped or renamed again: judged by what is left
            column = ctx.old_table(lower).column(old)
            how = "in place" if old in in_place else "by the rebuild (copied into a column of another name)"
            yield ctx.finding(
                "TDB104",
                f"column {table.name}.{column.name} is renamed to {table.column(new).name} {how}",
                f"column {table.name}.{column.name}",
                ctx.cause(table.name, new),
            )


@rule(
    "TDB105",
    "add-not-null-column-without-default",
    "error",
    "a NOT NULL column without a default is added",
    "Old INSERTs do not name the new column, so on migrated tenants they fail with a NOT NULL "
    "constraint error.",
    "Add the column nullable or with a DEFAULT; make it NOT NULL once every app version fills it.",
)
def add_not_null(ctx: StepContext) -> Iterator[Finding]:
    for lower in ctx.changed_tables():
        table = ctx.new_table(lower)
        old_names = {c.name.lower() for c in ctx.old_table(lower).columns}
        renamed_to = set(ctx.column_renames(lower).values())
        for column in table.columns:
            name = column.name.lower()
            if name in old_names or name in renamed_to or column.hidden:
                continue
            if column.notnull and column.default is None and not column.pk:
                yield ctx.finding(
                    "TDB105",
                    f"{table.name}.{column.name} is NOT NULL without a default; old INSERTs do not fill it",
                    f"column {table.name}.{column.name}",
                    ctx.cause(table.name, column.name),
                )


@rule(
    "TDB106",
    "set-not-null",
    "error",
    "an existing column becomes NOT NULL",
    "Old code that writes NULL (or leaves the column out) fails; existing NULL rows make the "
    "step itself fail on some tenants.",
    "Backfill first, make every app version write a value, then add the constraint in a later step.",
)
def set_not_null(ctx: StepContext) -> Iterator[Finding]:
    for lower in ctx.changed_tables():
        table = ctx.new_table(lower).name
        for old, new in _pairs(ctx, lower):
            if new.notnull and not old.notnull and not new.pk:
                yield ctx.finding(
                    "TDB106",
                    f"{table}.{new.name} becomes NOT NULL (was nullable)",
                    f"column {table}.{old.name}",
                    ctx.cause(table, new.name),
                )


@rule(
    "TDB107",
    "change-column-type",
    "warning",
    "a column's declared type changes",
    "Old code may write values of the old type; with STRICT tables or CHECKs they are refused, "
    "and comparisons change with type affinity.",
    "Add a column of the new type, dual-write, backfill, switch, drop the old one later.",
)
def change_type(ctx: StepContext) -> Iterator[Finding]:
    """SQLite does not enforce declared lengths or names: only an affinity change (or any change
    in a STRICT table) changes what the column stores and how it compares."""
    for lower in ctx.changed_tables():
        table = ctx.new_table(lower)
        strict = table.strict or ctx.old_table(lower).strict
        for old, new in _pairs(ctx, lower):
            if old.type.upper() == new.type.upper():
                continue
            if ctx.dialect != "sqlite":
                why = "declared type"  # other databases enforce the declared type and its length
            elif old.affinity != new.affinity:
                why = f"affinity {old.affinity} -> {new.affinity}"
            elif strict:
                why = "STRICT table"
            else:
                continue  # SQLite stores and compares the column the same way
            yield ctx.finding(
                "TDB107",
                f"{table.name}.{new.name} changes type {old.type or '(none)'} -> {new.type or '(none)'} ({why})",
                f"column {table.name}.{old.name}",
                ctx.cause(table.name, new.name),
            )


@rule(
    "TDB110",
    "drop-or-change-default",
    "error",
    "a column default is dropped or changed",
    "Old INSERTs that leave the column out relied on the default: they fail (NOT NULL) or "
    "store a different value.",
    "Keep the default until no app version relies on it.",
)
def drop_default(ctx: StepContext) -> Iterator[Finding]:
    for lower in ctx.changed_tables():
        table = ctx.new_table(lower).name
        for old, new in _pairs(ctx, lower):
            if old.default is not None and old.default != new.default:
                change = "dropped" if new.default is None else f"changed to {new.default}"
                yield ctx.finding(
                    "TDB110",
                    f"default of {table}.{new.name} is {change} (was {old.default})",
                    f"column {table}.{old.name}",
                    ctx.cause(table, new.name),
                )
