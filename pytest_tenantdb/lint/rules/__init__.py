"""The rule table: every rule's stable code, severity, explanation and safe alternative.

Codes are stable forever once released: ``TDB1xx`` migration rules, ``TDB2xx`` query rules,
``TDB0xx`` input problems. ``tenantdb explain CODE`` prints a rule's entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_tenantdb.lint.findings import Finding


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: str
    summary: str
    explanation: str
    alternative: str


_RULES = [
    Rule(
        "TDB001",
        "unparsable-statement",
        "error",
        "a statement could not be parsed",
        "The checker could not read this statement, so it cannot tell whether it is backward "
        "compatible. Nothing is assumed: the statement is reported, never silently passed.",
        "Check the syntax; if SQLite accepts it, add `-- tenantdb: ignore[TDB001] reason` above it.",
    ),
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
        "TDB101",
        "drop-table",
        "error",
        "a table is dropped",
        "The app version still serving tenants reads and writes this table. While the fleet is "
        "half migrated, every request of the old version that touches it fails.",
        "Stop using the table in one release, drop it in a later one (expand/contract).",
    ),
    Rule(
        "TDB102",
        "drop-column",
        "error",
        "a column is dropped",
        "Old app code that selects, inserts or updates this column fails on migrated tenants.",
        "Release app code that no longer uses the column first; drop it in a later step.",
    ),
    Rule(
        "TDB103",
        "rename-table",
        "error",
        "a table is renamed",
        "Old app code uses the old name, which no longer exists on migrated tenants.",
        "Create the new table, keep a view (or both tables in sync) under the old name until no "
        "app version uses it.",
    ),
    Rule(
        "TDB104",
        "rename-column",
        "error",
        "a column is renamed in place",
        "Old app code uses the old column name, which no longer exists on migrated tenants.",
        "Add the new column, keep both in sync (trigger or dual writes), backfill, switch reads, "
        "then drop the old column in a later step.",
    ),
    Rule(
        "TDB105",
        "add-not-null-column-without-default",
        "error",
        "a NOT NULL column without a default is added",
        "Old INSERTs do not name the new column, so on migrated tenants they fail with a NOT NULL "
        "constraint error.",
        "Add the column nullable or with a DEFAULT; make it NOT NULL once every app version fills it.",
    ),
    Rule(
        "TDB106",
        "set-not-null",
        "error",
        "an existing column becomes NOT NULL",
        "Old code that writes NULL (or leaves the column out) fails; existing NULL rows make the "
        "step itself fail on some tenants.",
        "Backfill first, make every app version write a value, then add the constraint in a later step.",
    ),
    Rule(
        "TDB107",
        "change-column-type",
        "warning",
        "a column's declared type changes",
        "Old code may write values of the old type; with STRICT tables or CHECKs they are refused, "
        "and comparisons change with type affinity.",
        "Add a column of the new type, dual-write, backfill, switch, drop the old one later.",
    ),
    Rule(
        "TDB108",
        "add-unique",
        "warning",
        "a UNIQUE constraint or index is added to an existing table",
        "Tenants whose data already has duplicates fail the step (the release stops half way), "
        "and old code inserting duplicates fails afterwards.",
        "Deduplicate in the same step (or an earlier one) and make sure old code cannot insert duplicates.",
    ),
    Rule(
        "TDB109",
        "add-check-or-foreign-key",
        "warning",
        "a CHECK or FOREIGN KEY is added to an existing table",
        "Existing rows that break it make the step fail on some tenants; old code that writes "
        "such values fails afterwards.",
        "Clean the data first and make every app version respect the constraint before adding it.",
    ),
    Rule(
        "TDB110",
        "drop-or-change-default",
        "error",
        "a column default is dropped or changed",
        "Old INSERTs that leave the column out relied on the default: they fail (NOT NULL) or "
        "store a different value.",
        "Keep the default until no app version relies on it.",
    ),
    Rule(
        "TDB111",
        "drop-view-or-trigger",
        "warning",
        "a view or trigger is dropped",
        "Old code may read the view, or rely on the trigger keeping data in sync.",
        "Drop it in a later release, once no app version in service uses it.",
    ),
    Rule(
        "TDB112",
        "unbounded-write",
        "warning",
        "DELETE or UPDATE without WHERE in a migration",
        "It rewrites or removes every row of every tenant; usually a mistake, always irreversible.",
        "Add a WHERE clause, or say why with `-- tenantdb: ignore[TDB112] reason`.",
    ),
    Rule(
        "TDB113",
        "no-transaction-statement",
        "error",
        "a statement that cannot run in a transaction, in a transactional step",
        "VACUUM and some PRAGMAs fail inside the transaction the migrator opens for each step.",
        "Mark the step with `-- tenantdb: no-transaction` (it still gets a backup), or move the "
        "statement to its own step.",
    ),
    Rule(
        "TDB114",
        "rebuild-loses-something",
        "error",
        "a table rebuild loses an index, trigger, CHECK or foreign key",
        "SQLite's 12-step rebuild drops the old table with its indexes and triggers; whatever is "
        "not recreated is silently gone on migrated tenants but present on new ones.",
        "Recreate every index and trigger of the old table after the rename, and keep its constraints.",
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
        "TDB301",
        "postgres-index-without-concurrently",
        "error",
        "CREATE INDEX on an existing table without CONCURRENTLY (postgres)",
        "A plain CREATE INDEX holds a lock that blocks every INSERT, UPDATE and DELETE on the table "
        "until the index is built: on a large tenant, minutes of failed writes for the app in service.",
        "CREATE INDEX CONCURRENTLY in a step marked `-- tenantdb: no-transaction`.",
    ),
    Rule(
        "TDB302",
        "postgres-constraint-without-not-valid",
        "error",
        "a FOREIGN KEY or CHECK added to an existing table without NOT VALID (postgres)",
        "Adding the constraint scans every row while holding a lock that blocks writes. A foreign key "
        "also takes a SHARE ROW EXCLUSIVE lock on the table it references, so writes to that table "
        "(often a central one such as users) wait too; this holds for a column added with REFERENCES, "
        "which cannot be NOT VALID.",
        "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later statement or step; for a new "
        "column, add it without REFERENCES first and the foreign key that way.",
    ),
    Rule(
        "TDB303",
        "postgres-volatile-default",
        "error",
        "a column added with a volatile default (postgres)",
        "A volatile default (random(), gen_random_uuid(), clock_timestamp(), nextval()) forces a "
        "rewrite of the whole table under an ACCESS EXCLUSIVE lock.",
        "Add the column without a default (or with a constant one), backfill in batches, then set the default.",
    ),
    Rule(
        "TDB304",
        "postgres-type-change-rewrite",
        "error",
        "ALTER COLUMN ... TYPE on an existing table (postgres)",
        "Most type changes rewrite the table and its indexes under an ACCESS EXCLUSIVE lock: reads "
        "and writes of the app in service wait for it.",
        "Add a column of the new type, dual-write, backfill in batches, switch reads, drop the old one.",
    ),
    Rule(
        "TDB305",
        "postgres-set-not-null-scan",
        "warning",
        "SET NOT NULL on an existing column (postgres)",
        "Postgres scans the whole table to verify the constraint while holding an ACCESS EXCLUSIVE lock.",
        "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (no scan "
        "on postgres 12+), then drop the CHECK.",
    ),
]
RULES: dict[str, Rule] = {rule.code: rule for rule in _RULES}


def finding(code: str, message: str, file: object, line: int, step: str = "", statement: str = "") -> Finding:
    """A finding of rule ``code``, with the rule's severity and safe alternative."""
    rule = RULES[code]
    return Finding(code, rule.severity, message, str(file), line, step, statement, rule.alternative)


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
    for rule in RULES.values():
        (folder / f"{rule.code}.md").write_text(rule_page(rule), encoding="utf-8")
    index = folder / "index.md"
    text = index.read_text(encoding="utf-8")
    start, end = text.index("<!-- rules -->"), text.index("<!-- /rules -->")
    rows = "".join(
        f"| [{r.code}]({r.code}.md) | {r.name} | {r.severity} | {r.summary} |\n" for r in RULES.values()
    )
    table = "<!-- rules -->\n| code | name | severity | flags |\n| --- | --- | --- | --- |\n" + rows
    index.write_text(text[:start] + table + text[end:], encoding="utf-8")
