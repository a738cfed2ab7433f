"""The literal values of a statement turned into parameters, for ``--tenantdb-record``.

sqlite3's trace callback gives each statement with its bound values written in
(``SELECT * FROM notes WHERE id = 7``), so one query of the app would become one entry per value.
:func:`parameterise` gives the statement back with every literal value replaced by ``?``
(``SELECT * FROM notes WHERE id = ?``), the rest of its text as the app wrote it:

- numbers (a minus sign included: ``-1`` is one ``?``), strings and blobs (``x'00ff'``), and
  ``NULL`` as a value (a bound ``None`` is written ``NULL``); ``IS NULL`` / ``IS NOT NULL`` stay;
- ``LIMIT`` and ``OFFSET`` values too (the trace cannot tell a bound page size from a written one);
- not what is structure rather than a value: ``ORDER BY 2`` / ``GROUP BY 1`` (column positions),
  type arguments (``CAST(x AS NUMERIC(10, 2))``), JSON paths (``data ->> '$.name'``), names
  written as strings (``AS 'total'``);
- a statement that already holds parameters (the trace could not write the values in) or that
  sqlglot cannot parse is kept as it is.

sqlglot (sqlite dialect) says which tokens are values; it is imported on the first statement.
Its parse costs a fraction of a millisecond, so statements of one shape (the same text once the
literals are masked by a regular expression) share one plan: which literals to replace.
"""

from __future__ import annotations

import re
from typing import Any

from pytest_tenantdb.lint.placeholders import parameters

_SCAN = re.compile(
    r"""
    (?P<skip>--[^\n]*|/\*.*?(?:\*/|\Z)|"(?:[^"]|"")*"?|`(?:[^`]|``)*`?|\[[^\]]*\]?)
    |(?P<blob>[xX]'[^']*')
    |(?P<string>'(?:[^']|'')*'?)
    |(?P<number>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<null>(?i:NULL)(?![\w$]))
    |(?P<word>[\w$]+)
    """,
    re.VERBOSE | re.DOTALL,
)
_MASK = {"blob": "x''", "string": "''", "number": "0"}
#: Which literals of a statement shape become ``?``: (index among the shape's literals, whether
#: the minus sign before it goes too). None: the shape is worked out by sqlglot each time.
Plan = tuple[tuple[int, bool], ...] | None
_PLANS: dict[str, Plan] = {}
_MAX_PLANS = 10_000


def parameterise(sql: str) -> str:
    """``sql`` with its literal values replaced by ``?`` (see the module's docs); ``sql`` itself
    when it has parameters already or cannot be parsed."""
    spans, key = _literals(sql)
    if not spans:
        return sql
    if key in _PLANS:  # parameters are part of the shape: a plan is () when it has some
        plan = _PLANS[key]
        if plan is not None:
            return _apply(sql, [_edit(sql, spans[i], minus) for i, minus in plan])
    edits = None if parameters(sql).slots else _edits(sql)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[key] = () if edits is None else _plan(sql, spans, edits)  # (): kept as it is
    return sql if edits is None else _apply(sql, edits)


def _literals(sql: str) -> tuple[list[tuple[int, int]], str]:
    """The spans of the literal-looking tokens of ``sql`` and its shape: its text with numbers,
    strings and blobs masked (``NULL`` and everything else as written)."""
    spans: list[tuple[int, int]] = []
    shape: list[str] = []
    last = 0
    for match in _SCAN.finditer(sql):
        kind = match.lastgroup
        if kind in ("skip", "word"):
            continue
        spans.append(match.span())
        shape.append(sql[last : match.start()])
        shape.append(_MASK.get(kind or "", match.group()))
        last = match.end()
    shape.append(sql[last:])
    return spans, "".join(shape)


def _edit(sql: str, span: tuple[int, int], minus: bool) -> tuple[int, int]:
    """The span to replace for a literal at ``span`` (with the minus sign before it, if asked)."""
    return (span[0] - _minus(sql, span[0]) if minus else span[0]), span[1]


def _minus(sql: str, start: int) -> int:
    """How far back the minus sign of a negative literal at ``start`` is (0: none)."""
    i = start - 1
    while i >= 0 and sql[i].isspace():
        i -= 1
    return start - i if i >= 0 and sql[i] == "-" else 0


def _edits(sql: str) -> list[tuple[int, int]] | None:
    """The spans sqlglot says are values, or None when it cannot parse ``sql`` as one statement."""
    try:
        from sqlglot import exp
        from sqlglot.dialects.dialect import Dialect
        from sqlglot.tokenizer_core import TokenType

        dialect = Dialect.get_or_raise("sqlite")
        tokens = dialect.tokenize(sql)
        trees = [t for t in dialect.parser().parse(tokens, sql) if t is not None]
    except Exception:  # sqlglot's errors are several classes; any of them means "keep the text"
        return None
    if len(trees) != 1:
        return None
    edits: list[tuple[int, int]] = []
    for node in trees[0].walk():
        if isinstance(node, exp.Literal | exp.HexString) and not _structure(node, exp):
            span = _span(sql, node.meta)
            if span is not None:
                start, end = span
                if isinstance(node.parent, exp.Neg) and node.arg_key == "this":
                    start -= _minus(sql, start)
                edits.append((start, end))
    for i, token in enumerate(tokens):
        if token.token_type == TokenType.NULL and not _after_is(tokens, i, TokenType):
            edits.append((token.start, token.end + 1))
    return sorted(edits)


def _structure(node: Any, exp: Any) -> bool:
    """Whether literal ``node`` is structure, not a value: a column position in ORDER BY /
    GROUP BY, or a type's argument."""
    parent = node.parent
    if isinstance(parent, exp.Ordered | exp.Group):
        return True
    return node.find_ancestor(exp.DataType) is not None


def _span(sql: str, meta: dict[str, Any]) -> tuple[int, int] | None:
    """The text span a literal came from (None when sqlglot made it itself)."""
    start, end = meta.get("start"), meta.get("end")
    if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start <= end < len(sql):
        return None
    return start, end + 1


def _after_is(tokens: list[Any], i: int, token_type: Any) -> bool:
    """Whether the NULL token at ``i`` follows ``IS`` or ``IS NOT`` (a test, not a value)."""
    before = [t.token_type for t in tokens[max(0, i - 2) : i]]
    return before[-1:] == [token_type.IS] or before == [token_type.IS, token_type.NOT]


def _plan(sql: str, spans: list[tuple[int, int]], edits: list[tuple[int, int]]) -> Plan:
    """``edits`` as a plan over the shape's literals, None when they do not map onto them."""
    index = {span: n for n, span in enumerate(spans)}
    plan: list[tuple[int, bool]] = []
    for start, end in edits:
        minus = sql[start] == "-"
        if minus:
            start += 1
            while start < end and sql[start].isspace():
                start += 1
        if (start, end) not in index:
            return None
        plan.append((index[start, end], minus))
    return tuple(plan)


def _apply(sql: str, edits: list[tuple[int, int]]) -> str:
    """``sql`` with each span of ``edits`` (in order, not overlapping) replaced by ``?``."""
    out: list[str] = []
    last = 0
    for start, end in edits:
        out.append(sql[last:start])
        out.append("?")
        last = end
    out.append(sql[last:])
    return "".join(out)
