"""Query rules without a local engine (postgres): sqlglot resolves each old query against the
schema built from the DDL, where SQLite would prepare it (``query.py``).

sqlglot's ``qualify`` raises one error type for unknown and ambiguous columns alike, does not see
an unknown table behind ``SELECT *`` and does not check the columns of INSERT, UPDATE and DELETE,
so tables, the columns written and the columns of UPDATE/DELETE conditions are resolved here; an
unresolved column is ambiguous when two tables of the query have it. Like the SQLite rules, a
query is only blamed on a migration when it resolves on its own version; one that does not is
TDB205, once. sqlglot reads the postgres parameter styles (``$1``, ``%s``, ``%(name)s``,
``:name``) as parameters, never as columns.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.lint.rules.query import new_not_null, own_version, query_finding, unchecked_finding
from pytest_tenantdb.migrations import Step
from pytest_tenantdb.queries import Query
from pytest_tenantdb.schema import Schema

if TYPE_CHECKING:
    from sqlglot import exp

_UNRESOLVED = re.compile(r"Column '([^']+)' could not be resolved|Unknown column: (\S+)")

Problem = tuple[str, str]  # (rule code, message)


class Resolver:
    """The names of one schema as sqlglot sees them; built once per version (a plain dict per
    query is several times slower)."""

    def __init__(self, schema: Schema, dialect: str) -> None:
        from sqlglot.schema import MappingSchema

        logging.getLogger("sqlglot").setLevel(logging.ERROR)
        self.schema = schema
        self.dialect = dialect
        self.columns: dict[str, list[str]] = {
            name.lower(): [c.name.lower() for c in table.columns] for name, table in schema.tables.items()
        }
        # names are resolved in lower case (as postgres folds them); messages spell them as written
        self.spelling: dict[str, str] = {}
        for table in schema.tables.values():
            for column in table.columns:
                self.spelling.setdefault(column.name.lower(), column.name)
        self.broken_views: dict[str, str] = {}
        self._add_views()
        self.mapping = MappingSchema(
            {name: dict.fromkeys(cols, "TEXT") for name, cols in self.columns.items()}, dialect=dialect
        )

    def _add_views(self) -> None:
        """Each view's columns, resolved against the tables and the views it reads (in order)."""
        import sqlglot
        from sqlglot import exp
        from sqlglot.schema import MappingSchema

        pending: dict[str, Any] = {}
        for name, view in self.schema.views.items():
            try:
                tree = sqlglot.parse_one(view.sql, read=self.dialect)
            except sqlglot.errors.SqlglotError as exc:
                self.broken_views[name.lower()] = str(exc).splitlines()[0]
                continue
            query = tree.expression if isinstance(tree, exp.Create) else None
            if isinstance(query, exp.Query):
                pending[name.lower()] = query
            else:
                self.broken_views[name.lower()] = "not a view over a query"
        while pending:
            ready = [
                name
                for name, query in pending.items()
                if not {t.name.lower() for t in query.find_all(exp.Table)} & (pending.keys() - {name})
            ] or list(pending)  # a cycle: resolve what is left as it is
            for name in ready:
                query = pending.pop(name)
                mapping = MappingSchema(
                    {n: dict.fromkeys(c, "TEXT") for n, c in self.columns.items()}, dialect=self.dialect
                )
                problems = self._problems(query, mapping)
                if problems:
                    self.broken_views[name] = problems[0][1]
                    continue
                try:
                    self.columns[name] = [c.lower() for c in _selects(self._qualified(query, mapping))]
                except sqlglot.errors.SqlglotError as exc:
                    self.broken_views[name] = str(exc).splitlines()[0]

    # -- what is wrong with a query on this schema ------------------------------------------

    def problems(self, tree: exp.Expr) -> list[Problem]:
        return self._problems(tree, self.mapping)

    def _problems(self, tree: exp.Expr, mapping: Any) -> list[Problem]:
        from sqlglot import exp

        if not isinstance(tree, exp.Query | exp.Insert | exp.Update | exp.Delete):
            return []  # DDL and the like in app code: nothing of the old schema to resolve
        tree = _without_db(tree)
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        problems: list[Problem] = []
        for table in tree.find_all(exp.Table):
            name = table.name.lower()
            if not name or name in ctes:
                continue
            if name in self.broken_views:
                problems.append(
                    ("TDB201", f"view {table.name} no longer resolves: {self.broken_views[name]}")
                )
            elif name not in self.columns:
                problems.append(("TDB201", f"no such table: {table.name}"))
        if problems:
            return problems
        if isinstance(tree, exp.Insert):
            problems += self._insert(tree, mapping)
        elif isinstance(tree, exp.Update | exp.Delete):
            problems += self._write_conditions(tree)
        elif isinstance(tree, exp.Query):
            problems += self._select(tree, mapping)
        return problems

    def _insert(self, tree: exp.Expr, mapping: Any) -> list[Problem]:
        from sqlglot import exp

        target = tree.this
        written = (target.this if isinstance(target, exp.Schema) else target).name
        table = written.lower()
        problems: list[Problem] = []
        if isinstance(target, exp.Schema):
            for column in target.expressions:
                if column.name.lower() not in self.columns[table]:
                    problems.append(("TDB201", f"table {written} has no column named {column.name}"))
        source = tree.expression
        if isinstance(source, exp.Query):
            problems += self._select(source, mapping)
        return problems

    def _write_conditions(self, tree: exp.Expr) -> list[Problem]:
        """The columns an UPDATE sets and the columns its (or a DELETE's) condition reads."""
        from sqlglot import exp

        aliases: dict[str, str] = {}
        for node in tree.find_all(exp.Table):
            if node.find_ancestor(exp.Select) is None:  # the target and its FROM/USING tables
                aliases[(node.alias or node.name).lower()] = node.name.lower()
        sources = list(dict.fromkeys(aliases.values()))
        problems: list[Problem] = []
        for column in tree.find_all(exp.Column):
            if column.find_ancestor(exp.Select) is not None:
                continue  # inside a subquery: resolved by SQL scoping, not checked here
            name = column.name.lower()
            if column.table:
                table = aliases.get(column.table.lower(), column.table.lower())
                if name not in self.columns.get(table, [name]):
                    problems.append(("TDB201", f"no such column: {column.table}.{column.name}"))
                continue
            owners = [t for t in sources if name in self.columns.get(t, ())]
            if not owners:
                problems.append(("TDB201", f"no such column: {column.name}"))
            elif len(owners) > 1:
                problems.append(("TDB203", f"ambiguous column name: {column.name}"))
        return problems

    def _select(self, query: exp.Expr, mapping: Any) -> list[Problem]:
        from sqlglot import exp
        from sqlglot.errors import OptimizeError

        try:
            self._qualified(query, mapping)
        except OptimizeError as exc:
            match = _UNRESOLVED.search(str(exc))
            name = (match[1] or match[2]).lower() if match else ""
            tables = {t.name.lower() for t in query.find_all(exp.Table)}
            owners = [t for t in tables if name in self.columns.get(t, ())]
            written = next((c.name for c in query.find_all(exp.Column) if c.name.lower() == name), name)
            if name and len(owners) > 1:
                return [("TDB203", f"ambiguous column name: {written}")]
            return [("TDB201", f"no such column: {written}" if name else str(exc))]
        return []

    def _qualified(self, query: exp.Expr, mapping: Any) -> exp.Expr:
        from sqlglot.optimizer.qualify import qualify

        return qualify(
            _without_db(query), dialect=self.dialect, schema=mapping, validate_qualify_columns=True
        )

    def spelled(self, columns: tuple[str, ...]) -> list[str]:
        """Column names (lower case, as resolved) spelled as the schema writes them."""
        return [self.spelling.get(c, c) for c in columns]

    def output(self, tree: exp.Expr) -> tuple[str, ...] | None:
        """The columns a query returns (``*`` expanded), or None when it does not resolve."""
        from sqlglot import exp
        from sqlglot.errors import OptimizeError

        if not isinstance(tree, exp.Query):
            return None
        try:
            return tuple(_selects(self._qualified(tree, self.mapping)))
        except OptimizeError:
            return None


def _selects(tree: exp.Expr) -> list[str]:
    """The output column names of a qualified query (none for a statement that is not one)."""
    from sqlglot import exp

    return list(tree.named_selects) if isinstance(tree, exp.Query) else []


def _without_db(tree: exp.Expr) -> exp.Expr:
    """A copy of ``tree`` with schema qualifiers dropped (``public.users`` is ``users``)."""
    from sqlglot import exp

    tree = tree.copy()
    for table in tree.find_all(exp.Table):
        table.set("db", None)
        table.set("catalog", None)
    return tree


def lint_queries_static(
    queries: list[Query], old: Resolver, new: Resolver, app_version: int, step: Step
) -> list[Finding]:
    """Findings for the queries of ``app_version`` once a tenant is migrated by ``step``."""
    import sqlglot

    findings = []

    def report(code: str, message: str, query: Query) -> None:
        findings.append(query_finding(code, message, query, app_version, step))

    for query in queries:
        try:
            tree = sqlglot.parse_one(query.sql, read=new.dialect)
        except sqlglot.errors.SqlglotError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            report("TDB001", f"sqlglot cannot read this query, so it was not checked: {first}", query)
            continue
        try:
            broken = old.problems(tree)
            if broken:  # broken on its own version already: not this migration's doing
                if own_version(query, app_version):
                    message = (
                        f"the query does not resolve on the schema of its own app version: {broken[0][1]}"
                    )
                    findings.append(unchecked_finding("TDB205", message, query, app_version, step))
                continue
            problems = new.problems(tree)
        except (AttributeError, TypeError, KeyError, ValueError) as exc:  # a tree of an unexpected shape
            report("TDB001", f"this query could not be resolved, so it was not checked ({exc})", query)
            continue
        for code, message in problems:
            report(code, message, query)
        if problems:
            continue
        if (not_null := new_not_null(query.sql, old.schema, new.schema, new.dialect)) is not None:
            report("TDB202", not_null, query)
        if any(True for _ in tree.find_all(sqlglot.exp.Star)):
            before, after = old.output(tree), new.output(tree)
            if before is not None and after is not None and before != after:
                report("TDB204", f"SELECT * returned {old.spelled(before)}, now {new.spelled(after)}", query)
    return findings
