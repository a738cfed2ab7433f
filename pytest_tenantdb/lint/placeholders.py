"""The parameters of a SQLite statement, found the way SQLite's own tokenizer finds them.

Old app queries are prepared (the checker) and run (the ``old_code`` check) with a value bound to
every parameter, so every style SQLite accepts must be found: ``?``, ``?NNN``, ``:name``,
``@name`` and ``$name`` (a name may carry ``::`` parts and a ``(...)`` suffix; SQLite's tokenizer
also takes ``#name``). A ``?`` inside a string literal, a quoted identifier or a comment is not a
parameter. Python's ``sqlite3`` does not expose ``sqlite3_bind_parameter_count`` and ``_name``, so
this follows SQLite's ``tokenize.c`` and ``sqlite3ExprAssignVarNumber``; the tests hold it to
SQLite itself.

It lives with the checker because the checker's findings depend on it (its cached findings are
keyed by the checker's own source); the ``old_code`` check uses it too.

Values are given by *key*: a named parameter's name without its prefix (``:id``, ``@id`` and
``$id`` are all ``id``, as Python's ``sqlite3`` looks them up), ``?N`` for a numbered one (a bare
``?`` is ``?N`` for the number SQLite gives it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pytest_tenantdb.errors import QueryParameterError

_PREFIXES = ":@$#"  # a named parameter starts with one of these
_SPACE = " \t\n\v\f\r"  # sqlite3Isspace
_DIGITS = "0123456789"  # sqlite3Isdigit: ASCII only
_MAX_INDEX = 250_000  # SQLITE_MAX_VARIABLE_NUMBER's ceiling: a larger ?NNN never prepares

Binding = tuple[object, ...] | dict[str, object]


@dataclass(frozen=True)
class Parameter:
    """One parameter slot: the number SQLite gives it and the name it reports (None for ``?``)."""

    index: int
    name: str | None

    @property
    def key(self) -> str:
        """The name its value is given under: ``id`` for ``:id``, ``?3`` for slot 3 of ``?``/``?3``."""
        if self.name is None or self.name.startswith("?"):
            return f"?{self.index}"
        return self.name[1:]

    @property
    def named(self) -> bool:
        return self.name is not None and not self.name.startswith("?")


@dataclass(frozen=True)
class Parameters:
    """The parameter slots of one statement, by index; ``count`` is the highest index (slots
    below it that no parameter uses are gaps SQLite still counts)."""

    slots: tuple[Parameter, ...]
    count: int

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys values are looked up by, once each, in the order of the slots."""
        return tuple(dict.fromkeys(p.key for p in self.slots))

    def binding(self, values: Mapping[str, object] | None = None) -> Binding:
        """What ``conn.execute(sql, ...)`` takes: each slot's value by key, NULL when not given.

        A sequence when no parameter is named (``?``, ``?NNN``: one item per index up to the
        highest); a mapping when every index up to the highest has a name (``?NNN`` counts, Python
        looks it up as ``NNN``). Anything else cannot be bound by Python's ``sqlite3`` in one call.
        """
        given = values or {}
        if not any(p.named for p in self.slots):
            return tuple(given.get(f"?{index}") for index in range(1, self.count + 1))
        names = {p.index: p.name for p in self.slots}
        if any(names.get(i) is None for i in range(1, self.count + 1)):
            positional = ", ".join(p.name or "?" for p in self.slots if not p.named)
            named = ", ".join(p.name or "" for p in self.slots if p.named)
            raise QueryParameterError(
                f"the query mixes positional parameters ({positional}) with named ones ({named}), "
                "which Python's sqlite3 cannot bind in one call: use one style"
            )
        return {p.name[1:]: given.get(p.key) for p in self.slots if p.name is not None}


def parameters(sql: str) -> Parameters:
    """The parameter slots of ``sql`` as SQLite numbers and names them (``?`` takes the highest
    number so far plus one, ``?NNN`` number NNN, a name the next number the first time it appears)."""
    names: dict[int, str | None] = {}
    numbers: dict[str, int] = {}
    count = 0
    for text in _variables(sql):
        if text == "?":
            count += 1
            names[count] = None
        elif text.startswith("?"):
            index = int(text[1:])
            if not 1 <= index <= _MAX_INDEX:
                continue  # SQLite refuses the statement, with its own message
            count = max(count, index)
            if names.get(index) is None:
                names[index] = text
        elif text not in numbers:
            count += 1
            numbers[text] = count
            names[count] = text
    return Parameters(tuple(Parameter(i, names[i]) for i in sorted(names)), count)


def binding(sql: str, values: Mapping[str, object] | None = None) -> Binding:
    """The values to execute ``sql`` with (see :meth:`Parameters.binding`); NULL by default."""
    return parameters(sql).binding(values)


def _variables(sql: str) -> Iterator[str]:
    """The text of each parameter token of ``sql``, in order, skipping literals, quoted
    identifiers, comments and words (a ``$`` inside ``a$b`` belongs to the word)."""
    i, end = 0, len(sql)
    while i < end:
        c = sql[i]
        if c in "'\"`":
            i = _quoted_end(sql, i)
        elif c == "[":
            close = sql.find("]", i + 1)
            i = end if close < 0 else close + 1
        elif sql.startswith("--", i):
            close = sql.find("\n", i)
            i = end if close < 0 else close + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = end if close < 0 else close + 2
        elif c == "?":
            j = i + 1
            while j < end and sql[j] in _DIGITS:
                j += 1
            yield sql[i:j]
            i = j
        elif c in _PREFIXES:
            j, legal = _name_end(sql, i)
            if legal:
                yield sql[i:j]
            i = j
        elif _id_char(c):
            i += 1
            while i < end and _id_char(sql[i]):
                i += 1
        else:
            i += 1


def _quoted_end(sql: str, start: int) -> int:
    """The end of a '...', "..." or `...` token (a doubled quote is part of it)."""
    quote, i = sql[start], start + 1
    while True:
        close = sql.find(quote, i)
        if close < 0:
            return len(sql)
        if not sql.startswith(quote, close + 1):
            return close + 1
        i = close + 2


def _name_end(sql: str, start: int) -> tuple[int, bool]:
    """Where the named parameter at ``start`` ends, and whether SQLite accepts it: at least one
    name character, ``::`` parts, and a ``(...)`` suffix without spaces."""
    i, letters, end = start + 1, 0, len(sql)
    while i < end:
        c = sql[i]
        if _id_char(c):
            letters += 1
            i += 1
        elif c == "(" and letters:
            i += 1
            while i < end and sql[i] not in _SPACE and sql[i] != ")":
                i += 1
            if i < end and sql[i] == ")":
                return i + 1, True
            return i, False
        elif sql.startswith("::", i):
            i += 2
        else:
            break
    return i, letters > 0


def _id_char(c: str) -> bool:
    """SQLite's IdChar: ASCII letters and digits, ``_``, ``$`` and every non-ASCII character."""
    return not c.isascii() or c.isalnum() or c in "_$"
