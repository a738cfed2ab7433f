"""Split an SQL script into single statements, keeping the line each one starts on.

``sqlite3.complete_statement`` knows SQLite's grammar for statement ends (including
``CREATE TRIGGER ... BEGIN ...; END``), so a failure can name the exact statement.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

_COMMENT_ONLY = re.compile(r"^(\s|--[^\n]*(\n|$)|/\*.*?\*/)*$", re.DOTALL)
_LEADING = re.compile(r"(\s|--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a step and the 1-based line of the file it starts on."""

    sql: str
    line: int


def is_blank(sql: str) -> bool:
    """True when ``sql`` holds only whitespace and comments."""
    return bool(_COMMENT_ONLY.match(sql))


def split_statements(script: str, first_line: int = 1) -> list[Statement]:
    """Split ``script`` into statements; a trailing statement without ``;`` is kept too.

    Each ``;`` is a candidate end; SQLite decides whether the text up to it is complete, so
    semicolons inside strings, comments and trigger bodies do not split.
    """
    statements: list[Statement] = []
    start = 0
    for match in re.finditer(";", script):
        end = match.end()
        if sqlite3.complete_statement(script[start:end]):
            _keep(statements, script, start, end, first_line)
            start = end
    _keep(statements, script, start, len(script), first_line)
    return statements


def _keep(statements: list[Statement], script: str, start: int, end: int, first_line: int) -> None:
    chunk = script[start:end]
    if is_blank(chunk):
        return
    lead = _LEADING.match(chunk)
    offset = lead.end() if lead else 0
    line = first_line + script.count("\n", 0, start + offset)
    statements.append(Statement(chunk[offset:].strip(), line))
