"""Migration rules: one step, the schema before it and the schema after it (both introspected).

A 12-step rebuild (create new, copy, drop old, rename new to old) keeps the table's name, so it
is seen as a change of that table, with whatever it loses, never as a drop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.lint.rules import finding
from pytest_tenantdb.migrations import SqlStep, Step
from pytest_tenantdb.migrations.statements import Statement
from pytest_tenantdb.schema import Column, ColumnCheck, Schema, parse_check

_NO_TRANSACTION = re.compile(r"^\s*(VACUUM\b|PRAGMA\s+(\w+\.)?(journal_mode|foreign_keys)\b)", re.IGNORECASE)


@dataclass
class StepFacts:
    """What the step's statements say, read with sqlglot: renames, rebuilt tables, statements."""

    statements: list[Statement]
    table_renames: dict[str, str] = field(default_factory=dict)  # old -> new
    column_renames: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, old) -> new
    dropped_tables: set[str] = field(default_factory=set)
    unparsable: list[Statement] = field(default_factory=list)
    unbounded: list[Statement] = field(default_factory=list)


def read_statements(step: Step, dialect: str = "sqlite", ran: Sequence[Statement] | None = None) -> StepFacts:
    """``ran``: the statements a Python / Alembic / Django step ran (captured by the walker)."""
    import sqlglot
    from sqlglot import exp

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    statements = list(step.up) if isinstance(step, SqlStep) else list(ran or ())
    facts = StepFacts(statements)
    created: set[str] = set()
    for statement in statements:
        try:
            tree = sqlglot.parse_one(statement.sql, read=dialect)
        except sqlglot.errors.SqlglotError:
            facts.unparsable.append(statement)
            continue
        try:
            if isinstance(tree, exp.Alter):
                table = tree.this.name.lower()
                for action in tree.args.get("actions") or []:
                    if isinstance(action, exp.AlterRename):
                        facts.table_renames[table] = action.this.name.lower()
                    elif isinstance(action, exp.RenameColumn):
                        facts.column_renames[(table, action.this.name.lower())] = action.args[
                            "to"
                        ].name.lower()
            elif isinstance(tree, exp.Drop) and (tree.args.get("kind") or "").upper() == "TABLE":
                facts.dropped_tables.update(
                    t.name.lower()
                    for t in tree.args.get("tables") or tree.expressions or [tree.this]
                    if t is not None
                )
            elif (
                isinstance(tree, exp.Delete | exp.Update)
                and tree.args.get("where") is None
                and tree.this.name.lower() not in created  # a table this step creates holds no tenant data
            ):
                facts.unbounded.append(statement)
            if isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() == "TABLE":
                target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
                created.add(target.name.lower())
        except (AttributeError, TypeError, KeyError):  # a tree of a shape sqlglot rarely makes
            facts.unparsable.append(statement)
    return facts


def _norm(sql: str) -> str:
    return " ".join(sql.lower().split())


def _mentions(sqls: list[str] | None, *names: str) -> bool:
    """Whether old code may use ``names``: True when the old code is not known."""
    if sqls is None:
        return True
    cleaned = [re.sub(r"'(?:[^']|'')*'|[:@$]\w+", " ", sql) for sql in sqls]  # not in literals or parameters

    def uses(sql: str, name: str) -> bool:
        return bool(re.search(rf"\b{re.escape(name)}\b", sql, re.IGNORECASE))

    table, *columns = names
    return any(
        uses(sql, table) and (all(uses(sql, c) for c in columns) or (columns and "*" in sql))
        for sql in cleaned
    )  # SELECT * over the table uses every column


def _widens(old: ColumnCheck, new: ColumnCheck) -> bool:
    """True when every value ``old`` allowed is still allowed by ``new``."""
    if old.choices is not None or new.choices is not None:
        return old.choices is not None and new.choices is not None and set(old.choices) <= set(new.choices)
    if old.max_length is not None or new.max_length is not None:
        return new.max_length is None or (old.max_length is not None and new.max_length >= old.max_length)
    low_ok = new.low is None or (old.low is not None and new.low <= old.low)
    high_ok = new.high is None or (old.high is not None and new.high >= old.high)
    return low_ok and high_ok


def _widened_by(old_check: str, new_parsed: dict[str, ColumnCheck]) -> bool:
    parsed = parse_check(old_check)
    return bool(parsed) and all(
        p.column.lower() in new_parsed and _widens(p, new_parsed[p.column.lower()]) for p in parsed
    )


def _safe_check(
    text: str, added: set[str], old_parsed: dict[str, ColumnCheck], new_parsed: dict[str, ColumnCheck]
) -> bool:
    """A new CHECK that cannot break existing rows or old code."""
    parsed = parse_check(text)
    if parsed and all(c.column.lower() in added for c in parsed):
        return True  # on a column this step adds: existing rows get its default
    return bool(parsed) and all(
        c.column.lower() in old_parsed
        and c.column.lower() in new_parsed
        and _widens(old_parsed[c.column.lower()], new_parsed[c.column.lower()])
        for c in parsed
    )  # an existing check made wider (e.g. one more allowed status)


def lint_step(
    step: Step,
    before: Schema,
    after: Schema,
    old_code: list[str] | None = None,
    dialect: str = "sqlite",
    ran: Sequence[Statement] | None = None,
) -> list[Finding]:
    """Every migration rule for ``step``, given the schemas just before and after it.

    ``old_code`` is the SQL of the app version still in service, when known: a column, table or
    view no old query mentions can go without breaking it (the contract half of expand/contract).
    """
    facts = read_statements(step, dialect, ran)
    findings: list[Finding] = []

    def where(*names: str) -> Statement | None:
        for statement in facts.statements:
            text = statement.sql.lower()
            if all(re.search(rf"\b{re.escape(n.lower())}\b", text) for n in names):
                return statement
        return facts.statements[0] if facts.statements else None

    def report(code: str, message: str, statement: Statement | None) -> None:
        line, sql = (statement.line, statement.sql) if statement else (1, "")
        findings.append(finding(code, message, step.path, line, step.label, sql))

    before_tables = {t.lower(): t for t in before.tables}
    after_tables = {t.lower(): t for t in after.tables}
    after_views = {v.lower() for v in after.views}
    created = {
        new for old, new in facts.table_renames.items() if old not in before_tables
    }  # the rebuild: tables created in this step and renamed into place
    rebuilt = {t for t in facts.dropped_tables if t in before_tables and t in after_tables}
    rebuilt |= {
        new for old, new in facts.table_renames.items() if new in before_tables and old not in before_tables
    }

    for statement in facts.unparsable:
        report("TDB001", "sqlglot cannot parse this statement, so it was not checked", statement)
    for statement in facts.unbounded:
        report("TDB112", "DELETE/UPDATE without WHERE rewrites every row of every tenant", statement)
    if step.transactional:
        for statement in facts.statements:
            if _NO_TRANSACTION.match(statement.sql):
                report("TDB113", "this statement cannot take effect inside the step's transaction", statement)

    dropped_cols: set[tuple[str, str]] = set()
    for t, old_table in before.tables.items():
        kept = after.tables.get(after_tables.get(t.lower(), ""))
        if kept is None or kept is old_table:
            continue
        kept_names = {x.name.lower() for x in kept.columns}
        dropped_cols |= {
            (t.lower(), c.name.lower()) for c in old_table.columns if c.name.lower() not in kept_names
        }
    for lower, name in before_tables.items():
        if lower in after_tables or lower in after_views:
            continue  # kept, or the old name keeps working through a view
        renamed = facts.table_renames.get(lower)
        if renamed is not None:
            report("TDB103", f"table {name} is renamed to {renamed}; old code still uses {name}", where(name))
        elif _mentions(old_code, name):
            report("TDB101", f"table {name} is dropped; old code still uses it", where(name))

    index_changed = {i.table.lower() for n, i in after.indexes.items() if before.indexes.get(n) is not i}
    for lower, name in after_tables.items():
        if lower not in before_tables or lower in created - rebuilt:
            continue
        old, new = before.tables[before_tables[lower]], after.tables[name]
        if old is new and lower not in rebuilt and lower not in index_changed:
            continue  # untouched by this step (introspection reused the same objects)
        old_cols = {c.name.lower(): c for c in old.columns if not c.hidden}
        new_cols = {c.name.lower(): c for c in new.columns if not c.hidden}
        renamed_to = {new_name for (t, _), new_name in facts.column_renames.items() if t == lower}
        for col, column in old_cols.items():
            if col in new_cols:
                _column_changes(report, where, name, column, new_cols[col])
                continue
            target = facts.column_renames.get((lower, col))
            if target is not None:
                report(
                    "TDB104",
                    f"column {name}.{column.name} is renamed to {target} in place",
                    where(name, column.name),
                )
            elif _mentions(old_code, name, column.name):
                report(
                    "TDB102",
                    f"column {name}.{column.name} is dropped; old code still uses it",
                    where(name, column.name),
                )
        for col, column in new_cols.items():
            if col in old_cols or col in renamed_to:
                continue
            if column.notnull and column.default is None and not column.pk:
                report(
                    "TDB105",
                    f"{name}.{column.name} is NOT NULL without a default; old INSERTs do not fill it",
                    where(name, column.name),
                )
        col_renames = {old_c: new_c for (t, old_c), new_c in facts.column_renames.items() if t == lower}
        old_uniques = {
            tuple(col_renames.get(str(c).lower(), c) for c in cols)
            for cols in (
                *old.unique_sets,
                *(i.columns for i in before.indexes.values() if i.unique and i.table.lower() == lower),
            )
        }
        cleaned = any(
            re.match(rf"\s*(UPDATE|DELETE\s+FROM)\s+[\"`\[]?{re.escape(lower)}\b", st.sql, re.IGNORECASE)
            for st in facts.statements
        )  # the step cleans the table's data before adding the constraint: the safe way
        for index in after.indexes.values():
            if (
                index.unique
                and index.table.lower() == lower
                and index.columns not in old_uniques
                and not cleaned
            ):
                report(
                    "TDB108",
                    f"unique index {index.name} on existing table {name} {index.columns!r}",
                    where(index.name),
                )
        for unique in set(new.unique_sets) - old_uniques:
            if not cleaned:
                report("TDB108", f"UNIQUE {unique!r} added to existing table {name}", where(name))
        old_parsed, new_parsed = old.column_checks(), new.column_checks()
        added_cols = set(new_cols) - set(old_cols)

        old_checks = {_norm(c) for c in old.checks}
        new_checks = {_norm(c) for c in new.checks}
        for check in new.checks:
            if _norm(check) not in old_checks and not _safe_check(check, added_cols, old_parsed, new_parsed):
                report("TDB109", f"CHECK ({check}) added to existing table {name}", where(name))
        for fk in set(new.foreign_keys) - set(old.foreign_keys):
            if all(c.lower() in added_cols for c in fk.columns):
                continue  # on a column this step adds: existing rows hold NULL
            report(
                "TDB109",
                f"FOREIGN KEY {fk.columns!r} -> {fk.ref_table} added to existing table {name}",
                where(name),
            )
        if lower in rebuilt:
            lost = [
                f"CHECK ({c})"
                for c in old.checks
                if _norm(c) not in new_checks and not _widened_by(c, new_parsed)
            ]
            lost += [f"FOREIGN KEY {fk.columns!r}" for fk in set(old.foreign_keys) - set(new.foreign_keys)]
            for what in lost:
                report("TDB114", f"the rebuild of {name} loses {what}", where(name))

    for index in before.indexes.values():
        if index.table.lower() in rebuilt and index.name not in after.indexes:
            report("TDB114", f"the rebuild of {index.table} loses index {index.name}", where(index.table))
    for trigger, sql in before.triggers.items():
        if trigger in after.triggers:
            continue
        table = re.search(r"\bON\s+[\"`\[]?(\w+)", sql, re.IGNORECASE)
        if table and table[1].lower() in rebuilt:
            report("TDB114", f"the rebuild of {table[1]} loses trigger {trigger}", where(table[1]))
        elif table and table[1].lower() not in after_tables:
            pass  # the trigger went with its table
        elif not any(re.search(rf"\b{re.escape(col)}\b", sql, re.IGNORECASE) for _, col in dropped_cols):
            report(
                "TDB111", f"trigger {trigger} is dropped", where(trigger)
            )  # not one serving a dropped column
    for view in before.views:
        if view not in after.views and view.lower() not in after_tables and _mentions(old_code, view):
            report("TDB111", f"view {view} is dropped; old code may read it", where(view))
    return findings


def _column_changes(
    report: Callable[[str, str, Statement | None], None],
    where: Callable[..., Statement | None],
    table: str,
    old: Column,
    new: Column,
) -> None:
    if new.notnull and not old.notnull and not new.pk:
        report("TDB106", f"{table}.{new.name} becomes NOT NULL", where(table, new.name))
    if old.type.upper() != new.type.upper():
        report(
            "TDB107",
            f"{table}.{new.name} changes type {old.type or '(none)'} -> {new.type or '(none)'}",
            where(table, new.name),
        )
    if old.default is not None and old.default != new.default:
        change = "dropped" if new.default is None else f"changed to {new.default}"
        report("TDB110", f"default {old.default} of {table}.{new.name} is {change}", where(table, new.name))
