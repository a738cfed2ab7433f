"""A schema built statically from DDL with sqlglot, for dialects with no local engine (postgres).

SQLite schemas come from introspecting the cached templates, which is exact. For postgres the
steps are parsed and applied to a :class:`~pytest_tenantdb.schema.Schema` in memory: tables,
columns (type, NOT NULL, default, primary key), UNIQUE, CHECK, foreign keys, indexes, views.
What cannot be modelled (a Python step, an unparsable statement) is returned, never dropped.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from pytest_tenantdb.migrations.statements import Statement
from pytest_tenantdb.schema import Column, ForeignKey, Index, Schema, Table, View
from pytest_tenantdb.sqltext import parse_statement

if TYPE_CHECKING:
    from sqlglot import exp

_T = TypeVar("_T")

_NO_SCHEMA_CHANGE = re.compile(
    r"\s*(COMMENT|GRANT|REVOKE|SET|VACUUM|ANALYZE|REINDEX|CLUSTER|"
    r"ALTER\s+TABLE\s+\S+\s+VALIDATE\s+CONSTRAINT|ALTER\s+INDEX\s+\S+\s+RENAME)\b",
    re.IGNORECASE,
)


def _name(node: exp.Expr) -> str:
    """A name as the statement writes it: messages show it so; comparisons ignore case."""
    return str(node.name if hasattr(node, "name") else node)


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _key(objects: dict[str, _T], name: str) -> str:
    """The key ``objects`` holds ``name`` under, whatever its case (``name`` when it has none):
    ``ALTER TABLE users`` finds the table created as ``Users``."""
    return next((key for key in objects if _same(key, name)), name)


def _column(
    definition: exp.Expr, dialect: str, position: int
) -> tuple[Column, list[str], ForeignKey | None, bool]:
    from sqlglot import exp

    notnull = pk = unique = False
    default: str | None = None
    checks: list[str] = []
    fk = None
    for constraint in definition.args.get("constraints") or []:
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint):
            notnull = not kind.args.get("allow_null")
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            pk = notnull = True
        elif isinstance(kind, exp.DefaultColumnConstraint):
            default = kind.this.sql(dialect)
        elif isinstance(kind, exp.UniqueColumnConstraint):
            unique = True
        elif isinstance(kind, exp.CheckColumnConstraint):
            checks.append(kind.this.sql(dialect))
        elif isinstance(kind, exp.Reference):
            target = kind.this
            ref_table = _name(target.this if isinstance(target, exp.Schema) else target)
            ref_cols = (
                tuple(_name(c) for c in target.expressions) if isinstance(target, exp.Schema) else (None,)
            )
            fk = ForeignKey((_name(definition.this),), ref_table, ref_cols)
    kind = definition.args.get("kind")
    column = Column(
        _name(definition.this),
        kind.sql(dialect).upper() if kind else "",
        notnull,
        default,
        position if pk else 0,
    )
    return column, checks, fk, unique


class _Builder:
    def __init__(self, schema: Schema, dialect: str) -> None:
        self.dialect = dialect
        self.tables = dict(schema.tables)
        self.indexes = dict(schema.indexes)
        self.views = dict(schema.views)
        self.triggers = dict(schema.triggers)

    def schema(self) -> Schema:
        return Schema(self.tables, self.indexes, self.views, self.triggers)

    def create_table(self, tree: exp.Expr, sql: str) -> None:
        from sqlglot import exp

        target = tree.this
        name = _name(target.this)
        self.tables.pop(_key(self.tables, name), None)  # (CREATE over a dropped one of another case)
        columns: list[Column] = []
        checks: list[str] = []
        fks: list[ForeignKey] = []
        uniques: list[tuple[str, ...]] = []
        for n, item in enumerate(target.expressions, start=1):
            if isinstance(item, exp.ColumnDef):
                column, col_checks, fk, unique = _column(item, self.dialect, n)
                columns.append(column)
                checks += col_checks
                fks += [fk] if fk else []
                uniques += [(column.name,)] if unique or column.pk else []
            elif isinstance(item, exp.PrimaryKey):
                keys = tuple(_name(c) for c in item.expressions)
                lowered = [k.lower() for k in keys]
                columns = [
                    replace(c, pk=lowered.index(c.name.lower()) + 1, notnull=True)
                    if c.name.lower() in lowered
                    else c
                    for c in columns
                ]
                uniques.append(keys)
            else:
                self._table_constraint(item, checks, fks, uniques)
        self.tables[name] = Table(
            name, tuple(columns), sql, tuple(fks), tuple(sorted(set(uniques))), tuple(checks)
        )

    def _table_constraint(
        self, item: exp.Expr, checks: list[str], fks: list[ForeignKey], uniques: list[tuple[str, ...]]
    ) -> None:
        from sqlglot import exp

        for part in item.expressions if isinstance(item, exp.Constraint) else [item]:
            if isinstance(part, exp.CheckColumnConstraint):
                checks.append(part.this.sql(self.dialect))
            elif isinstance(part, exp.ForeignKey):
                ref = part.args.get("reference")
                target = ref.this if ref is not None else None
                ref_table = (
                    _name(target.this if isinstance(target, exp.Schema) else target)
                    if target is not None
                    else ""
                )
                ref_cols = (
                    tuple(_name(c) for c in target.expressions) if isinstance(target, exp.Schema) else (None,)
                )
                fks.append(ForeignKey(tuple(_name(c) for c in part.expressions), ref_table, ref_cols))
            elif isinstance(part, exp.UniqueColumnConstraint) and isinstance(part.this, exp.Schema):
                uniques.append(tuple(_name(c) for c in part.this.expressions))

    def alter(self, tree: exp.Expr) -> None:
        from sqlglot import exp

        name = _key(self.tables, _name(tree.this))
        table = self.tables.get(name)
        if table is None:
            return
        for action in tree.args.get("actions") or []:
            columns = list(table.columns)
            if isinstance(action, exp.ColumnDef):
                column, checks, fk, unique = _column(action, self.dialect, 0)
                table = replace(
                    table,
                    columns=(*columns, column),
                    checks=(*table.checks, *checks),
                    foreign_keys=(*table.foreign_keys, *([fk] if fk else [])),
                    unique_sets=(*table.unique_sets, *([(column.name,)] if unique else [])),
                )
            elif isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN":
                gone = {
                    _name(c).lower() for c in action.args.get("tables") or action.expressions or [action.this]
                }
                table = replace(table, columns=tuple(c for c in columns if c.name.lower() not in gone))
            elif isinstance(action, exp.RenameColumn):
                old, new = _name(action.this), _name(action.args["to"])
                table = replace(
                    table, columns=tuple(replace(c, name=new) if _same(c.name, old) else c for c in columns)
                )
            elif isinstance(action, exp.AlterRename):
                new_name = _name(action.this)
                self.tables.pop(name)
                name, table = new_name, replace(table, name=new_name)
            elif isinstance(action, exp.AlterColumn):
                target = _name(action.this)
                table = replace(
                    table,
                    columns=tuple(
                        self._alter_column(c, action) if _same(c.name, target) else c for c in columns
                    ),
                )
            elif isinstance(action, exp.AddConstraint):
                checks, fks, uniques = list(table.checks), list(table.foreign_keys), list(table.unique_sets)
                for item in action.expressions:
                    self._table_constraint(item, checks, fks, uniques)
                table = replace(
                    table, checks=tuple(checks), foreign_keys=tuple(fks), unique_sets=tuple(uniques)
                )
        self.tables[name] = table

    def _alter_column(self, column: Column, action: exp.Expr) -> Column:
        if action.args.get("dtype") is not None:
            return replace(column, type=action.args["dtype"].sql(self.dialect).upper())
        if action.args.get("allow_null") is False:
            return replace(column, notnull=True)
        if action.args.get("allow_null") is True:
            return replace(column, notnull=False)
        if action.args.get("drop"):
            return replace(column, default=None)
        if action.args.get("default") is not None:
            return replace(column, default=action.args["default"].sql(self.dialect))
        return column

    def create_index(self, tree: exp.Expr, sql: str) -> None:
        index = tree.this
        params = index.args.get("params")
        columns = tuple(_name(o.this) for o in (params.args.get("columns") or [])) if params else ()
        table = _key(self.tables, _name(index.args.get("table")))
        name = _name(index.this)
        self.indexes.pop(_key(self.indexes, name), None)
        self.indexes[name] = Index(name, table, columns, bool(tree.args.get("unique")), sql)

    def drop(self, tree: exp.Expr) -> None:
        kind = (tree.args.get("kind") or "").upper()
        for item in tree.args.get("tables") or tree.expressions or [tree.this]:
            name = _name(item)
            if kind == "TABLE":
                self.tables.pop(_key(self.tables, name), None)
                self.indexes = {k: v for k, v in self.indexes.items() if not _same(v.table, name)}
            elif kind == "INDEX":
                self.indexes.pop(_key(self.indexes, name), None)
            elif kind == "VIEW":
                self.views.pop(_key(self.views, name), None)


def apply_ddl(schema: Schema, statements: list[Statement], dialect: str) -> tuple[Schema, list[Statement]]:
    """``schema`` after ``statements``, and the statements that could not be read."""
    builder = _Builder(schema, dialect)
    unread: list[Statement] = []
    for statement in statements:
        tree = parse_statement(statement.sql, dialect)  # the tree the rules read too
        if tree is None:
            unread.append(statement)
            continue
        try:
            if not _apply(builder, tree, statement.sql):
                unread.append(statement)
        except (AttributeError, TypeError, KeyError, ValueError):  # a tree of an unexpected shape
            unread.append(statement)
    return builder.schema(), unread


def _apply(builder: _Builder, tree: exp.Expr, sql: str) -> bool:
    """Apply one parsed statement; False when it may change the schema in a way not modelled."""
    from sqlglot import exp

    kind = (tree.args.get("kind") or "").upper() if isinstance(tree, exp.Create | exp.Drop) else ""
    if isinstance(tree, exp.Create) and kind == "TABLE" and isinstance(tree.this, exp.Schema):
        builder.create_table(tree, sql)
    elif isinstance(tree, exp.Create) and kind == "INDEX":
        builder.create_index(tree, sql)
    elif isinstance(tree, exp.Create) and kind == "VIEW":
        builder.views.pop(_key(builder.views, _name(tree.this)), None)
        builder.views[_name(tree.this)] = View(_name(tree.this), sql)
    elif isinstance(tree, exp.Alter):
        builder.alter(tree)
    elif isinstance(tree, exp.Drop):
        builder.drop(tree)
    elif isinstance(tree, exp.Command) and not _NO_SCHEMA_CHANGE.match(sql):
        return False
    return True
