"""Query rules: the app queries of version v, prepared against the schema of the next version.

SQLite itself prepares each query (``EXPLAIN``) against the template of the new version, so an
unknown table or column, or a newly ambiguous column, is found exactly as the app would hit it;
a query is only blamed on the migration when it prepares fine on its own version. One that does
not (a typo, a table that never existed) is reported once, as TDB205, at the version that
introduced it. Every parameter style SQLite knows is bound to NULL (``placeholders.py``).
"""

from __future__ import annotations

import sqlite3

from pytest_tenantdb.errors import QueryParameterError
from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.lint.placeholders import binding
from pytest_tenantdb.lint.rules import finding
from pytest_tenantdb.migrations import Step
from pytest_tenantdb.queries import Query
from pytest_tenantdb.schema import Schema


def _prepare(conn: sqlite3.Connection, sql: str) -> str | None:
    """SQLite's error preparing ``sql`` with NULL for every parameter, or None when it prepares.

    Raises :class:`QueryParameterError` when Python's sqlite3 cannot bind its parameters."""
    values = binding(sql)
    try:
        conn.execute(f"EXPLAIN {sql}", values)
    except sqlite3.Error as exc:
        return str(exc)
    return None


def _columns(conn: sqlite3.Connection, sql: str) -> tuple[str, ...] | None:
    """The columns a SELECT returns (``*`` expanded), or None when it does not run."""
    body = sql.rstrip().rstrip(";")
    try:  # the newline ends a trailing ``--`` comment before the closing parenthesis
        cursor = conn.execute(f"SELECT * FROM ({body}\n) LIMIT 0", binding(body))
    except (sqlite3.Error, QueryParameterError):
        return None
    return tuple(d[0] for d in cursor.description or ())


def missing_not_null(sql: str, schema: Schema, dialect: str = "sqlite") -> list[str]:
    """NOT NULL columns without default that an INSERT leaves out."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return []
    if not isinstance(tree, exp.Insert) or not isinstance(tree.this, exp.Schema):
        return []
    table = getattr(tree.this.this, "name", "")
    info = next((t for n, t in schema.tables.items() if n.lower() == table.lower()), None)
    if info is None:
        return []
    named = {c.name.lower() for c in tree.this.expressions}
    return [
        c.name
        for c in info.columns
        if c.notnull
        and c.default is None
        and not c.hidden
        and c.name != info.rowid_alias
        and c.name.lower() not in named
    ]


def new_not_null(sql: str, old: Schema, new: Schema, dialect: str = "sqlite") -> str | None:
    """The TDB202 message when an INSERT leaves out NOT NULL columns that ``old`` did not have."""
    missing = set(missing_not_null(sql, new, dialect)) - set(missing_not_null(sql, old, dialect))
    return f"the INSERT leaves out NOT NULL column(s) {sorted(missing)} without default" if missing else None


def query_finding(code: str, message: str, query: Query, app_version: int, step: Step) -> Finding:
    """A finding on an old query, naming its app version and the step that breaks it."""
    text = f"{message} (app version {app_version}, query {query.name}; broken by step {step.label})"
    return finding(code, text, query.path, query.line, step.label, query.sql, f"query {query.name}")


def own_version(query: Query, app_version: int) -> bool:
    """True when ``app_version`` introduced ``query`` (or where it comes from is unknown).

    A query that cannot be checked at all is reported there, once, not again at every later
    step it is checked against."""
    return query.version is None or query.version == app_version


def unchecked_finding(code: str, message: str, query: Query, app_version: int, step: Step) -> Finding:
    """A finding on an old query that could not be checked against ``step`` at all: not the
    step's doing, so the message does not blame it (TDB205, or TDB001 for unbindable parameters)."""
    text = f"{message} (app version {app_version}, query {query.name}; not checked against step {step.label})"
    return finding(code, text, query.path, query.line, step.label, query.sql, f"query {query.name}")


def lint_queries(
    queries: list[Query],
    old: sqlite3.Connection,
    new: sqlite3.Connection,
    old_schema: Schema,
    new_schema: Schema,
    app_version: int,
    step: Step,
) -> list[Finding]:
    """Findings for the queries of ``app_version`` once a tenant is migrated by ``step``."""
    findings = []

    def report(code: str, message: str, query: Query) -> None:
        findings.append(query_finding(code, message, query, app_version, step))

    for query in queries:
        try:
            old_error = _prepare(old, query.sql)
        except QueryParameterError as exc:
            if own_version(query, app_version):
                findings.append(unchecked_finding("TDB001", str(exc), query, app_version, step))
            continue
        if old_error is not None:  # broken on its own version already: not this migration's doing
            if own_version(query, app_version):
                broken = f"the query does not run on the schema of its own app version: {old_error}"
                findings.append(unchecked_finding("TDB205", broken, query, app_version, step))
            continue
        error = _prepare(new, query.sql)
        if error is not None:
            code = "TDB203" if "ambiguous" in error else "TDB201"
            report(code, error, query)
            continue
        if (message := new_not_null(query.sql, old_schema, new_schema)) is not None:
            report("TDB202", message, query)
        if "*" in query.sql and query.sql.lstrip().upper().startswith(("SELECT", "WITH")):
            before, after = _columns(old, query.sql), _columns(new, query.sql)
            if before is not None and after is not None and before != after:
                report("TDB204", f"SELECT * returned {list(before)}, now {list(after)}", query)
    return findings
