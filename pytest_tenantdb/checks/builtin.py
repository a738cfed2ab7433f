"""The built-in checks. Each is a plain function over one tenant (an in-memory connection
holding data valid at its version, which the check leaves as it found it: the tenant is saved
as the failing one if the check fails); :mod:`pytest_tenantdb.checks.items` draws the tenants
with hypothesis and turns each check into a pytest item. The three checks of a step share one
drawn tenant (:func:`step_checks`).

upgrade      step v-1 -> v succeeds on any data valid at v-1, and leaves the schema it leaves
             on an empty tenant (no DDL that depends on the data)
data_kept    rows of tables and columns the step does not write are unchanged
round_trip   up -> down restores schema and data; up -> down -> up equals up
every_path   from each version in the window, migrating to head succeeds
no_drift     a tenant migrated from any window version has exactly head's schema;
             a tenant created from the schema snapshot too
old_code     app code of version v still runs on a tenant migrated to v+1
history      released steps are unchanged (checksums in tenantdb.lock)
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from pytest_tenantdb.checks.context import CheckContext, table_rows
from pytest_tenantdb.errors import CheckFailure, QueryParameterError, StepFailure
from pytest_tenantdb.lint.placeholders import binding, parameters
from pytest_tenantdb.migrations import Step
from pytest_tenantdb.schema import Schema

_CONSTRAINT_TABLE = re.compile(r"constraint failed: ([\w]+)\.")

Body = Callable[[CheckContext, sqlite3.Connection, Mapping[str, object]], None]


@dataclass(frozen=True)
class Check:
    """One built-in check: its pytest id, the version its tenants are drawn at, its body."""

    id: str
    kind: str
    version: int | None
    body: Body | None = None
    run_once: Callable[[CheckContext], None] | None = None
    params: tuple[str, ...] = ()
    doc: str = ""
    aim: int | None = None  # the step whose changes drawn tenants are aimed at (checks/aim.py)


_NOT_NULL = re.compile(r"NOT NULL constraint failed: (\w+)\.(\w+)")
_UNIQUE = re.compile(r"UNIQUE constraint failed: ((?:\w+\.\w+(?:, )?)+)")
_FROM = re.compile(r"\bFROM\s+[\"`\[]?(\w+)", re.IGNORECASE)


Row = tuple[object, ...]


def _offending(
    before: sqlite3.Connection, statement: str | None, error: str
) -> tuple[str, list[str], list[Row]] | None:
    """The table, its columns and the rows of the tenant that made ``error`` happen, as far as
    it can be told."""
    tables = {
        r[0].lower(): r[0] for r in before.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    match = _CONSTRAINT_TABLE.search(error)
    if match is None:
        return None
    table = match[1]
    if table.lower() not in tables and statement:  # a new table filled from an old one (rebuild)
        source = _FROM.search(statement)
        if source is None or source[1].lower() not in tables:
            return None
        table = tables[source[1].lower()]
    quoted = table.replace('"', '""')
    try:
        columns = [r[1] for r in before.execute(f'PRAGMA table_info("{quoted}")')]
        rows: list[Row]
        if (m := _NOT_NULL.search(error)) is not None:
            rows = before.execute(f'SELECT * FROM "{quoted}" WHERE "{m[2]}" IS NULL LIMIT 3').fetchall()
        elif (m := _UNIQUE.search(error)) is not None:
            rows = []
            for collation in ("", " COLLATE NOCASE"):  # the new index may ignore case
                cols = ", ".join(f'"{c.split(".")[1]}"{collation}' for c in m[1].split(", "))
                rows = (
                    rows
                    or before.execute(
                        f'SELECT * FROM "{quoted}" WHERE ({cols}) IN '
                        f'(SELECT {cols} FROM "{quoted}" GROUP BY {cols} HAVING COUNT(*) > 1) LIMIT 3'
                    ).fetchall()
                )
        else:
            rows = []
        if not rows:
            rows = before.execute(f'SELECT * FROM "{quoted}" LIMIT 3').fetchall()
    except sqlite3.Error:
        return table, [], []
    return table, columns, rows


#: A value longer than this is cut in an offending row (a blob, a long text).
VALUE_WIDTH = 60


def format_row(columns: list[str], row: Row) -> str:
    """``id=1, author_id=NULL, title='x'``: each value with its column's name."""
    names = columns if len(columns) == len(row) else [f"column {i + 1}" for i in range(len(row))]
    shown = []
    for name, value in zip(names, row, strict=True):
        text = "NULL" if value is None else repr(value)
        if len(text) > VALUE_WIDTH:
            text = text[: VALUE_WIDTH - 3] + "..."
        shown.append(f"{name}={text}")
    return ", ".join(shown)


def _step_failed(
    exc: StepFailure, start: int, before: sqlite3.Connection | None, what: str, check: str = ""
) -> CheckFailure:
    lines = [f"{what}: step {exc.step} ({exc.direction}) failed on a tenant at version {start}"]
    if exc.code:  # a Python step: its line, and the statement only when the database refused it
        lines.append(f"  code:      {exc.code}")
    if exc.statement or not exc.code:
        lines.append(f"  statement: {exc.statement or '(none)'}")
    lines += [f"  at:        {exc.location}", f"  error:     {exc.error}"]
    found = _offending(before, exc.statement, exc.error) if before is not None else None
    if found is not None:
        table, columns, rows = found
        lines.append(f"  table:     {table}")
        lines.extend(f"  offending row: {format_row(columns, row)}" for row in rows)
    return CheckFailure("\n".join(lines), check)


STEP_KINDS = ("upgrade", "data_kept", "round_trip")


def step_checks(step: Step, kinds: Collection[str] = STEP_KINDS) -> Body:
    """The checks of one step (``kinds`` of upgrade, data_kept, round_trip) on one drawn tenant.

    The tenant is copied and migrated up once for all of them, and a failure says which check
    it is (:attr:`CheckFailure.check`), so one hypothesis run serves the three pytest items."""

    def body(ctx: CheckContext, conn: sqlite3.Connection, _: Mapping[str, object]) -> None:
        start = ctx.previous(step.version)
        work = ctx.clone(conn)
        try:
            traced = ctx.run(work, [(step, "up")])
        except StepFailure as exc:
            if "upgrade" in kinds:
                raise _step_failed(exc, start, conn, "upgrade", "upgrade") from None
            return  # the upgrade item reports it
        after = ctx.schema_of(work)
        failed: dict[str, CheckFailure] = {}
        checks: list[tuple[str, Callable[[], None]]] = [
            ("upgrade", lambda: _same_as_empty(ctx, step, after)),
            ("data_kept", lambda: _data_kept(ctx, step, conn, work, traced, after)),
            ("round_trip", lambda: _round_trip(ctx, step, conn, work, after)),  # last: it migrates down
        ]
        for kind, check in checks:
            if kind in kinds:
                try:
                    check()
                except CheckFailure as exc:
                    failed[kind] = exc
        if len(failed) == 1:
            raise next(iter(failed.values()))
        if failed:
            raise StepChecksFailure(failed)

    return body


class StepChecksFailure(CheckFailure):
    """Several checks of a step failed on the same drawn tenant; ``parts`` holds each one's."""

    def __init__(self, parts: dict[str, CheckFailure]) -> None:
        super().__init__("\n\n".join(map(str, parts.values())), "+".join(parts))
        self.parts = parts


def upgrade(step: Step) -> Body:
    return step_checks(step, ("upgrade",))


def data_kept(step: Step) -> Body:
    return step_checks(step, ("data_kept",))


def round_trip(step: Step) -> Body:
    return step_checks(step, ("round_trip",))


def _same_as_empty(ctx: CheckContext, step: Step, after: Schema) -> None:
    """Per-step determinism: the schema the step leaves does not depend on the tenant's data."""
    diff = ctx.differences(ctx.schema(step.version), after)
    if diff:
        raise CheckFailure(
            f"upgrade: step {step.label} leaves another schema on this tenant's data than on an "
            "empty tenant (DDL that depends on the data; empty -> this tenant):\n  "
            + str(diff).replace("\n", "\n  "),
            "upgrade",
        )


def every_path(start: int) -> Body:
    def body(ctx: CheckContext, conn: sqlite3.Connection, _: Mapping[str, object]) -> None:
        try:
            ctx.run(ctx.clone(conn), ctx.migrations.plan(start, ctx.migrations.head))
        except StepFailure as exc:
            raise _step_failed(exc, start, conn, f"every path (from {start} to head)") from None

    return body


def no_drift(start: int) -> Body:
    def body(ctx: CheckContext, conn: sqlite3.Connection, _: Mapping[str, object]) -> None:
        migrated_tenant = ctx.clone(conn)
        try:
            ctx.run(migrated_tenant, ctx.migrations.plan(start, ctx.migrations.head))
        except StepFailure:
            return  # every_path reports it
        migrated = ctx.schema_of(migrated_tenant)
        diff = ctx.differences(ctx.schema(ctx.migrations.head), migrated)
        if diff:
            raise CheckFailure(
                f"no drift: a tenant migrated from version {start} differs from a fresh tenant at "
                f"head (fresh -> migrated):\n  " + str(diff).replace("\n", "\n  ")
            )

    return body


def snapshot_drift(ctx: CheckContext) -> None:
    """A tenant created from the schema snapshot has the schema of one migrated to head."""
    diff = ctx.differences(ctx.schema(ctx.migrations.head), ctx.snapshot_schema())
    if diff:
        raise CheckFailure(
            f"no drift: new tenants created from {ctx.snapshot_origin} differ from tenants migrated "
            f"to head (migrated -> snapshot):\n  " + str(diff).replace("\n", "\n  ")
        )


def _row_key(schema: Schema, table: str) -> list[str]:
    info = schema.tables[table]
    return [info.rowid_alias] if info.rowid_alias else list(info.primary_key)


def _keyed(
    schema: Schema, table: str, conn: sqlite3.Connection, key_cols: list[str]
) -> tuple[list[str], dict[object, dict[str, object]] | None, list[dict[str, object]]]:
    """The rows of ``table`` by ``key_cols`` (the key the rows had *before* the step, so that a
    step widening a primary key still finds each old row under its old key)."""
    info = schema.tables[table]
    columns = [c.name for c in info.columns if not c.hidden]
    names = {c.lower(): c for c in columns}
    if any(k.lower() not in names for k in key_cols):
        key_cols = []  # the old key is not there any more: rows are compared as a whole
    key_cols = [names[k.lower()] for k in key_cols]
    quoted = table.replace('"', '""')
    rows = [
        dict(zip(columns, row, strict=True))
        for row in conn.execute("SELECT " + ", ".join(f'"{c}"' for c in columns) + f' FROM "{quoted}"')
    ]
    if not key_cols:
        return columns, None, rows
    return columns, {tuple(r[k] for k in key_cols if k): r for r in rows}, rows


def _data_kept(
    ctx: CheckContext,
    step: Step,
    before: sqlite3.Connection,
    conn: sqlite3.Connection,
    traced: list[str],
    after_schema: Schema,
) -> None:
    """Rows of the tables and columns the step does not write are unchanged (``before`` is the
    tenant, ``conn`` the tenant migrated up, having run ``traced``)."""
    before_schema = ctx.schema(ctx.previous(step.version))
    effects = ctx.effects(traced, before_schema, after_schema)
    reached = ctx.reached(traced, before_schema, after_schema)
    problems: list[str] = []
    for table in sorted(after_schema.tables):
        lower = table.lower()
        if lower not in reached and effects.source_table(lower) not in reached:
            continue  # no statement the step ran names it (nor a trigger they fire): unchanged
        origin = lower if lower in effects.recreated else effects.source_table(lower)
        source = next((t for t in before_schema.tables if t.lower() == origin), None)
        if source is None or lower in effects.whole_tables or not after_schema.tables[table].holds_data:
            continue  # a new table, one the step rewrites, or a virtual table's derived index
        if not before_schema.tables[source].holds_data:
            continue
        renames = effects.column_renames.get(lower, {})
        key_cols = _row_key(before_schema, source)
        old_cols, old_keyed, old_rows = _keyed(before_schema, source, before, key_cols)
        if lower in effects.recreated:
            if old_rows:
                problems.append(
                    f"{table}: the step drops the table and creates it again without copying its rows: "
                    f"{len(old_rows)} row(s) gone, e.g. {old_rows[0]!r}"
                )
            continue
        key_cols = [renames.get(k.lower(), k) for k in key_cols]
        new_cols, new_keyed, new_rows = _keyed(after_schema, table, conn, key_cols)
        pairs = [
            (c, renames.get(c.lower(), c))
            for c in old_cols
            if renames.get(c.lower(), c).lower() in {n.lower() for n in new_cols}
            and not effects.column_written(lower, renames.get(c.lower(), c).lower())
        ]
        new_names = {n.lower(): n for n in new_cols}
        if old_keyed is not None and new_keyed is not None:
            for key, old in old_keyed.items():
                new = new_keyed.get(key)
                if new is None:
                    problems.append(f"{table}: row {key!r} is gone: {old!r}")
                    continue
                for old_col, new_col in pairs:
                    if old[old_col] != new[new_names[new_col.lower()]]:
                        problems.append(
                            f"{table}.{new_col}: row {key!r} changed {old[old_col]!r} -> "
                            f"{new[new_names[new_col.lower()]]!r}"
                        )
        else:
            project_old = sorted((tuple(r[o] for o, _ in pairs) for r in old_rows), key=repr)
            project_new = sorted(
                (tuple(r[new_names[n.lower()]] for _, n in pairs) for r in new_rows), key=repr
            )
            if lower in effects.rows_added:
                missing = [r for r in project_old if r not in project_new]
                if missing:
                    problems.append(f"{table}: rows gone: {missing[:3]!r}")
            elif project_old != project_new:
                problems.append(f"{table}: rows changed: {project_old[:3]!r} -> {project_new[:3]!r}")
    if problems:
        raise CheckFailure(
            f"data kept: step {step.label} loses or changes data it does not write:\n  "
            + "\n  ".join(problems[:10]),
            "data_kept",
        )


def _round_trip(
    ctx: CheckContext, step: Step, before: sqlite3.Connection, conn: sqlite3.Connection, schema_up: Schema
) -> None:
    """up -> down restores ``before``'s schema and data; up -> down -> up equals up (``conn`` is
    the tenant migrated up)."""
    start = ctx.previous(step.version)
    schema_before = ctx.schema(start)
    only = ctx.focus(step.version)  # no other table holds rows or can be changed by the step
    rows_before = table_rows(before, schema_before, only)
    rows_up = table_rows(conn, schema_up, only)
    try:
        ctx.run(conn, [(step, "down")])
    except StepFailure as exc:
        raise _step_failed(exc, step.version, None, "round trip", "round_trip") from None
    schema_down = ctx.schema_of(conn)
    _same(
        ctx,
        f"round trip: up -> down of {step.label} does not restore the",
        schema_before,
        schema_down,
        rows_before,
        table_rows(conn, schema_down, only),
    )
    try:
        ctx.run(conn, [(step, "up")])
    except StepFailure as exc:
        raise _step_failed(exc, start, None, "round trip (up -> down -> up)", "round_trip") from None
    schema_again = ctx.schema_of(conn)
    _same(
        ctx,
        f"round trip: up -> down -> up of {step.label} differs from up in the",
        schema_up,
        schema_again,
        rows_up,
        table_rows(conn, schema_again, only),
    )


def _same(
    ctx: CheckContext,
    what: str,
    schema_a: Schema,
    schema_b: Schema,
    rows_a: Mapping[str, list[tuple[object, ...]]],
    rows_b: Mapping[str, list[tuple[object, ...]]],
) -> None:
    diff = ctx.differences(schema_a, schema_b)
    if diff:
        raise CheckFailure(f"{what} schema:\n  " + str(diff).replace("\n", "\n  "), "round_trip")
    for table in sorted(rows_a):
        if rows_a[table] != rows_b.get(table):
            lost = [r for r in rows_a[table] if r not in rows_b.get(table, [])]
            raise CheckFailure(
                f"{what} data of table {table}:\n  before: {rows_a[table][:3]!r}\n  after:  "
                f"{rows_b.get(table, [])[:3]!r}\n  rows lost or changed: {lost[:3]!r}",
                "round_trip",
            )


def query_params(sqls: list[str]) -> tuple[str, ...]:
    """The parameters ``sqls`` use, by the key hypothesis draws a value for, sorted: ``id`` for
    ``:id``, ``@id`` and ``$id``; ``?1``, ``?2``... for positional ones (``?``, ``?NNN``)."""
    found: set[str] = set()
    for sql in sqls:
        found.update(parameters(sql).keys)
    return tuple(sorted(found))


def old_code(version: int) -> Body:
    def body(ctx: CheckContext, conn: sqlite3.Connection, params: Mapping[str, object]) -> None:
        target = ctx.next(version)
        assert target is not None
        new = ctx.clone(conn)
        try:
            ctx.run(new, ctx.migrations.plan(version, target))
        except StepFailure:
            return  # upgrade reports it
        code = _app_code(ctx, version, params)
        failed: list[tuple[AppCode, str]] = []
        for piece in code:
            old_error = _attempt(conn, piece.run)
            new_error = _attempt(new, piece.run)
            if new_error is not None and old_error is None:
                failed.append((piece, new_error))
        if failed:
            raise CheckFailure(old_code_failure(version, target, failed, len(code), params))

    return body


@dataclass(frozen=True)
class AppCode:
    """One piece of old app code: what the failure calls it, how it runs, its SQL if it is a query."""

    label: str
    run: Callable[[sqlite3.Connection], object]
    sql: str | None = None


SHOWN_FAILURES = 3  # an old_code failure shows this many failing queries in full, names the rest
SHOWN_PARAMETERS = 3  # and this many of a query's parameters
SHOWN_SQL = 160  # characters of a query, on one line
SHOWN_VALUE = 24  # characters of a parameter's value


def old_code_failure(
    version: int, target: int, failed: list[tuple[AppCode, str]], total: int, params: Mapping[str, object]
) -> str:
    """What an old_code failure says: the app version and the schema versions, then each failing
    query (the first few) with its SQL, SQLite's error and a sample of its own parameters."""
    lines = [
        f"old code still runs: app version {version} breaks on a tenant migrated from schema version "
        f"{version} to {target}: {len(failed)} of its {total} queries and functions work at {version} "
        f"but fail at {target}"
    ]
    for piece, error in failed[:SHOWN_FAILURES]:
        lines.append(f"  {piece.label}")
        if piece.sql is not None:
            lines.append(f"    {_shorten(' '.join(piece.sql.split()), SHOWN_SQL)}")
        lines.append(f"    error at {target}: {error}")
        sample = _parameter_sample(piece.sql, params) if piece.sql is not None else ""
        if sample:
            lines.append(f"    parameters: {sample}")
    rest = [piece.label for piece, _ in failed[SHOWN_FAILURES:]]
    if rest:
        more = ", ".join(rest[:SHOWN_FAILURES]) + (", ..." if len(rest) > SHOWN_FAILURES else "")
        lines.append(f"  and {len(rest)} more: {more}")
    return "\n".join(lines)


def _parameter_sample(sql: str, params: Mapping[str, object]) -> str:
    """The first few parameters ``sql`` uses, with the values drawn for them."""
    keys = parameters(sql).keys
    shown = [f"{key}={_shorten(repr(params.get(key)), SHOWN_VALUE)}" for key in keys[:SHOWN_PARAMETERS]]
    if len(keys) > SHOWN_PARAMETERS:
        shown.append(f"(+{len(keys) - SHOWN_PARAMETERS} more)")
    return ", ".join(shown)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _app_code(ctx: CheckContext, version: int, params: Mapping[str, object]) -> list[AppCode]:
    code: list[AppCode] = []
    if ctx.queries is not None:
        for query in ctx.queries.for_version(version):
            label = f"query {query.name} ({query.location})"
            code.append(AppCode(label, _statement(label, query.sql, params), query.sql))
    for fn in ctx.app_code.get(version, []):
        code.append(AppCode(f"function {fn.__module__}.{fn.__qualname__}", fn))
    for n, sql in enumerate(ctx.recorded.get(version, []), start=1):
        label = f"recorded statement {n}"
        code.append(AppCode(label, _statement(f"{label} ({_shorten(sql, 80)})", sql, params), sql))
    return code


def _statement(label: str, sql: str, values: Mapping[str, object]) -> Callable[[sqlite3.Connection], object]:
    """Run ``sql`` with the drawn value of each of its parameters (NULL for one not drawn).

    A query Python's sqlite3 cannot bind (named and bare ``?`` mixed) fails the check with why,
    rather than passing unchecked."""
    try:
        bound = binding(sql, values)
    except QueryParameterError as exc:
        raise CheckFailure(
            f"old code still runs: {label} cannot be run, so it was not checked: {exc}"
        ) from exc

    def run(conn: sqlite3.Connection) -> object:
        return conn.execute(sql, bound).fetchall()

    return run


def _attempt(conn: sqlite3.Connection, run: Callable[[sqlite3.Connection], object]) -> str | None:
    """Run app code in a savepoint that is rolled back; return its error, if any."""
    conn.execute("SAVEPOINT tenantdb_app")
    try:
        run(conn)
    except sqlite3.Error as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.execute("ROLLBACK TO tenantdb_app")
        conn.execute("RELEASE tenantdb_app")
    return None


def all_checks(ctx: CheckContext, history: Callable[[CheckContext], None] | None) -> list[Check]:
    """The checks for ``ctx``'s migration set, in a stable order."""
    checks: list[Check] = []
    for step in ctx.migrations:
        start = ctx.previous(step.version)
        aim = step.version
        checks.append(Check(f"{step.label}::upgrade", "upgrade", start, upgrade(step), aim=aim))
        checks.append(Check(f"{step.label}::data_kept", "data_kept", start, data_kept(step), aim=aim))
        if step.has_down:
            checks.append(Check(f"{step.label}::round_trip", "round_trip", start, round_trip(step), aim=aim))
    for start in ctx.window_versions():
        checks.append(Check(f"every_path::from_{start:04d}", "every_path", start, every_path(start)))
        checks.append(Check(f"no_drift::from_{start:04d}", "no_drift", start, no_drift(start)))
    if ctx.schema_snapshot is not None:
        checks.append(Check("no_drift::snapshot", "no_drift", None, run_once=snapshot_drift))
    for version in (0, *ctx.migrations.versions):
        target = ctx.next(version)
        if target is None:
            continue
        sqls = [q.sql for q in ctx.queries.for_version(version)] if ctx.queries else []
        sqls += ctx.recorded.get(version, [])
        if sqls or ctx.app_code.get(version):
            checks.append(
                Check(
                    f"old_code::app_{version:04d}_on_{target:04d}",
                    "old_code",
                    version,
                    old_code(version),
                    params=query_params(sqls),
                )
            )
    if history is not None:
        checks.append(Check("history", "history", None, run_once=history))
    for step in ctx.migrations:
        checks.append(Check(f"{step.label}::compatible", "compatible", None, run_once=compatible(step.label)))
    return checks


def compatible(label: str) -> Callable[[CheckContext], None]:
    """The backward-compatibility rules (``tenantdb check``) for one step, as a test."""

    def run(ctx: CheckContext) -> None:
        from pytest_tenantdb.lint.findings import as_text

        findings = [f for f in ctx.lint_findings() if f.step == label and f.severity != "note"]
        if findings:
            raise CheckFailure(f"compatible: step {label} is not backward compatible:\n" + as_text(findings))

    return run
