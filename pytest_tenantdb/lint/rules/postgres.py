"""Postgres locking hazards: statements that take long ACCESS EXCLUSIVE locks or rewrite a table
that old code is still reading and writing. (Tables created in the same step are exempt.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.lint.rules import rule
from pytest_tenantdb.lint.rules.context import StepContext
from pytest_tenantdb.migrations.statements import Statement

if TYPE_CHECKING:
    from sqlglot import exp

VOLATILE = {"random", "gen_random_uuid", "uuid_generate_v4", "clock_timestamp", "timeofday", "nextval"}
_VOLATILE_NODES = ("Rand", "Uuid")  # how sqlglot reads random() and gen_random_uuid()


def _volatile(function: exp.Expr) -> bool:
    from sqlglot import exp

    if isinstance(function, exp.Anonymous):
        return str(function.this).lower() in VOLATILE
    return type(function).__name__ in _VOLATILE_NODES


def _existing(ctx: StepContext) -> set[str]:
    return set(ctx.before_tables)


def _alters(ctx: StepContext) -> Iterator[tuple[Statement, exp.Alter, exp.Expr]]:
    """Each action of an ALTER TABLE on a table that existed before the step."""
    from sqlglot import exp

    for parsed in ctx.statements:
        tree = parsed.tree
        if isinstance(tree, exp.Alter) and tree.this.name.lower() in _existing(ctx):
            for action in tree.args.get("actions") or []:
                yield parsed.statement, tree, action


@rule(
    "TDB301",
    "postgres-index-without-concurrently",
    "error",
    "CREATE INDEX on an existing table without CONCURRENTLY (postgres)",
    "A plain CREATE INDEX holds a lock that blocks every INSERT, UPDATE and DELETE on the table "
    "until the index is built: on a large tenant, minutes of failed writes for the app in service.",
    "CREATE INDEX CONCURRENTLY in a step marked `-- tenantdb: no-transaction`.",
    dialects=("postgres",),
)
def index_without_concurrently(ctx: StepContext) -> Iterator[Finding]:
    from sqlglot import exp

    for parsed in ctx.statements:
        tree = parsed.tree
        if not isinstance(tree, exp.Create) or str(tree.args.get("kind") or "").upper() != "INDEX":
            continue
        table = tree.this.args.get("table")
        if not tree.args.get("concurrently") and table is not None and table.name.lower() in _existing(ctx):
            yield ctx.finding(
                "TDB301",
                f"CREATE INDEX on existing table {table.name} blocks writes while it builds",
                f"index {tree.this.name}",
                parsed.statement,
            )


@rule(
    "TDB302",
    "postgres-constraint-without-not-valid",
    "error",
    "a FOREIGN KEY or CHECK added to an existing table without NOT VALID (postgres)",
    "Adding the constraint scans every row while holding a lock that blocks writes. A foreign key "
    "also takes a SHARE ROW EXCLUSIVE lock on the table it references, so writes to that table "
    "(often a central one such as users) wait too; this holds for a column added with REFERENCES, "
    "which cannot be NOT VALID.",
    "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later statement or step; for a new "
    "column, add it without REFERENCES first and the foreign key that way.",
    dialects=("postgres",),
)
def constraint_without_not_valid(ctx: StepContext) -> Iterator[Finding]:
    from sqlglot import exp

    for statement, tree, action in _alters(ctx):
        table = tree.this.name
        if isinstance(action, exp.AddConstraint) and not tree.args.get("not_valid"):
            kinds = {
                type(part).__name__
                for item in action.expressions
                for part in getattr(item, "expressions", [item])
            }
            if kinds & {"ForeignKey", "CheckColumnConstraint"}:
                yield ctx.finding(
                    "TDB302",
                    f"constraint added to {table} without NOT VALID scans it under a lock",
                    f"table {table}",
                    statement,
                )
        elif isinstance(action, exp.ColumnDef):
            for constraint in action.args.get("constraints") or []:
                kind = constraint.args.get("kind")
                if isinstance(kind, exp.Reference):
                    target = kind.this.this if isinstance(kind.this, exp.Schema) else kind.this
                    if target.name.lower() in _existing(ctx):
                        yield ctx.finding(
                            "TDB302",
                            f"{table}.{action.name} is added with a foreign key: it locks "
                            f"{target.name} against writes and cannot be NOT VALID",
                            f"column {table}.{action.name}",
                            statement,
                        )


@rule(
    "TDB303",
    "postgres-volatile-default",
    "error",
    "a column added with a volatile default (postgres)",
    "A volatile default (random(), gen_random_uuid(), clock_timestamp(), nextval()) forces a "
    "rewrite of the whole table under an ACCESS EXCLUSIVE lock.",
    "Add the column without a default (or with a constant one), backfill in batches, then set the default.",
    dialects=("postgres",),
)
def volatile_default(ctx: StepContext) -> Iterator[Finding]:
    from sqlglot import exp

    for statement, tree, action in _alters(ctx):
        if not isinstance(action, exp.ColumnDef):
            continue
        for constraint in action.args.get("constraints") or []:
            kind = constraint.args.get("kind")
            if isinstance(kind, exp.DefaultColumnConstraint) and any(
                _volatile(f) for f in kind.find_all(exp.Func)
            ):
                yield ctx.finding(
                    "TDB303",
                    f"volatile default on {tree.this.name}.{action.name} rewrites the table",
                    f"column {tree.this.name}.{action.name}",
                    statement,
                )


@rule(
    "TDB304",
    "postgres-type-change-rewrite",
    "error",
    "ALTER COLUMN ... TYPE on an existing table (postgres)",
    "Most type changes rewrite the table and its indexes under an ACCESS EXCLUSIVE lock: reads "
    "and writes of the app in service wait for it.",
    "Add a column of the new type, dual-write, backfill in batches, switch reads, drop the old one.",
    dialects=("postgres",),
)
def type_change_rewrite(ctx: StepContext) -> Iterator[Finding]:
    from sqlglot import exp

    for statement, tree, action in _alters(ctx):
        if isinstance(action, exp.AlterColumn) and action.args.get("dtype") is not None:
            yield ctx.finding(
                "TDB304",
                f"changing the type of {tree.this.name}.{action.name} rewrites the table",
                f"column {tree.this.name}.{action.name}",
                statement,
            )


@rule(
    "TDB305",
    "postgres-set-not-null-scan",
    "warning",
    "SET NOT NULL on an existing column (postgres)",
    "Postgres scans the whole table to verify the constraint while holding an ACCESS EXCLUSIVE lock.",
    "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (no scan "
    "on postgres 12+), then drop the CHECK.",
    dialects=("postgres",),
)
def set_not_null_scan(ctx: StepContext) -> Iterator[Finding]:
    from sqlglot import exp

    for statement, tree, action in _alters(ctx):
        if (
            isinstance(action, exp.AlterColumn)
            and action.args.get("dtype") is None
            and action.args.get("allow_null") is False
        ):
            yield ctx.finding(
                "TDB305",
                f"SET NOT NULL on {tree.this.name}.{action.name} scans the table under a lock",
                f"column {tree.this.name}.{action.name}",
                statement,
            )
