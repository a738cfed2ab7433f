"""What every rule pass reads: one step, the schemas around it, and its statements parsed once.

sqlglot parses each statement of the step once (``sqltext.parse_statement``, cached by text:
the static schema builder of other dialects reads the same trees). One walk over the parsed statements, in
order, records what the step *means* to do: tables created, copied into, dropped and renamed
(following a temporary table through the 12-step rebuild to the name it ends under), columns
added, dropped and renamed (in place, or by copying ``old`` into ``new`` during a rebuild), and
indexes, triggers and views dropped on purpose. Rules compare the schemas before and after the
step and use these facts for intent (a rename, not a drop and an add) and to cite the statement
that causes each finding.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.migrations import SqlStep, Step
from pytest_tenantdb.migrations.statements import Statement
from pytest_tenantdb.migrations.steps import names_table, source_words
from pytest_tenantdb.schema import Schema, Table
from pytest_tenantdb.sqltext import parse_statement

if TYPE_CHECKING:
    from sqlglot import exp


@dataclass(frozen=True)
class Parsed:
    statement: Statement
    tree: exp.Expr | None  # None: sqlglot could not read the statement


@dataclass(frozen=True)
class Copy:
    """``INSERT INTO target (...) SELECT ... FROM source``: which source column fills each target
    column (lower case; None when the value is computed)."""

    source: str
    columns: dict[str, str | None]
    statement: Statement
    nulls: frozenset[str] = frozenset()  # target columns filled with a NULL literal


@dataclass(frozen=True)
class Unbounded:
    """An UPDATE or DELETE without WHERE on a table that existed before the step."""

    statement: Statement
    table: str
    sets: frozenset[str]  # the columns an UPDATE sets (empty for a DELETE)


@dataclass
class StepFacts:
    """What the statements of a step say, names in lower case. Tables are named as they end up
    after the step; ``source`` names are those before it."""

    table_renames: dict[str, str] = field(default_factory=dict)  # existing table -> its new name
    column_renames: dict[tuple[str, str], str] = field(default_factory=dict)  # in place
    dropped_tables: dict[str, Statement] = field(default_factory=dict)  # existing tables
    created: dict[str, Statement] = field(default_factory=dict)  # CREATE TABLE of the final name
    copies: dict[str, Copy] = field(default_factory=dict)
    column_origin: dict[tuple[str, str], Statement] = field(default_factory=dict)
    dropped_indexes: dict[str, Statement] = field(default_factory=dict)
    created_indexes: dict[str, Statement] = field(default_factory=dict)
    dropped_triggers: dict[str, Statement] = field(default_factory=dict)
    dropped_views: dict[str, Statement] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)  # tables the step UPDATEs or DELETEs from
    deleted: set[str] = field(default_factory=set)  # tables the step DELETEs from
    updated: dict[str, set[str]] = field(default_factory=dict)  # table -> columns an UPDATE sets
    copied_from: set[str] = field(default_factory=set)  # tables an INSERT ... SELECT reads
    unreadable: list[Statement] = field(default_factory=list)
    unbounded: list[Unbounded] = field(default_factory=list)


class StepContext:
    """One step as the rules see it. ``old_code`` is the SQL of the app version still in service
    (None: no app code is configured, so whether old code uses something is unknown)."""

    def __init__(
        self,
        step: Step,
        before: Schema,
        after: Schema,
        old_code: list[str] | None = None,
        dialect: str = "sqlite",
        ran: Sequence[Statement] | None = None,
        failed: bool = False,
    ) -> None:
        self.step = step
        self.before = before
        self.after = after
        self.old_code = old_code
        self.dialect = dialect
        self.failed = failed  # the step does not run: only statement rules apply
        statements = list(step.up) if isinstance(step, SqlStep) else list(ran or ())
        self.statements = [Parsed(s, parse_statement(s.sql, dialect)) for s in statements]
        self.before_tables = {t.lower(): t for t in before.tables}
        self.after_tables = {t.lower(): t for t in after.tables}
        self.facts = _walk(self.statements, self.before_tables)
        self._renames: dict[str, dict[str, str]] = {}
        self.rebuilt = {
            t
            for t in self.before_tables
            if t in self.after_tables and (t in self.facts.dropped_tables or t in self.facts.created)
        }

    # -- reporting -----------------------------------------------------------------------------

    def finding(
        self, code: str, message: str, subject: str, statement: Statement | None, severity: str | None = None
    ) -> Finding:
        """A finding of ``code`` on this step, citing ``statement`` (file:line and its text)."""
        from dataclasses import replace

        from pytest_tenantdb.lint.rules import finding

        line, sql = (statement.line, statement.sql) if statement else (1, "")
        found = finding(code, message, self.step.path, line, self.step.label, sql, subject)
        return replace(found, severity=severity) if severity else found

    def cause(self, table: str, column: str | None = None) -> Statement | None:
        """The statement that gives ``table`` (or its ``column``) the shape it has after the step:
        the ALTER on the column, else the CREATE of the table the rebuild renames into place,
        else the one that drops it, else the first statement naming it."""
        facts, lower = self.facts, table.lower()
        if column is not None and (lower, column.lower()) in facts.column_origin:
            return facts.column_origin[(lower, column.lower())]
        for found in (facts.created.get(lower), facts.dropped_tables.get(lower)):
            if found is not None:
                return found
        renamed = facts.table_renames.get(lower)
        if renamed is not None and renamed in facts.created:
            return facts.created[renamed]
        return self.mentioning(table, *([column] if column else []))

    def mentioning(self, *names: str) -> Statement | None:
        """The first statement whose words include every one of ``names``."""
        for parsed in self.statements:
            text = parsed.statement.sql.lower()
            if all(re.search(rf"\b{re.escape(n.lower())}\b", text) for n in names):
                return parsed.statement
        return self.statements[0].statement if self.statements else None

    def emptied(self, lower: str) -> bool:
        """The step drops the table and creates it again with none of its rows copied in."""
        return lower in self.rebuilt and lower not in self.facts.copies

    def cleans(self, table: str, columns: Collection[str]) -> bool:
        """Whether the step cleans ``table``'s data before constraining ``columns``: it deletes
        rows, or updates columns that already held data (not a fill of a column it adds), or, for
        a Python-driven step whose deletes depend on the data (none run on the checker's empty
        tables), its source deletes rows of that table or of the Django model stored in it."""
        lower = table.lower()
        if lower in self.facts.deleted:
            return True
        existing = (
            {c.name.lower() for c in self.old_table(lower).columns} if lower in self.before_tables else set()
        )
        if self.facts.updated.get(lower, set()) & existing & {c.lower() for c in columns}:
            return True
        return self.source_writes(lower, ("delete",))

    def source_writes(self, table: str, verbs: tuple[str, ...]) -> bool:
        """For a Python-driven step, whether its source names ``table`` (or the Django model
        stored in it) and one of ``verbs``: its data migrations write only when there are rows,
        so on the checker's empty tables they run no statement to see."""
        if self.hand_written:
            return False
        words = self._source_words
        return any(v in words for v in verbs) and names_table(words, table)

    @functools.cached_property
    def _source_words(self) -> frozenset[str]:
        """The words of a Python-driven step's own source (its operations name what it drops)."""
        return source_words(self.step.path) or frozenset()

    @property
    def hand_written(self) -> bool:
        """The step's SQL is its own (a SQL step), not generated by Alembic, Django or Python
        code from declared operations."""
        return isinstance(self.step, SqlStep)

    def dropped_on_purpose(self, kind: str, name: str) -> bool:
        """Whether the step says it drops index/trigger ``name``: a ``DROP`` statement, or for a
        Python-driven step (Alembic batch mode and Django rebuild tables without emitting a
        ``DROP INDEX``) its source naming the object, as in ``batch_op.drop_index("ix_a")``."""
        dropped = self.facts.dropped_indexes if kind == "index" else self.facts.dropped_triggers
        if name.lower() in dropped:
            return True
        return not self.hand_written and name.lower() in self._source_words

    # -- old code ------------------------------------------------------------------------------

    def old_code_uses(self, table: str, *columns: str) -> bool | None:
        """Whether old app code names ``table`` (and ``columns``; ``SELECT *`` counts);
        None when no app code is configured."""
        if self.old_code is None:
            return None
        cleaned = [re.sub(r"'(?:[^']|'')*'|[:@$]\w+", " ", sql) for sql in self.old_code]

        def uses(sql: str, name: str) -> bool:
            return bool(re.search(rf"\b{re.escape(name)}\b", sql, re.IGNORECASE))

        return any(
            uses(sql, table) and (all(uses(sql, c) for c in columns) or bool(columns and "*" in sql))
            for sql in cleaned
        )

    # -- intent --------------------------------------------------------------------------------

    def column_renames(self, table: str) -> dict[str, str]:
        """Old -> new column names of ``table`` (lower case): ``RENAME COLUMN``, or a rebuild that
        copies old ``a`` into new ``b`` where the new table has no ``a`` and the old had no ``b``."""
        lower = table.lower()
        if lower not in self._renames:
            self._renames[lower] = self._column_renames(lower)
        return self._renames[lower]

    def _column_renames(self, lower: str) -> dict[str, str]:
        found = {old: new for (t, old), new in self.facts.column_renames.items() if t == lower}
        copy = self.facts.copies.get(lower)
        if copy is None or copy.source != lower or lower not in self.rebuilt:
            return found
        old_cols = {c.name.lower() for c in self.before.tables[self.before_tables[lower]].columns}
        new_cols = {c.name.lower() for c in self.after.tables[self.after_tables[lower]].columns}
        for target, source in copy.columns.items():
            if (
                source
                and source != target
                and source in old_cols - new_cols
                and target in new_cols - old_cols
            ):
                found[source] = target
        return found

    def old_table(self, lower: str) -> Table:
        return self.before.tables[self.before_tables[lower]]

    def new_table(self, lower: str) -> Table:
        return self.after.tables[self.after_tables[lower]]

    def changed_tables(self) -> list[str]:
        """Tables (lower case) that exist before and after the step and that it may have changed."""
        return self._changed

    @functools.cached_property
    def _changed(self) -> list[str]:
        touched = {
            i.table.lower() for n, i in self.after.indexes.items() if self.before.indexes.get(n) is not i
        }
        touched |= {i.table.lower() for n, i in self.before.indexes.items() if n not in self.after.indexes}
        return [
            lower
            for lower in self.after_tables
            if lower in self.before_tables
            and (
                self.old_table(lower) is not self.new_table(lower)
                or lower in self.rebuilt
                or lower in touched
            )
        ]


def _name(node: exp.Expr | None) -> str:
    return str(getattr(node, "name", "") or "").lower()


def _table_of(node: exp.Expr) -> exp.Expr:
    from sqlglot import exp

    return node.this if isinstance(node, exp.Schema) else node


def _walk(statements: list[Parsed], before: dict[str, str]) -> StepFacts:
    facts = StepFacts()
    names = _Names()
    for parsed in statements:
        if parsed.tree is None:
            facts.unreadable.append(parsed.statement)
            continue
        try:
            _visit(facts, names, parsed.statement, parsed.tree, before)
        except (AttributeError, TypeError, KeyError, IndexError):  # a tree of a shape sqlglot rarely makes
            facts.unreadable.append(parsed.statement)
    return facts


class _Names:
    """Which pre-existing table each current name holds (``ALTER TABLE t RENAME TO t_old``
    keeps ``t``'s rows under ``t_old``), and the column lists of tables created in the step."""

    def __init__(self) -> None:
        self.holds: dict[str, str] = {}
        self.create_columns: dict[str, list[str]] = {}


def _visit(
    facts: StepFacts, names: _Names, statement: Statement, tree: exp.Expr, before: dict[str, str]
) -> None:
    from sqlglot import exp

    kind = str(tree.args.get("kind") or "").upper() if isinstance(tree, exp.Create | exp.Drop) else ""
    if isinstance(tree, exp.Create) and kind == "TABLE":
        table = _name(_table_of(tree.this))
        facts.created[table] = statement
        names.holds.pop(table, None)
        columns = (
            [_name(c) for c in tree.this.expressions if isinstance(c, exp.ColumnDef)]
            if isinstance(tree.this, exp.Schema)
            else []
        )
        names.create_columns[table] = columns
        for key in [k for k in facts.column_origin if k[0] == table]:
            del facts.column_origin[key]
        for column in columns:
            facts.column_origin[(table, column)] = statement
    elif isinstance(tree, exp.Create) and kind == "INDEX":
        facts.created_indexes[_name(tree.this)] = statement
    elif isinstance(tree, exp.Insert):
        target = tree.this
        table = _name(_table_of(target))
        select = tree.expression
        if isinstance(select, exp.Select):
            source = select.args.get("from") or select.args.get("from_")
            if source is not None and isinstance(source.this, exp.Table):
                origin = names.holds.get(_name(source.this), _name(source.this))
                columns = (
                    [_name(c) for c in target.expressions]
                    if isinstance(target, exp.Schema)
                    else names.create_columns.get(table, [])
                )
                mapping: dict[str, str | None] = {}
                for column, projection in zip(columns, select.expressions, strict=False):
                    value = projection.this if isinstance(projection, exp.Alias) else projection
                    mapping[column] = _name(value) if isinstance(value, exp.Column) else None
                if any(isinstance(p, exp.Star) for p in select.expressions) and not isinstance(
                    target, exp.Schema
                ):
                    mapping = {c: c for c in columns}
                nulls = frozenset(
                    c
                    for c, p in zip(columns, select.expressions, strict=False)
                    if isinstance(p.this if isinstance(p, exp.Alias) else p, exp.Null)
                )
                facts.copies[table] = Copy(origin, mapping, statement, nulls)
                facts.copied_from.add(origin)
                if table in facts.created:  # a copy holds the rows of the table it copies
                    names.holds.setdefault(table, origin)
    elif isinstance(tree, exp.Drop):
        targets = [_name(_table_of(n)) for n in tree.args.get("tables") or [tree.this] if n is not None]
        for name in targets:
            if kind == "TABLE":
                held = names.holds.pop(name, None)
                if held is not None or (name in before and name not in facts.created):
                    facts.dropped_tables[held or name] = statement
                if held is not None and facts.table_renames.get(held) == name:
                    del facts.table_renames[held]  # renamed out of the way, then dropped
                facts.created.pop(name, None)
                facts.copies.pop(name, None)
            elif kind == "INDEX":
                facts.dropped_indexes[name] = statement
            elif kind == "TRIGGER":
                facts.dropped_triggers[name] = statement
            elif kind == "VIEW":
                facts.dropped_views[name] = statement
    elif isinstance(tree, exp.Alter):
        table = _name(tree.this)
        for action in tree.args.get("actions") or []:
            if isinstance(action, exp.AlterRename):
                new = _name(action.this)
                _move(facts, names, table, new, before)
            elif isinstance(action, exp.RenameColumn):
                old, new = _name(action.this), _name(action.args["to"])
                facts.column_renames[(table, old)] = new
                facts.column_origin[(table, new)] = statement
            elif isinstance(action, exp.ColumnDef):
                facts.column_origin[(table, _name(action))] = statement
            elif isinstance(action, exp.Drop):
                facts.column_origin[(table, _name(action.this))] = statement
    elif isinstance(tree, exp.Update | exp.Delete):
        table = _name(tree.this)
        facts.written.add(table)
        set_columns = {_name(e.this) for e in tree.expressions if isinstance(e, exp.EQ)}
        if isinstance(tree, exp.Delete):
            facts.deleted.add(table)
        else:
            facts.updated.setdefault(table, set()).update(set_columns)
        if tree.args.get("where") is None and table not in facts.created:
            if isinstance(tree, exp.Delete) and table in facts.copied_from:
                return  # a move: the rows were copied elsewhere first
            facts.unbounded.append(Unbounded(statement, table, frozenset(set_columns)))


def _move(facts: StepFacts, names: _Names, old: str, new: str, before: dict[str, str]) -> None:
    """``ALTER TABLE old RENAME TO new``: what was said of ``old`` is now said of ``new``."""
    if old in facts.created:  # a table made in this step (the rebuild's temporary table)
        facts.created[new] = facts.created.pop(old)
        if old in facts.copies:
            facts.copies[new] = facts.copies.pop(old)
        names.create_columns[new] = names.create_columns.pop(old, [])
        origin = names.holds.pop(old, None)  # the existing table whose rows it holds, if any
    else:  # an existing table under a new name
        origin = names.holds.pop(old, old if old in before else None)
    if origin is not None:
        names.holds[new] = origin
        if new != origin:
            facts.table_renames[origin] = new  # the rebuilt table renamed too (Alembic batch, then rename)
        else:
            facts.table_renames.pop(origin, None)  # back under its own name: the 12-step rebuild
    for key in [k for k in facts.column_origin if k[0] == new]:
        del facts.column_origin[key]
    for key in [k for k in facts.column_origin if k[0] == old]:
        facts.column_origin[(new, key[1])] = facts.column_origin.pop(key)
