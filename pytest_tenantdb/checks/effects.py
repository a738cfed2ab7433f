"""What a step wrote: which tables and columns it changed on purpose.

The *data kept* check compares every other table and column before and after a step. The
statements a step ran (recorded with sqlite3's trace callback, so SQL and Python steps alike)
are read with sqlglot:

- ``UPDATE t SET a = ...``: column ``t.a`` is written (and triggers on ``t`` may write more);
- ``INSERT INTO t (a, b) SELECT a, f(b) FROM s``: ``t.b`` is written, ``t.a`` is a plain copy;
  ``INSERT ... VALUES``: ``t`` gains rows; ``DELETE FROM t``: ``t`` loses rows;
- ``ALTER TABLE a RENAME TO b`` carries what was said of ``a`` to ``b`` (the 12-step rebuild);
  ``RENAME COLUMN x TO y`` maps old data to its new name;
- a statement sqlglot cannot read marks every table it names as written (nothing is claimed
  about what it did, so nothing is wrongly reported).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class StepEffects:
    """Tables and columns a step changed on purpose (all names lower-case)."""

    written_columns: dict[str, set[str]] = field(default_factory=dict)
    whole_tables: set[str] = field(default_factory=set)
    rows_added: set[str] = field(default_factory=set)
    column_renames: dict[str, dict[str, str]] = field(default_factory=dict)
    renamed_from: dict[str, str] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    refilled: set[str] = field(default_factory=set)  # filled with INSERT ... SELECT

    known: set[str] = field(default_factory=set)  # tables before or after the step

    @property
    def recreated(self) -> set[str]:
        """Tables dropped and created again under the same name with none of their rows copied
        (neither an ``INSERT ... SELECT`` into the new table nor a filled or existing table
        renamed into place: a new, empty one renamed into place counts as created again)."""
        emptied = set()
        for table in self.dropped - self.refilled:
            source = self.renamed_from.get(table)
            if source is None or (source not in self.refilled and source not in self.known):
                emptied.add(table)
        return emptied

    def write(self, table: str, column: str) -> None:
        self.written_columns.setdefault(table, set()).add(column)

    def column_written(self, table: str, column: str) -> bool:
        return table in self.whole_tables or column in self.written_columns.get(table, set())

    def source_table(self, table: str) -> str:
        """The table whose rows ``table`` holds after the step (through renames)."""
        return self.renamed_from.get(table, table)


_HARMLESS = ("CREATE", "DROP", "PRAGMA", "ANALYZE", "VACUUM", "REINDEX")
_CREATE_AS = re.compile(r"\s*CREATE\s+(TEMP\w*\s+)?TABLE\b.*\bAS\s+SELECT\b", re.IGNORECASE | re.DOTALL)


def _may_write(command: str, text: str) -> bool:
    """Whether a statement sqlglot could not model may change rows (CREATE TRIGGER does not)."""
    return command.upper() not in _HARMLESS or bool(_CREATE_AS.match(text))


def analyse(statements: list[str], known_tables: set[str], triggers: dict[str, str]) -> StepEffects:
    """Effects of ``statements`` (as run), given the tables and triggers that exist."""
    import logging

    import sqlglot
    from sqlglot import exp

    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # triggers fall back to Command: expected
    known = {t.lower() for t in known_tables}
    effects = StepEffects(known=known)
    copies: dict[str, str] = {}  # new table -> table its rows were copied from

    def unknown(sql: str) -> None:
        for word in _WORD.findall(sql):
            if word.lower() in known or word.lower() in copies:
                effects.whole_tables.add(word.lower())

    def fire_triggers(table: str) -> None:
        for sql in triggers.values():
            match = re.search(r"\bON\s+[\"`\[]?(\w+)", sql, re.IGNORECASE)
            if match and match[1].lower() == table:
                body = sql[sql.upper().find("BEGIN") + 5 : sql.upper().rfind("END")]
                for statement in body.split(";"):
                    if statement.strip():
                        visit(statement, from_trigger=True)

    def visit(sql: str, from_trigger: bool = False) -> None:
        text = sql.strip()
        if not text or text.startswith("--"):
            return
        try:
            tree = sqlglot.parse_one(text, read="sqlite")
        except sqlglot.errors.SqlglotError:
            unknown(text)
            return
        if isinstance(tree, exp.Update):
            table = tree.this.name.lower()
            for assignment in tree.expressions:
                target = assignment.this
                effects.write(table, (target.name if isinstance(target, exp.Column) else str(target)).lower())
            if not from_trigger:
                fire_triggers(table)
        elif isinstance(tree, exp.Insert):
            target = tree.this
            table = (target.this.name if isinstance(target, exp.Schema) else target.name).lower()
            columns = [c.name.lower() for c in target.expressions] if isinstance(target, exp.Schema) else []
            select = tree.expression
            if isinstance(select, exp.Select):
                effects.refilled.add(table)
            if isinstance(select, exp.Select) and columns:
                source = select.args.get("from") or select.args.get("from_")
                if source is not None and isinstance(source.this, exp.Table):
                    copies[table] = source.this.name.lower()
                for column, projection in zip(columns, select.expressions, strict=False):
                    value = projection.this if isinstance(projection, exp.Alias) else projection
                    if not (isinstance(value, exp.Column) and value.name.lower() == column):
                        effects.write(table, column)
            else:
                effects.rows_added.add(table)
            if not from_trigger:
                fire_triggers(table)
        elif isinstance(tree, exp.Delete):
            effects.whole_tables.add(tree.this.name.lower())
        elif isinstance(tree, exp.Drop) and str(tree.args.get("kind") or "").upper() == "TABLE":
            for node in tree.args.get("tables") or [tree.this]:
                name = getattr(node, "name", "")
                if name and name.lower() in known:
                    effects.dropped.add(name.lower())
        elif isinstance(tree, exp.Alter):
            table = tree.this.name.lower()
            for action in tree.args.get("actions") or []:
                if isinstance(action, exp.AlterRename):
                    new = action.this.name.lower()
                    origin = copies.get(table, table)
                    effects.renamed_from[new] = effects.renamed_from.get(origin, origin)
                    if table in effects.written_columns:
                        effects.written_columns[new] = effects.written_columns.pop(table)
                    if table in effects.whole_tables:
                        effects.whole_tables.add(new)
                elif isinstance(action, exp.RenameColumn):
                    old = action.this.name.lower()
                    effects.column_renames.setdefault(table, {})[old] = action.args["to"].name.lower()
        elif isinstance(tree, exp.Command) and _may_write(tree.name, text):
            unknown(text)

    for statement in statements:
        try:
            visit(statement)
        except (AttributeError, TypeError, KeyError):  # a tree of a shape sqlglot rarely makes
            unknown(statement)
    return effects
