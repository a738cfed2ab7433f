"""Statement rules: what a single statement of a step does, whatever the schema around it.
They still apply to a step that fails to run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.lint.rules import rule
from pytest_tenantdb.lint.rules.context import StepContext

_NO_TRANSACTION = re.compile(r"^\s*(VACUUM\b|PRAGMA\s+(\w+\.)?(journal_mode|foreign_keys)\b)", re.IGNORECASE)
_NOTE_HINT = (
    "Nothing to fix (a note never fails the gate); check by hand what the statement does to existing rows."
)
_KIND = re.compile(r"^\s*(\w+(?:\s+(?:UNIQUE\s+)?(?:VIRTUAL\s+)?\w+)?)", re.IGNORECASE)


@rule(
    "TDB001",
    "unparsable-statement",
    "error",
    "a statement could not be parsed",
    "The checker could not read this statement, so it cannot tell whether it is backward "
    "compatible. Nothing is assumed: the statement is reported, never silently passed.",
    "Check the syntax; if SQLite accepts it, add `-- tenantdb: ignore[TDB001] reason` above it.",
    statement_level=True,
)
def unparsable(ctx: StepContext) -> Iterator[Finding]:
    """In SQLite mode the step ran, so SQLite accepted the statement: sqlglot not reading it is
    the checker's gap, reported as a note saying what was not checked. Statically (postgres) it
    stays an error: nothing else looked at the statement."""
    for statement in ctx.facts.unreadable:
        kind = _KIND.match(statement.sql)
        what = " ".join(kind[1].upper().split()) if kind else "statement"
        if ctx.dialect == "sqlite" and not ctx.failed:
            message = (
                f"sqlglot cannot read this {what} statement; SQLite ran it and its effect on the schema "
                "was checked, but rules that read statements (renames, unbounded writes) did not see it"
            )
            found = ctx.finding("TDB001", message, f"statement {_head(statement.sql)}", statement, "note")
            yield replace(found, hint=_NOTE_HINT)
        else:
            message = "sqlglot cannot parse this statement, so it was not checked"
            yield ctx.finding("TDB001", message, f"statement {_head(statement.sql)}", statement)


def _head(sql: str) -> str:
    return " ".join(sql.split()).rstrip(";")[:40]


@rule(
    "TDB112",
    "unbounded-write",
    "warning",
    "DELETE or UPDATE without WHERE in a migration",
    "It rewrites or removes every row of every tenant; usually a mistake, always irreversible.",
    "Add a WHERE clause, or say why with `-- tenantdb: ignore[TDB112] reason`.",
    statement_level=True,
)
def unbounded_write(ctx: StepContext) -> Iterator[Finding]:
    """Not a DELETE that ends a move (the rows were copied elsewhere first), nor an UPDATE that
    only fills columns the step adds (a backfill: nothing was in them)."""
    for write in ctx.facts.unbounded:
        if write.sets and write.table in ctx.before_tables:
            existing = {c.name.lower() for c in ctx.old_table(write.table).columns}
            if not write.sets & existing:
                continue
        message = "DELETE/UPDATE without WHERE rewrites every row of every tenant"
        yield ctx.finding("TDB112", message, f"statement {_head(write.statement.sql)}", write.statement)


@rule(
    "TDB113",
    "no-transaction-statement",
    "error",
    "a statement that cannot run in a transaction, in a transactional step",
    "VACUUM and some PRAGMAs fail inside the transaction the migrator opens for each step.",
    "Mark the step with `-- tenantdb: no-transaction` (it still gets a backup), or move the "
    "statement to its own step.",
    statement_level=True,
)
def no_transaction(ctx: StepContext) -> Iterator[Finding]:
    from sqlglot import exp

    if not ctx.step.transactional:
        return
    for parsed in ctx.statements:
        statement, tree = parsed.statement, parsed.tree
        if _NO_TRANSACTION.match(statement.sql):
            message = "this statement cannot take effect inside the step's transaction"
        elif ctx.dialect == "postgres" and isinstance(tree, exp.Create) and tree.args.get("concurrently"):
            message = "CREATE INDEX CONCURRENTLY cannot run inside a transaction"
        else:
            continue
        yield ctx.finding("TDB113", message, f"statement {_head(statement.sql)}", statement)
