"""Table, view and trigger rules: objects that old code names and that a step takes away."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.lint.rules import rule
from pytest_tenantdb.lint.rules.context import StepContext


def old_code_phrase(uses: bool | None, what: str = "it") -> str:
    """How sure the finding is that old code breaks: known app code names it, or none is configured."""
    if uses is None:
        return f"old code may still use {what} (no app code is configured to tell)"
    return f"old code still uses {what}"


@rule(
    "TDB101",
    "drop-table",
    "error",
    "a table is dropped",
    "The app version still serving tenants reads and writes this table. While the fleet is "
    "half migrated, every request of the old version that touches it fails.",
    "Stop using the table in one release, drop it in a later one (expand/contract).",
)
def drop_table(ctx: StepContext) -> Iterator[Finding]:
    after_views = {v.lower() for v in ctx.after.views}
    for lower, name in ctx.before_tables.items():
        if lower in ctx.after_tables or lower in after_views:
            continue  # kept, or the old name keeps working through a view
        if ctx.facts.table_renames.get(lower) in ctx.after_tables:
            continue  # renamed: TDB103
        if not ctx.old_table(lower).holds_data:
            continue  # a virtual table's shadow table goes with it
        uses = ctx.old_code_uses(name)
        if uses is False:
            continue
        yield ctx.finding(
            "TDB101", f"table {name} is dropped; {old_code_phrase(uses)}", f"table {name}", ctx.cause(name)
        )


@rule(
    "TDB103",
    "rename-table",
    "error",
    "a table is renamed",
    "Old app code uses the old name, which no longer exists on migrated tenants.",
    "Create the new table, keep a view (or both tables in sync) under the old name until no "
    "app version uses it.",
)
def rename_table(ctx: StepContext) -> Iterator[Finding]:
    after_views = {v.lower() for v in ctx.after.views}
    for lower, name in ctx.before_tables.items():
        renamed = ctx.facts.table_renames.get(lower)
        if renamed is None or lower in ctx.after_tables or lower in after_views:
            continue
        if renamed not in ctx.after_tables:
            continue  # renamed out of the way and dropped later in the step: a drop (TDB101)
        uses = ctx.old_code_uses(name)
        if uses is False:
            continue
        yield ctx.finding(
            "TDB103",
            f"table {name} is renamed to {ctx.after_tables[renamed]}; {old_code_phrase(uses, name)}",
            f"table {name}",
            ctx.cause(name),
        )


def _dropped_columns(ctx: StepContext) -> set[str]:
    found: set[str] = set()
    for lower in ctx.changed_tables():
        kept = {c.name.lower() for c in ctx.new_table(lower).columns}
        found |= {c.name.lower() for c in ctx.old_table(lower).columns if c.name.lower() not in kept}
    return found


@rule(
    "TDB111",
    "drop-view-or-trigger",
    "warning",
    "a view or trigger is dropped",
    "Old code may read the view, or rely on the trigger keeping data in sync.",
    "Drop it in a later release, once no app version in service uses it.",
)
def drop_view_or_trigger(ctx: StepContext) -> Iterator[Finding]:
    """A trigger lost by a rebuild is TDB114; one that goes with its table or serves a dropped
    column is part of that drop."""
    dropped_columns = _dropped_columns(ctx)
    for name, trigger in ctx.before.triggers.items():
        if name in ctx.after.triggers:
            continue
        table = trigger.table.lower()
        if table not in ctx.after_tables:
            continue  # the trigger went with its table
        if table in ctx.rebuilt and name.lower() not in ctx.facts.dropped_triggers:
            continue  # lost by the rebuild: TDB114
        if any(re.search(rf"\b{re.escape(c)}\b", trigger.sql, re.IGNORECASE) for c in dropped_columns):
            continue  # it served a column the step drops
        statement = ctx.facts.dropped_triggers.get(name.lower()) or ctx.mentioning(name)
        yield ctx.finding(
            "TDB111", f"trigger {name} on {trigger.table} is dropped", f"trigger {name}", statement
        )
    for name in ctx.before.views:
        if name in ctx.after.views or name.lower() in ctx.after_tables:
            continue
        uses = ctx.old_code_uses(name)
        if uses is False:
            continue
        statement = ctx.facts.dropped_views.get(name.lower()) or ctx.mentioning(name)
        message = f"view {name} is dropped; " + ("old code reads it" if uses else "old code may read it")
        yield ctx.finding("TDB111", message, f"view {name}", statement)
