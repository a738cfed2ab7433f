"""Postgres locking hazards: statements that take long ACCESS EXCLUSIVE locks or rewrite a table
that old code is still reading and writing. (Tables created in the same step are exempt.)"""

from __future__ import annotations

import logging

from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.lint.rules import finding
from pytest_tenantdb.migrations import SqlStep, Step
from pytest_tenantdb.migrations.statements import Statement
from pytest_tenantdb.schema import Schema

VOLATILE = {"random", "gen_random_uuid", "uuid_generate_v4", "clock_timestamp", "timeofday", "nextval"}
_VOLATILE_NODES = ("Rand", "Uuid")  # how sqlglot reads random() and gen_random_uuid()


def _volatile(function: object) -> bool:
    from sqlglot import exp

    if isinstance(function, exp.Anonymous):
        return str(function.this).lower() in VOLATILE
    return type(function).__name__ in _VOLATILE_NODES


def lint_postgres_step(step: Step, before: Schema) -> list[Finding]:
    import sqlglot
    from sqlglot import exp

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    findings: list[Finding] = []
    existing = {name.lower() for name in before.tables}

    def report(code: str, message: str, statement: Statement) -> None:
        findings.append(finding(code, message, step.path, statement.line, step.label, statement.sql))

    for statement in step.up if isinstance(step, SqlStep) else ():
        try:
            tree = sqlglot.parse_one(statement.sql, read="postgres")
        except sqlglot.errors.SqlglotError:
            continue  # reported as TDB001 by the generic rules
        try:
            if isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() == "INDEX":
                table = tree.this.args.get("table")
                if tree.args.get("concurrently"):
                    if step.transactional:
                        report(
                            "TDB113", "CREATE INDEX CONCURRENTLY cannot run inside a transaction", statement
                        )
                elif table is not None and table.name.lower() in existing:
                    report(
                        "TDB301",
                        f"CREATE INDEX on existing table {table.name} blocks writes while it builds",
                        statement,
                    )
            if not isinstance(tree, exp.Alter) or tree.this.name.lower() not in existing:
                continue
            table = tree.this.name
            for action in tree.args.get("actions") or []:
                if isinstance(action, exp.AddConstraint) and not tree.args.get("not_valid"):
                    kinds = {
                        type(part).__name__
                        for item in action.expressions
                        for part in getattr(item, "expressions", [item])
                    }
                    if kinds & {"ForeignKey", "CheckColumnConstraint"}:
                        report(
                            "TDB302",
                            f"constraint added to {table} without NOT VALID scans it under a lock",
                            statement,
                        )
                elif isinstance(action, exp.ColumnDef):
                    for constraint in action.args.get("constraints") or []:
                        kind = constraint.args.get("kind")
                        if isinstance(kind, exp.Reference):
                            target = kind.this.this if isinstance(kind.this, exp.Schema) else kind.this
                            if target.name.lower() in existing:
                                report(
                                    "TDB302",
                                    f"{table}.{action.name} is added with a foreign key: it locks "
                                    f"{target.name} against writes and cannot be NOT VALID",
                                    statement,
                                )
                        if isinstance(kind, exp.DefaultColumnConstraint):
                            volatile = [f for f in kind.find_all(exp.Func) if _volatile(f)]
                            if volatile:
                                report(
                                    "TDB303",
                                    f"volatile default on {table}.{action.name} rewrites the table",
                                    statement,
                                )
                elif isinstance(action, exp.AlterColumn):
                    if action.args.get("dtype") is not None:
                        report(
                            "TDB304",
                            f"changing the type of {table}.{action.name} rewrites the table",
                            statement,
                        )
                    elif action.args.get("allow_null") is False:
                        report(
                            "TDB305",
                            f"SET NOT NULL on {table}.{action.name} scans the table under a lock",
                            statement,
                        )
        except (AttributeError, TypeError, KeyError):  # a tree of an unexpected shape
            report("TDB001", "the locking rules could not read this statement", statement)
    return findings
