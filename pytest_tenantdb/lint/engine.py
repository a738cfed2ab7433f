"""Run every rule over a project: each step against the schema just before it, and the queries
of each app version against the next schema. Inline ``-- tenantdb: ignore[CODE] reason``
comments and the configured ``ignore`` list are applied here."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pytest_tenantdb.database import unique_sibling
from pytest_tenantdb.errors import StepFailure
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.lint.rules import RULES, finding, run_rules
from pytest_tenantdb.lint.rules.context import StepContext
from pytest_tenantdb.lint.rules.query import lint_queries
from pytest_tenantdb.lint.walker import IGNORED, Walker
from pytest_tenantdb.migrations import MigrationSet, Step
from pytest_tenantdb.migrations.statements import Statement
from pytest_tenantdb.queries import Query, QueryFolder, QuerySources
from pytest_tenantdb.schema import Schema

_IGNORE = re.compile(r"--\s*tenantdb:\s*ignore\[([A-Z0-9, ]+)\]")


@dataclass(frozen=True)
class LintOptions:
    """What to check: steps newer than ``since``, rules not in ``ignore`` (and in ``select``)."""

    since: int = 0
    ignore: frozenset[str] = field(default_factory=frozenset)
    select: frozenset[str] = field(default_factory=frozenset)
    dialect: str = "sqlite"
    window: int = 1  # old code of the last N app versions must run on each new schema
    severity: tuple[tuple[str, str], ...] = ()  # (code, "error" | "warning" | "off") overrides


def lint_project(
    migrations: MigrationSet,
    templates: TemplateCache,
    queries: QueryFolder | QuerySources | None,
    options: LintOptions,
) -> list[Finding]:
    if options.dialect != "sqlite":
        return _selected(_once(lint_static(migrations, queries, options)), options)
    findings: list[Finding] = []
    previous = 0
    cache = templates.directory.parent / "findings"
    # The history is walked step by step, each step on a scratch database of what it can touch
    # (see walker.py): linear in the history, where one growing database is quadratic.
    tenant = Walker(migrations, templates)
    for step in migrations:
        if step.version > options.since:
            app = queries.for_version(previous) if queries else []
            old_code = [q.sql for q in app] if queries is not None else None
            key = _cache_key(migrations, step, app, queries is not None, options.window)
            cached = _load(cache / f"{key}.json")
            if cached is not None:  # the same step, schema and old code as a previous run
                findings += cached
                previous = step.version
                continue
            before = tenant.at(previous)
            old = tenant.database(q.sql for q in app) if app else None
            step_start = len(findings)
            try:
                after = tenant.apply(step)
            except StepFailure as exc:
                if old is not None:
                    old.close()
                # statement rules still apply; later steps cannot be built on this one
                findings += lint_step(step, before, before, old_code, ran=tenant.ran, failed=True)
                findings.append(_step_fails(step, exc))
                break
            findings += lint_step(step, before, after, old_code, ran=tenant.ran)
            if old is not None:
                new = tenant.database(q.sql for q in app)
                try:
                    findings += lint_queries(app, old, new, before, after, previous, step)
                finally:
                    old.close()
                    new.close()
            if queries:
                findings += _window(
                    migrations, templates, queries, step, options.window, findings[step_start:]
                )
            _store(cache / f"{key}.json", findings[step_start:])
        previous = step.version
    return _selected(_once(findings), options)


def _once(findings: list[Finding]) -> list[Finding]:
    """A query that cannot be checked at all (TDB205, unbindable parameters) is reported once,
    at the first step it meets, not again at every later step and window version."""
    seen: set[tuple[str, str, int]] = set()
    kept = []
    for found in findings:
        key = (found.code, found.file, found.line)
        if found.subject.startswith("query ") and found.code in ("TDB001", "TDB205"):
            if key in seen:
                continue
            seen.add(key)
        kept.append(found)
    return kept


def lint_step(
    step: Step,
    before: Schema,
    after: Schema,
    old_code: list[str] | None = None,
    dialect: str = "sqlite",
    ran: Sequence[Statement] | None = None,
    failed: bool = False,
) -> list[Finding]:
    """Every migration rule for ``step``, given the schemas just before and after it.

    ``old_code`` is the SQL of the app version still in service, when known: a column, table or
    view no old query mentions can go without breaking it (the contract half of expand/contract).
    ``failed``: the step does not run, so only the rules that read single statements apply."""
    return run_rules(StepContext(step, before, after, old_code, dialect, ran, failed))


@functools.cache
def _rules_digest() -> str:
    """Hash of the checker's own source: a changed rule never reuses cached findings."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    # schema.py builds the schemas; tracing.py decides what a Python/Alembic/Django step "ran"
    for source in sorted(
        [
            *package.rglob("*.py"),
            package.parent / "schema.py",
            package.parent / "sqltext.py",
            package.parent / "migrations" / "tracing.py",
        ]
    ):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _window(
    migrations: MigrationSet,
    templates: TemplateCache,
    queries: QueryFolder | QuerySources,
    step: Step,
    window: int,
    found: list[Finding],
) -> list[Finding]:
    """Old code of app versions 2..window steps back, prepared against the schema after ``step``
    (tenants that skip versions: lazy migration on login). A query already reported is not again."""
    earlier = [0, *(v for v in migrations.versions if v < step.version)]
    seen = {(f.file, f.line) for f in found}
    extra: list[Finding] = []
    for app_version in earlier[-window:-1] if window > 1 else []:
        app = [q for q in queries.for_version(app_version) if (str(q.path), q.line) not in seen]
        if not app:
            continue
        old_path, new_path = templates.schema_template(app_version), templates.schema_template(step.version)
        old, new = sqlite3.connect(old_path), sqlite3.connect(new_path)
        try:
            extra += lint_queries(app, old, new, _schema(old_path), _schema(new_path), app_version, step)
        finally:
            old.close()
            new.close()
        seen |= {(f.file, f.line) for f in extra}
    return extra


def _cache_key(migrations: MigrationSet, step: Step, app: list[Query], known: bool, window: int = 1) -> str:
    """Findings of a step depend on the steps up to it, the old code, the rules and the paths."""
    parts = [
        _rules_digest(),
        migrations.origin,
        migrations.prefix_hash(step.version),
        str(known),
        str(window),
    ]
    parts += [f"{q.path}:{q.line}:{q.name}:{q.sql}" for q in app]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def _load(path: Path) -> list[Finding] | None:
    try:
        return [Finding(**item) for item in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        return None


def _store(path: Path, findings: list[Finding]) -> None:
    """Write the cache entry under a name only this call uses, then rename it into place: workers
    of ``pytest -n 4`` that store the same entry at once never see or move each other's file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = unique_sibling(path, ".partial")
    try:
        partial.write_text(json.dumps([asdict(f) for f in findings]), encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _selected(findings: list[Finding], options: LintOptions) -> list[Finding]:
    """The findings the options want (rules selected, not ignored, not silenced inline), with the
    configured severities."""
    overrides = dict(options.severity)
    lines: dict[str, list[str]] = {}  # each file read once, however many findings it has
    return [
        replace(f, severity=overrides.get(f.code, f.severity))
        for f in findings
        if overrides.get(f.code) != "off"
        and f.code not in options.ignore
        and (not options.select or f.code in options.select)
        and f.code not in _inline_ignores(f, lines)
    ]


def lint_static(
    migrations: MigrationSet, queries: QueryFolder | QuerySources | None, options: LintOptions
) -> list[Finding]:
    """Dialects with no local engine: schemas built from the DDL with sqlglot, locking rules on top,
    and old queries resolved by sqlglot against the new schema (query_static.py)."""
    from pytest_tenantdb.lint.ddl import apply_ddl
    from pytest_tenantdb.lint.rules.query_static import Resolver, lint_queries_static
    from pytest_tenantdb.migrations import SqlStep

    findings: list[Finding] = []
    schema = Schema()
    previous = 0
    schemas = {0: schema}  # every version's schema, for the query window
    resolvers: dict[int, Resolver] = {}

    def resolver(version: int) -> Resolver:
        if version not in resolvers:
            resolvers[version] = Resolver(schemas[version], options.dialect)
        return resolvers[version]

    for step in migrations:
        if not isinstance(step, SqlStep):
            message = f"a Python step cannot be modelled statically for {options.dialect}; its schema changes are not checked"
            findings.append(finding("TDB001", message, step.path, 1, step.label))
            schemas[step.version] = schema
            previous = step.version
            continue
        after, unread = apply_ddl(schema, list(step.up), options.dialect)
        schemas[step.version] = after
        if step.version > options.since:
            app = queries.for_version(previous) if queries else []
            old_code = [q.sql for q in app] if queries is not None else None
            findings += lint_step(step, schema, after, old_code, options.dialect)
            findings += [
                finding(
                    "TDB001",
                    "this statement could not be modelled, so it was not checked",
                    step.path,
                    s.line,
                    step.label,
                    s.sql,
                )
                for s in unread
            ]
            if queries is not None:  # old code of the last ``window`` app versions on the new schema
                seen: set[tuple[str, int]] = set()
                for app_version in reversed([v for v in schemas if v < step.version][-options.window :]):
                    app = [q for q in queries.for_version(app_version) if (str(q.path), q.line) not in seen]
                    found = lint_queries_static(
                        app, resolver(app_version), resolver(step.version), app_version, step
                    )
                    findings += found
                    seen |= {(f.file, f.line) for f in found}
        schema = after
        previous = step.version
    return findings


def _step_fails(step: Step, failure: StepFailure) -> Finding:
    number = failure.location.rsplit(":", 1)[-1]
    return finding(
        "TDB002",
        f"the step fails on an empty database: {failure.error}",
        step.path,
        int(number) if number.isdigit() else 1,
        step.label,
        failure.statement or "",
    )


def _schema(path: Path, previous: Schema | None = None) -> Schema:
    """A template's schema; what is unchanged since ``previous`` is reused, not introspected again."""
    conn = sqlite3.connect(path)
    try:
        return Schema.from_connection(conn, ignore=IGNORED, previous=previous)
    finally:
        conn.close()


def _inline_ignores(found: Finding, lines: dict[str, list[str]]) -> set[str]:
    """Codes ignored by comments on the finding's line, the line above, or inside its statement."""
    if found.file not in lines:
        try:
            lines[found.file] = Path(found.file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines[found.file] = []
    span = found.statement.count("\n") + 1 if found.statement else 1
    window: Iterable[str] = lines[found.file][max(0, found.line - 2) : found.line - 1 + span]
    codes: set[str] = set()
    for line in window:
        for match in _IGNORE.finditer(line):
            codes.update(c.strip() for c in match[1].split(","))
    return codes


def explain(code: str) -> str:
    rule = RULES.get(code.upper())
    if rule is None:
        raise KeyError(code)
    return (
        f"{rule.code} {rule.name} ({rule.severity}): {rule.summary}\n\n{rule.explanation}\n\n"
        f"Safe alternative: {rule.alternative}\n"
    )
