"""Split an SQL script into single statements, keeping the line each one starts on.

``sqlite3.complete_statement`` knows SQLite's grammar for statement ends (including
``CREATE TRIGGER ... BEGIN ...; END``), so a failure can name the exact statement.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

_COMMENT_ONLY = re.compile(r"^(\s|--[^\n]*(\n|$)|/\*.*?\*/)*$", re.DOTALL)


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a step and the 1-based line of the file it starts on."""

    sql: str
    line: int


def is_blank(sql: str) -> bool:
    """True when ``sql`` holds only whitespace and comments."""
    return bool(_COMMENT_ONLY.match(sql))


def split_statements(script: str, first_line: int = 1) -> list[Statement]:
    """Split ``script`` into statements; a trailing statement without ``;`` is kept too."""
    statements: list[Statement] = []
    buffer: list[str] = []
    start = first_line
    for offset, line in enumerate(script.splitlines(keepends=True)):
        if not buffer:
            if is_blank(line):
                continue
            start = first_line + offset
        buffer.append(line)
        text = "".join(buffer)
        if sqlite3.complete_statement(text):
            if not is_blank(text):
                statements.append(Statement(text.strip(), start))
            buffer = []
    rest = "".join(buffer)
    if not is_blank(rest):
        statements.append(Statement(rest.strip(), start))
    return statements
