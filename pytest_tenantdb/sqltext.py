"""What the SQL text of a schema object says beyond ``PRAGMA`` introspection, read with sqlglot.

SQLite reports columns, keys and indexes through pragmas, but CHECK constraints, collations,
``WITHOUT ROWID`` / ``STRICT`` and partial-index conditions live only in the stored
``CREATE`` text. sqlglot reads them here (never regexes over SQL), normalised so that two
spellings of the same thing compare equal. sqlglot is imported on first use, not at plugin load.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp


@dataclass(frozen=True)
class ColumnCheck:
    """A simple CHECK the seeder can honour and the checker can compare: a numeric range, a max
    length or an IN list."""

    column: str
    low: float | None = None
    high: float | None = None
    choices: tuple[object, ...] | None = None
    max_length: int | None = None

    def allows_all_of(self, other: ColumnCheck) -> bool:
        """True when every value ``other`` allows is allowed here (``other`` implies ``self``)."""
        if self.choices is not None:
            return other.choices is not None and set(other.choices) <= set(self.choices)
        if other.choices is not None and (self.low is not None or self.high is not None):
            numbers = [c for c in other.choices if isinstance(c, int | float)]
            if len(numbers) == len(other.choices):
                return all(self._in_range(float(c)) for c in numbers) and self.max_length is None
        if self.max_length is not None and (other.max_length is None or other.max_length > self.max_length):
            return False
        low_ok = self.low is None or (other.low is not None and other.low >= self.low)
        high_ok = self.high is None or (other.high is not None and other.high <= self.high)
        return low_ok and high_ok

    def _in_range(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True)
class TableClauses:
    """The parts of a CREATE TABLE that the pragmas do not report."""

    checks: tuple[str, ...] = ()  # normalised CHECK expressions, in declaration order
    collations: dict[str, str] = field(default_factory=dict)  # lower-case column -> NOCASE, ...
    without_rowid: bool = False
    strict: bool = False
    read: bool = True  # False when sqlglot could not read the column list


def affinity(declared: str) -> str:
    """The column affinity SQLite derives from a declared type (section 3.1 of its datatype docs):
    ``VARCHAR(30)`` and ``TEXT`` are the same column to SQLite, ``JSON`` is NUMERIC."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in upper or not upper.strip():
        return "BLOB"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


_WORD = re.compile(r"\"((?:[^\"]|\"\")*)\"|`([^`]*)`|\[([^\]]*)\]|'((?:[^']|'')*)'|([A-Za-z_][\w$]*)")


@functools.lru_cache(maxsize=65536)
def name_words(sql: str) -> frozenset[str]:
    """Every name-like word of ``sql``, lower case, quotes removed (string contents included:
    ``PRAGMA table_info('t')`` names a table in a string): the objects a statement may touch."""
    found: set[str] = set()
    for match in _WORD.finditer(sql):
        quoted, backtick, bracket, string, bare = match.groups()
        text = next(t for t in (quoted, backtick, bracket, string, bare) if t is not None)
        found.add(text.lower())
        if string is not None:
            found.update(w.lower() for w in re.findall(r"[A-Za-z_][\w$]*", text))
    return frozenset(found)


@functools.lru_cache(maxsize=16384)
def parse_statement(sql: str, dialect: str) -> exp.Expr | None:
    """sqlglot's tree of one statement, or None when sqlglot cannot read it. Trees are shared
    between callers (the rules, the static schema builder): they read them, never change them."""
    import sqlglot

    _sqlglot()
    try:
        return sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return None


def _sqlglot() -> None:
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # fallbacks to Command are expected


def normalised(expression: exp.Expr, *, lower: bool = True) -> str:
    """One spelling of an expression: sqlglot's SQLite text, identifiers unquoted, lower case
    (for comparisons; ``lower=False`` keeps the names as written, for messages)."""
    from sqlglot import exp

    copy = expression.copy()
    for identifier in copy.find_all(exp.Identifier):
        identifier.set("quoted", False)
    text = str(copy.sql(dialect="sqlite"))
    return text.lower() if lower else text


@functools.lru_cache(maxsize=4096)
def _as_written(sql: str) -> dict[str, str]:
    """The CHECKs, index key expressions and WHERE of one CREATE statement: each normalised
    text mapped to the same text with its names spelled as written."""
    import sqlglot
    from sqlglot import exp

    _sqlglot()
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return {}
    parts: list[exp.Expr] = [c.this for c in tree.find_all(exp.CheckColumnConstraint)]
    parts += [w.this for w in tree.find_all(exp.Where)]
    for params in tree.find_all(exp.IndexParameters):
        for item in params.args.get("columns") or []:
            value = item.this if isinstance(item, exp.Ordered) else item
            parts.append(value.this if isinstance(value, exp.Collate) else value)
    return {normalised(part): normalised(part, lower=False) for part in parts}


def as_written(text: str, sql: str | None) -> str:
    """``text``, a normalised CHECK, index expression or WHERE of the statement ``sql``, with
    its names spelled as ``sql`` writes them (``CHECK (Qty >= 0)``, not ``qty``): messages show
    what the user wrote, comparisons stay case-insensitive. ``text`` itself when not found."""
    return _as_written(sql).get(text, text) if sql else text


def _column_list_end(sql: str) -> tuple[int, list[str], set[str]] | None:
    """Where the column list of a CREATE TABLE closes, the words of the table options after it
    (``WITHOUT ROWID``, ``STRICT``) and the keywords before it, found with sqlglot's tokenizer."""
    from sqlglot.errors import TokenError
    from sqlglot.tokenizer_core import TokenType
    from sqlglot.tokens import Tokenizer

    try:
        tokens = Tokenizer(dialect="sqlite").tokenize(sql)
    except TokenError:
        return None
    depth = 0
    for n, token in enumerate(tokens):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                words = {t.text.upper() for t in tokens[:n] if t.token_type != TokenType.STRING}
                return token.end + 1, [t.text.upper() for t in tokens[n + 1 :]], words
    return None


@functools.lru_cache(maxsize=8192)
def table_clauses(sql: str) -> TableClauses:
    """CHECKs, collations and table options of a ``CREATE TABLE`` statement (cached per text)."""
    import sqlglot
    from sqlglot import exp

    _sqlglot()
    end = _column_list_end(sql)
    if end is None:
        return TableClauses(read=False)
    stop, options, words = end
    if not words & {"CHECK", "COLLATE"}:  # nothing to parse for (most tables): the tokens suffice
        return TableClauses(without_rowid="ROWID" in options, strict="STRICT" in options)
    try:
        tree = sqlglot.parse_one(sql[:stop], read="sqlite")
    except sqlglot.errors.SqlglotError:
        tree = None
    if not isinstance(tree, exp.Create) or not isinstance(tree.this, exp.Schema):
        return TableClauses(without_rowid="ROWID" in options, strict="STRICT" in options, read=False)
    checks = tuple(normalised(c.this) for c in tree.find_all(exp.CheckColumnConstraint, bfs=False))
    collations: dict[str, str] = {}
    for column in tree.this.expressions:
        if isinstance(column, exp.ColumnDef):
            for constraint in column.args.get("constraints") or []:
                kind = constraint.args.get("kind")
                if isinstance(kind, exp.CollateColumnConstraint):
                    collations[column.name.lower()] = kind.this.name.upper()
    return TableClauses(checks, collations, "ROWID" in options, "STRICT" in options)


@functools.lru_cache(maxsize=8192)
def index_where(sql: str) -> str | None:
    """The normalised WHERE of a partial index, or None (also when sqlglot cannot read it)."""
    import sqlglot
    from sqlglot import exp

    _sqlglot()
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None
    where = tree.find(exp.Where)
    return normalised(where.this) if where is not None else None


@functools.lru_cache(maxsize=8192)
def index_expressions(sql: str) -> tuple[str, ...]:
    """The normalised key expressions of an index (``lower(email)``), in order."""
    import sqlglot
    from sqlglot import exp

    _sqlglot()
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return ()
    params = tree.find(exp.IndexParameters)
    columns = params.args.get("columns") or [] if params is not None else []
    found = []
    for item in columns:
        value = item.this if isinstance(item, exp.Ordered) else item
        if isinstance(value, exp.Collate):
            value = value.this
        found.append(normalised(value))
    return tuple(found)


def _number(node: exp.Expr) -> float | None:
    from sqlglot import exp

    if isinstance(node, exp.Neg):
        inner = _number(node.this)
        return -inner if inner is not None else None
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return float(node.this)
        except ValueError:
            return None
    return None


def _literal(node: exp.Expr) -> object:
    from sqlglot import exp

    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    number = _number(node)
    if number is None:
        raise ValueError(node)
    return int(number) if number.is_integer() and "." not in node.sql() else number


def _conjuncts(node: exp.Expr) -> Iterator[exp.Expr]:
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    else:
        yield node


_FLIP = {"GT": "LT", "GTE": "LTE", "LT": "GT", "LTE": "GTE"}


def _condition(node: exp.Expr) -> ColumnCheck | None:
    from sqlglot import exp

    if isinstance(node, exp.In) and isinstance(node.this, exp.Column) and node.expressions:
        try:
            return ColumnCheck(node.this.name, choices=tuple(_literal(e) for e in node.expressions))
        except ValueError:
            return None
    if isinstance(node, exp.Between) and isinstance(node.this, exp.Column):
        low, high = _number(node.args["low"]), _number(node.args["high"])
        return ColumnCheck(node.this.name, low=low, high=high) if None not in (low, high) else None
    kind = type(node).__name__
    if kind not in _FLIP or not isinstance(node, exp.Binary):
        return None
    left, right = node.this, node.expression
    if _number(left) is not None:  # 0 < x reads as x > 0
        left, right, kind = right, left, _FLIP[kind]
    value = _number(right)
    if value is None:
        return None
    if isinstance(left, exp.Length) and isinstance(left.this, exp.Column) and kind in ("LT", "LTE"):
        return ColumnCheck(left.this.name, max_length=int(value) - (1 if kind == "LT" else 0))
    if not isinstance(left, exp.Column):
        return None
    nudge = 1.0 if kind in ("LT", "GT") else 0.0
    if kind.startswith("G"):
        return ColumnCheck(left.name, low=value + nudge)
    return ColumnCheck(left.name, high=value - nudge)


@functools.lru_cache(maxsize=8192)
def check_conditions(text: str) -> tuple[ColumnCheck, ...]:
    """The simple per-column conditions of a CHECK expression (ranges, IN lists, max length),
    ANDed together; empty when any part is something else (nothing is assumed about it)."""
    import sqlglot

    _sqlglot()
    try:
        tree = sqlglot.parse_one(text, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return ()
    found = []
    for part in _conjuncts(tree):
        condition = _condition(part)
        if condition is None:
            return ()
        found.append(condition)
    return tuple(found)


@functools.lru_cache(maxsize=8192)
def check_columns(text: str) -> frozenset[str]:
    """The columns a CHECK expression reads (lower case); empty when sqlglot cannot read it."""
    from sqlglot import exp

    tree = parse_statement(text, "sqlite")
    return frozenset(c.name.lower() for c in tree.find_all(exp.Column)) if tree is not None else frozenset()


def merged(conditions: list[ColumnCheck]) -> dict[str, ColumnCheck]:
    """Conditions on the same column combined (``x >= 0`` and ``x <= 9`` make one range)."""
    found: dict[str, ColumnCheck] = {}
    for check in conditions:
        key = check.column.lower()
        old = found.get(key)
        if old is None:
            found[key] = check
            continue
        found[key] = ColumnCheck(
            old.column,
            max(x for x in (old.low, check.low) if x is not None)
            if (old.low, check.low) != (None, None)
            else None,
            min(x for x in (old.high, check.high) if x is not None)
            if (old.high, check.high) != (None, None)
            else None,
            check.choices or old.choices,
            min(x for x in (old.max_length, check.max_length) if x is not None)
            if (old.max_length, check.max_length) != (None, None)
            else None,
        )
    return found


def implied_by(new_check: str, old_checks: tuple[str, ...], renames: dict[str, str] | None = None) -> bool:
    """True when the CHECK ``new_check`` holds for every row the ``old_checks`` allowed: the same
    condition, or a wider one (a larger range, more IN values, a longer max length).
    ``renames`` maps old column names to new ones (lower case)."""
    renames = renames or {}
    conditions = check_conditions(new_check)
    if not conditions:
        return False
    old = merged(
        [
            ColumnCheck(renames.get(c.column.lower(), c.column), c.low, c.high, c.choices, c.max_length)
            for text in old_checks
            for c in check_conditions(text)
        ]
    )
    return all(c.column.lower() in old and c.allows_all_of(old[c.column.lower()]) for c in conditions)
