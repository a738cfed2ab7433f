"""The rule table: every rule's stable code, severity, explanation and safe alternative.

Codes are stable forever once released: ``TDB1xx`` migration rules, ``TDB2xx`` query rules,
``TDB0xx`` input problems. ``tenantdb explain CODE`` prints a rule's entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_tenantdb.lint.findings import Finding

if TYPE_CHECKING:
    from pytest_tenantdb.lint.rules.context import StepContext


Pass = Callable[["StepContext"], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    """A rule's stable code, metadata and docs, and for migration rules the pass that checks it."""

    code: str
    name: str
    severity: str
    summary: str
    explanation: str
    alternative: str
    check: Pass | None = None
    dialects: frozenset[str] = frozenset({"sqlite", "postgres"})
    statement_level: bool = False


_RULES = [
    Rule(
        "TDB002",
        "step-fails-on-empty-database",
        "error",
        "the step fails on an empty database",
        "The step cannot even run on a freshly migrated database, so no tenant can be migrated and "
        "later steps are not checked.",
        "Fix the statement SQLite refuses (the message names it); mark steps that cannot run in a "
        "transaction with `-- tenantdb: no-transaction`.",
    ),
    Rule(
        "TDB201",
        "query-unknown-table-or-column",
        "error",
        "an old query names a table or column the new schema does not have",
        "This query of the app version still in service fails on tenants migrated to the new version.",
        "Keep the old name working (view, kept column) until the old app version is retired.",
    ),
    Rule(
        "TDB202",
        "query-insert-misses-not-null",
        "error",
        "an old INSERT leaves out a NOT NULL column without default",
        "On tenants migrated to the new version the INSERT fails with a NOT NULL constraint error.",
        "Give the new column a DEFAULT, or make it nullable until every app version fills it.",
    ),
    Rule(
        "TDB203",
        "query-ambiguous-column",
        "error",
        "an old query's unqualified column became ambiguous",
        "A joined table gained a column of the same name; the database refuses the query.",
        "Qualify columns in queries that join, or name the new column differently.",
    ),
    Rule(
        "TDB204",
        "query-select-star-changed",
        "warning",
        "an old SELECT * returns different columns",
        "Code that unpacks rows by position gets more, fewer or reordered values.",
        "Select columns by name in app code.",
    ),
    Rule(
        "TDB205",
        "query-broken-on-its-own-version",
        "error",
        "an old query does not run on the schema of its own app version",
        "The query fails before any migration touches it (a typo, a table or column that never "
        "existed), so whether a step breaks it cannot be told. It is reported once, at the app "
        "version that introduced it, instead of being silently left out of every check.",
        "Fix the query (the message says what fails) or remove it from the queries of that app version.",
    ),
]

RULES: dict[str, Rule] = {rule.code: rule for rule in _RULES}


def rule(
    code: str,
    name: str,
    severity: str,
    summary: str,
    explanation: str,
    alternative: str,
    *,
    dialects: tuple[str, ...] = ("sqlite", "postgres"),
    statement_level: bool = False,
) -> Callable[[Pass], Pass]:
    """Register a migration rule: its metadata and the pass that checks one step for it.

    ``statement_level`` rules read single statements and still apply to a step that fails;
    the others compare the schemas before and after the step."""

    def register(check: Pass) -> Pass:
        RULES[code] = Rule(
            code,
            name,
            severity,
            summary,
            explanation,
            alternative,
            check,
            frozenset(dialects),
            statement_level,
        )
        return check

    return register


def run_rules(ctx: StepContext) -> list[Finding]:
    """Every registered pass that applies to ``ctx`` (its dialect; statement rules only when the
    step failed), in code order."""
    findings: list[Finding] = []
    for code in sorted(RULES):
        found = RULES[code]
        if found.check is None or ctx.dialect not in found.dialects:
            continue
        if ctx.failed and not found.statement_level:
            continue
        try:
            findings.extend(found.check(ctx))
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            # a statement of a shape the pass did not expect: say what was not checked, go on
            message = f"rule {code} could not read this step ({type(exc).__name__}: {exc}), so it was not checked for it"
            findings.append(ctx.finding("TDB001", message, f"rule {code}", ctx.mentioning(), "note"))
    return findings


def finding(
    code: str, message: str, file: object, line: int, step: str = "", statement: str = "", subject: str = ""
) -> Finding:
    """A finding of rule ``code``, with the rule's severity and safe alternative."""
    rule = RULES[code]
    return Finding(code, rule.severity, message, str(file), line, step, statement, rule.alternative, subject)


def rule_page(rule: Rule) -> str:
    """The docs page of a rule (``docs/rules/CODE.md``), kept equal to this table by a test."""
    return (
        f"# {rule.code} {rule.name}\n\n"
        f"**Severity**: {rule.severity}. **Flags**: {rule.summary}.\n\n"
        f"## Why it breaks a fleet at mixed versions\n\n{rule.explanation}\n\n"
        f"## Safe alternative\n\n{rule.alternative}\n\n"
        f"## Silencing one occurrence\n\n"
        f"`-- tenantdb: ignore[{rule.code}] reason` on the line above the statement, or "
        f'`ignore = ["{rule.code}"]` in `[tool.tenantdb]` for the whole project.\n'
    )


def write_rule_docs(folder: Path) -> None:
    """Write ``CODE.md`` for every rule and the rules table of ``index.md`` (``make rule-docs``)."""
    for code in sorted(RULES):
        (folder / f"{code}.md").write_text(rule_page(RULES[code]), encoding="utf-8")
    index = folder / "index.md"
    text = index.read_text(encoding="utf-8")
    start, end = text.index("<!-- rules -->"), text.index("<!-- /rules -->")
    rows = "".join(
        f"| [{r.code}]({r.code}.md) | {r.name} | {r.severity} | {r.summary} |\n"
        for r in sorted(RULES.values(), key=lambda r: r.code)
    )
    table = "<!-- rules -->\n| code | name | severity | flags |\n| --- | --- | --- | --- |\n" + rows
    index.write_text(text[:start] + table + text[end:], encoding="utf-8")


# The rule passes register themselves on import (one module per family of rules).
from pytest_tenantdb.lint.rules import columns, constraints, postgres, statements, tables  # noqa: E402

__all__ = [
    "RULES",
    "Rule",
    "columns",
    "constraints",
    "finding",
    "postgres",
    "rule",
    "run_rules",
    "statements",
    "tables",
]
