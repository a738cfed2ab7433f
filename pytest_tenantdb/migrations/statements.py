"""Split an SQL script into single statements, keeping the line each one starts on.

Statement ends are found the way ``sqlite3_complete()`` finds them (its token classes and its
eight-state machine, ported from SQLite's ``complete.c``), so semicolons inside strings,
comments and ``CREATE TRIGGER ... BEGIN ...; END`` bodies do not split, exactly as
``sqlite3.complete_statement`` would decide. One pass over the script: a 50 MB step loads in
seconds, where asking ``complete_statement`` at every ``;`` grew with the square of the size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_COMMENT_ONLY = re.compile(r"^(\s|--[^\n]*(\n|$)|/\*.*?\*/)*$", re.DOTALL)
_LEADING = re.compile(r"(\s|--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)

# complete.c's tokens; ``open`` is a string, identifier or comment that never ends (the rest of
# the script is then one unfinished statement)
_TOKEN = re.compile(
    r"""(?P<semi>;)
    | (?P<ws>[ \t\n\f\r]+|/\*.*?\*/|--[^\n]*)
    | (?P<other>'[^']*'|"[^"]*"|`[^`]*`|\[[^\]]*\])
    | (?P<word>[A-Za-z0-9_$\u0080-\U0010ffff]+)
    | (?P<open>/\*|['"`\[])
    | (?P<char>.)""",
    re.VERBOSE | re.DOTALL,
)
_SEMI, _WS, _OTHER, _EXPLAIN, _CREATE, _TEMP, _TRIGGER, _END = range(8)
_KEYWORDS = {
    "create": _CREATE,
    "temp": _TEMP,
    "temporary": _TEMP,
    "trigger": _TRIGGER,
    "end": _END,
    "explain": _EXPLAIN,
}
# state x token -> state (states: 0 invalid, 1 start, 2 normal, 3 explain, 4 create, 5 trigger,
# 6 semicolon inside a trigger, 7 end of a trigger); state 1 after a ``;`` ends a statement
_TRANSITIONS = (
    (1, 0, 2, 3, 4, 2, 2, 2),
    (1, 1, 2, 3, 4, 2, 2, 2),
    (1, 2, 2, 2, 2, 2, 2, 2),
    (1, 3, 3, 2, 4, 2, 2, 2),
    (1, 4, 2, 2, 2, 4, 5, 2),
    (6, 5, 5, 5, 5, 5, 5, 5),
    (6, 6, 5, 5, 5, 5, 5, 7),
    (1, 7, 5, 5, 5, 5, 5, 5),
)


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a step and the 1-based line of the file it starts on."""

    sql: str
    line: int


def is_blank(sql: str) -> bool:
    """True when ``sql`` holds only whitespace and comments."""
    return bool(_COMMENT_ONLY.match(sql))


def statement_ends(script: str) -> Iterator[int]:
    """Offsets just after each ``;`` that ``sqlite3.complete_statement`` would call an end."""
    state = 0
    for match in _TOKEN.finditer(script):
        kind = match.lastgroup
        if kind == "open":
            return
        if kind == "semi":
            token = _SEMI
        elif kind == "ws":
            token = _WS
        elif kind == "word":
            token = _KEYWORDS.get(match.group().lower(), _OTHER) if len(match.group()) <= 9 else _OTHER
        else:
            token = _OTHER
        state = _TRANSITIONS[state][token]
        if token == _SEMI and state == 1:
            yield match.end()


def split_statements(script: str, first_line: int = 1) -> list[Statement]:
    """Split ``script`` into statements; a trailing statement without ``;`` is kept too."""
    statements: list[Statement] = []
    lines = _LineCounter(script, first_line)
    start = 0
    for end in statement_ends(script):
        _keep(statements, script, start, end, lines)
        start = end
    _keep(statements, script, start, len(script), lines)
    return statements


class _LineCounter:
    """Line numbers of ascending offsets, counting each newline once."""

    def __init__(self, script: str, first_line: int) -> None:
        self._script = script
        self._offset = 0
        self._line = first_line

    def at(self, offset: int) -> int:
        self._line += self._script.count("\n", self._offset, offset)
        self._offset = offset
        return self._line


def _keep(statements: list[Statement], script: str, start: int, end: int, lines: _LineCounter) -> None:
    chunk = script[start:end]
    if is_blank(chunk):
        return
    lead = _LEADING.match(chunk)
    offset = lead.end() if lead else 0
    statements.append(Statement(chunk[offset:].strip(), lines.at(start + offset)))
