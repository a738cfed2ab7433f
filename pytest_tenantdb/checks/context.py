"""What every built-in check needs: schemas per version, fresh in-memory tenants, step runs.

A fresh tenant at version v is an in-memory copy (``Connection.backup``) of the cached template
of v: far cheaper than replaying migrations for every hypothesis example.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_tenantdb.checks.effects import StepEffects, analyse
from pytest_tenantdb.checks.recorded import Recording, ReplayedStep, schema_key, usable
from pytest_tenantdb.checks.step_coverage import StepCoverage
from pytest_tenantdb.errors import SchemaDifferenceWarning, StepFailure
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.migrations import Direction, MigrationSet, SqlStep, Step
from pytest_tenantdb.migrations.alembic import AlembicStep, recorded_calls
from pytest_tenantdb.migrations.runner import run_plan
from pytest_tenantdb.migrations.steps import names_table, source_words
from pytest_tenantdb.migrations.tracing import traced
from pytest_tenantdb.queries import QueryFolder
from pytest_tenantdb.schema import Schema, SchemaDiff
from pytest_tenantdb.settings import Settings
from pytest_tenantdb.sqltext import name_words
from pytest_tenantdb.versioning import TABLES

VERSION_TABLES = TABLES


@dataclass
class CheckContext:
    """The migration set under test and everything derived from it, built lazily."""

    templates: TemplateCache
    queries: QueryFolder | None = None
    schema_snapshot: Callable[[sqlite3.Connection], None] | None = None
    snapshot_origin: str = ""
    failures_dir: Path | None = None
    max_rows: int = 5
    window: str = "1"
    schema_compare: str = "semantic"
    step_coverage: StepCoverage | None = None
    app_code: dict[int, list[Callable[[sqlite3.Connection], object]]] = field(default_factory=dict)
    recorded: dict[int, list[str]] = field(default_factory=dict)
    # the project's settings, read by the checker as `tenantdb check` reads them (lint/config.py)
    lint_settings: Settings | None = None
    _findings: list[Finding] | None = None
    _schemas: dict[int, Schema] = field(default_factory=dict)
    _by_sql: dict[tuple[tuple[str, ...], ...], Schema] = field(default_factory=dict)
    _effects: dict[tuple[str, ...], StepEffects] = field(default_factory=dict)
    _templates: dict[int, sqlite3.Connection] = field(default_factory=dict)
    _warned: set[str] = field(default_factory=set)
    _reached: dict[tuple[str, ...], frozenset[str]] = field(default_factory=dict)
    _focus: dict[int, frozenset[str] | None] = field(default_factory=dict)
    _diffs: dict[tuple[int, int], tuple[Schema, Schema, SchemaDiff]] = field(default_factory=dict)
    _recordings: dict[tuple[int, str], Recording] = field(default_factory=dict)

    @property
    def migrations(self) -> MigrationSet:
        return self.templates.migrations

    def previous(self, version: int) -> int:
        earlier = [v for v in self.migrations.versions if v < version]
        return earlier[-1] if earlier else 0

    def next(self, version: int) -> int | None:
        later = [v for v in self.migrations.versions if v > version]
        return later[0] if later else None

    def window_versions(self) -> list[int]:
        """Versions a tenant may still be at when head is released (``tenantdb_window``)."""
        versions = [0, *self.migrations.versions][:-1]
        if self.window.strip().lower() == "all":
            return versions
        return versions[-int(self.window) :] if int(self.window) > 0 else []

    def schema(self, version: int) -> Schema:
        if version not in self._schemas:
            self._schemas[version] = Schema.from_connection(self._template(version), ignore=VERSION_TABLES)
        return self._schemas[version]

    def _template(self, version: int) -> sqlite3.Connection:
        """The template of ``version``, loaded into memory once (copies from memory are cheaper)."""
        if version not in self._templates:
            source = sqlite3.connect(self.templates.schema_template(version))
            memory = sqlite3.connect(":memory:")
            source.backup(memory)
            source.close()
            self._templates[version] = memory
        return self._templates[version]

    def fresh(self, version: int) -> sqlite3.Connection:
        """An in-memory tenant at ``version`` with no rows, in autocommit mode."""
        conn = sqlite3.connect(":memory:", isolation_level=None)
        self._template(version).backup(conn)
        return conn

    def clone(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        copy = sqlite3.connect(":memory:", isolation_level=None)
        conn.backup(copy)
        return copy

    def run(self, conn: sqlite3.Connection, plan: list[tuple[Step, Direction]]) -> list[str]:
        """Run ``plan`` the way the fleet migrator does; return every statement SQLite ran. An
        Alembic revision recorded from this tenant's schema is replayed (checks/recorded.py)."""
        if self._recordings:
            plan = [(self._replayed(conn, step, direction), direction) for step, direction in plan]
        with traced(conn) as statements:
            run_plan(conn, self.migrations, plan, self.templates.store)
        return list(statements)

    def _replayed(self, conn: sqlite3.Connection, step: Step, direction: Direction) -> Step:
        recording = self._recordings.get((step.version, direction))
        if recording is None or recording.start != schema_key(conn):
            return step
        return ReplayedStep(step, recording)

    def _recorded_run(self, conn: sqlite3.Connection, step: Step, direction: Direction) -> list[str]:
        """Run one step, recording what it ran through SQLAlchemy when it can be replayed."""
        if not isinstance(step, AlembicStep) or not step.transactional or self.step_coverage is not None:
            return self.run(conn, [(step, direction)])  # (replaying would hide the lines measured)
        start = schema_key(conn)
        with recorded_calls(Path(step.path)) as calls:
            statements = self.run(conn, [(step, direction)])
        if usable(calls, statements):
            self._recordings[(step.version, direction)] = Recording.of(start, calls)
        return statements

    def schema_of(self, conn: sqlite3.Connection) -> Schema:
        """The schema of ``conn``; introspected once per distinct ``sqlite_master``."""
        key = schema_key(conn)
        if key not in self._by_sql:
            self._by_sql[key] = Schema.from_connection(conn, ignore=VERSION_TABLES)
        return self._by_sql[key]

    def effects(self, traced: list[str], before: Schema, after: Schema) -> StepEffects:
        """What the traced statements wrote; analysed once per distinct statement list."""
        key = tuple(traced)
        if key not in self._effects:
            triggers = {n: t.sql for n, t in {**before.triggers, **after.triggers}.items()}
            self._effects[key] = analyse(traced, set(before.tables) | set(after.tables), triggers)
        return self._effects[key]

    def differences(self, before: Schema, after: Schema) -> SchemaDiff:
        """The part of the difference ``before`` -> ``after`` that fails a check (computed once
        per pair: drawn tenants mostly end with the same schemas). With ``schema_compare =
        semantic`` the cosmetic rest (column order, same-affinity type spellings) is a warning
        naming it."""
        key = (id(before), id(after))
        if key not in self._diffs:
            self._diffs[key] = (before, after, SchemaDiff.between(before, after))  # keeps the ids alive
        diff = self._diffs[key][2]
        if self.schema_compare == "exact" or not diff.cosmetic:
            return diff
        if str(diff.cosmetic) in self._warned:  # once per difference, not once per drawn tenant
            return diff.significant
        self._warned.add(str(diff.cosmetic))
        warnings.warn(
            SchemaDifferenceWarning(
                "schemas differ only where SQLite behaves the same (code using SELECT * or INSERT "
                "without a column list sees column order); set schema_compare = 'exact' in [tool.tenantdb] to "
                "fail on it:\n  " + str(diff.cosmetic).replace("\n", "\n  ")
            ),
            stacklevel=2,
        )
        return diff.significant

    def reached(self, traced: list[str], before: Schema, after: Schema) -> frozenset[str]:
        """Tables (lower case) the statements a step ran can have changed: those they name, those
        the triggers of those tables name and those whose foreign keys point at them, transitively. Comparing only these keeps the
        cost of a check from growing with the tables the step does not touch."""
        key = ("reached", *traced)
        if key not in self._reached:
            triggers: dict[str, list[str]] = {}
            for trigger in (*before.triggers.values(), *after.triggers.values()):
                triggers.setdefault(trigger.table.lower(), []).append(trigger.sql)
            words: set[str] = set()
            for sql in traced:
                words |= name_words(sql)
            tables = {t.lower() for t in (*before.tables, *after.tables)}
            children: dict[str, set[str]] = {}  # a parent's rows going can cascade to its children
            for name, info in (*before.tables.items(), *after.tables.items()):
                for fk in info.foreign_keys:
                    children.setdefault(fk.ref_table.lower(), set()).add(name.lower())
            found = words & tables
            todo = list(found)
            while todo:
                current = todo.pop()
                nearby = set(children.get(current, ()))
                for sql in triggers.get(current, []):
                    nearby |= name_words(sql) & tables
                for name in nearby - found:
                    found.add(name)
                    todo.append(name)
            self._reached[key] = frozenset(found)
        return self._reached[key]

    def focus(self, version: int) -> frozenset[str] | None:
        """The tables (lower case) whose rows the checks of step ``version`` need: those its
        statements (up and down, run once on an empty tenant) can reach and, for a step written
        in Python, whose statements may depend on the data, those its source names (a Django
        model ``Foo`` of app ``bar`` names ``bar_foo``). Drawing rows for the other tables costs
        time per drawn tenant and can change nothing the checks compare. None (draw every table)
        when the step fails on an empty tenant: the upgrade check reports that."""
        if version not in self._focus:
            step = self.migrations.step(version)
            start = self.previous(version)
            tenant = self.fresh(start)
            try:
                statements = self._recorded_run(tenant, step, "up")
                if step.has_down:
                    statements += self._recorded_run(tenant, step, "down")
            except StepFailure:
                self._focus[version] = None
                return None
            finally:
                tenant.close()
            before, after = self.schema(start), self.schema(version)
            if not isinstance(step, SqlStep):
                statements.append(" ".join(_source_names(step, before)))
            self._focus[version] = self.reached(statements, before, after) & {
                t.lower() for t in before.tables
            }
        return self._focus[version]

    def lint_findings(self) -> list[Finding]:
        """``tenantdb check``'s findings for the whole set, computed once."""
        if self._findings is None:
            from pytest_tenantdb.lint.baseline import without_known
            from pytest_tenantdb.lint.config import lint_options, lint_queries
            from pytest_tenantdb.lint.engine import LintOptions, lint_project
            from pytest_tenantdb.lint.gitbase import repository_root

            settings = self.lint_settings
            if settings is None:
                self._findings = lint_project(self.migrations, self.templates, self.queries, LintOptions())
                return self._findings
            options = lint_options(settings, self.migrations)
            found = lint_project(
                self.migrations, self.templates, lint_queries(settings, self.migrations), options
            )
            root = repository_root(settings.root.resolve())
            self._findings = without_known(found, settings.baseline, str(root))
        return self._findings

    def snapshot_schema(self) -> Schema:
        """The schema a brand-new tenant gets from the project's schema snapshot."""
        assert self.schema_snapshot is not None
        conn = sqlite3.connect(":memory:", isolation_level=None)
        self.schema_snapshot(conn)
        return Schema.from_connection(conn, ignore=VERSION_TABLES)


def _source_names(step: Step, schema: Schema) -> set[str]:
    """Tables of ``schema`` a Python-driven step's source names, directly or as a Django model."""
    words = source_words(step.path)
    if words is None:
        return {t.lower() for t in schema.tables}  # cannot tell: every table
    return {t.lower() for t in schema.tables if names_table(words, t)}


def table_rows(
    conn: sqlite3.Connection, schema: Schema, only: frozenset[str] | None = None
) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table holding data (of the tables ``only`` names, lower case, when
    given), columns by name and rows sorted, for comparisons."""
    result = {}
    for name, table in schema.tables.items():
        if not table.holds_data or (only is not None and name.lower() not in only):
            continue  # a virtual table's index, rebuilt from its content table
        # by name, not position: a rebuild that reorders columns keeps the same data
        cols = ", ".join(
            f'"{n}"' for n in sorted((c.name for c in table.columns if not c.hidden), key=str.lower)
        )
        quoted = name.replace('"', '""')
        rows = conn.execute(f'SELECT {cols} FROM "{quoted}"').fetchall()
        result[name] = sorted(rows, key=repr)
    return result
