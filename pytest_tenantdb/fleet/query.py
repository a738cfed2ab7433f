"""Read-only queries over many tenant files, map-reduce style (``Fleet.query``).

The query is written for one tenant, as the app writes it (``SELECT count(*) FROM tasks``). The
tenants are ATTACHed to one in-memory connection in batches of at most SQLite's attach limit
(``SQLITE_LIMIT_ATTACHED``, 10 by default), and the query runs once per attached tenant with its
table names qualified by the tenant's schema (``"t3".tasks``): the names are found with sqlglot's
tokenizer and prefixed in the query's own text, nothing else of it is rewritten. A query whose
tables cannot all be qualified that way (a ``PRAGMA``, a table-valued pragma function) runs on
one connection per tenant instead. Either way one batch is open at a time, whatever the fleet's size.

Each tenant's rows come back tagged with its id; ``reduce`` folds them all. A tenant on which the
query fails (a table an old version does not have yet, a locked or corrupted file) is an outcome
with SQLite's message, never an exception. Only reading is allowed: an authorizer refuses every
action but reading (and ``PRAGMA query_only`` is on); a writing query raises
:class:`~pytest_tenantdb.errors.ReadOnlyQueryError` before it runs on any tenant.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_tenantdb import recording
from pytest_tenantdb.errors import QueryError, ReadOnlyQueryError
from pytest_tenantdb.fleet.directory import UnreadableTenant, open_readonly, read_header, readonly_uri

#: Pragmas that only read (without a value): the rest change something and are refused.
READ_PRAGMAS = frozenset(
    {
        "application_id",
        "collation_list",
        "compile_options",
        "data_version",
        "database_list",
        "foreign_key_check",
        "foreign_key_list",
        "freelist_count",
        "function_list",
        "index_info",
        "index_list",
        "index_xinfo",
        "integrity_check",
        "journal_mode",
        "module_list",
        "page_count",
        "page_size",
        "pragma_list",
        "quick_check",
        "schema_version",
        "table_info",
        "table_list",
        "table_xinfo",
        "user_version",
    }
)
_READS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
}
_ALIAS = "tenantdb_q{}"
#: Eponymous virtual tables (table-valued functions): not the tenant's tables, never qualified.
_EPONYMOUS = (
    "pragma_",
    "json_each",
    "json_tree",
    "generate_series",
    "dbstat",
    "sqlite_dbpage",
    "sqlite_stmt",
)
QueryRow = tuple[Any, ...]


@dataclass(frozen=True)
class TenantRows:
    """One tenant's part of a query: ``status`` ``ok`` with its ``rows``, ``failed`` with SQLite's
    ``error`` (a missing table, say), or the status of a file that cannot be read (``locked``,
    ``corrupt``, ``not_sqlite``, ``empty``, ``unreadable``, ``hot_journal``)."""

    tenant: str
    path: str
    status: str
    rows: tuple[QueryRow, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self) -> str:
        return f"{self.tenant}: {self.status}" + (f": {self.error}" if self.error else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "path": self.path,
            "status": self.status,
            "rows": [list(r) for r in self.rows],
            "error": self.error,
        }


@dataclass(frozen=True)
class QueryResult:
    """What :func:`query_files` returned: per tenant (in fleet order), the column names, the
    reduced value (when ``reduce`` was given) and how many batches of ATTACHed tenants ran."""

    sql: str
    columns: tuple[str, ...]
    tenants: tuple[TenantRows, ...]
    reduced: Any = None
    batches: int = 0
    attached: bool = True
    seconds: float = field(default=0.0, compare=False)

    @property
    def rows(self) -> list[QueryRow]:
        """Every row of every tenant that answered, the tenant's id first: ``("acme", 12)``."""
        return [(t.tenant, *row) for t in self.tenants if t.ok for row in t.rows]

    def by_tenant(self) -> dict[str, list[QueryRow]]:
        """Each tenant that answered, with its rows (without the id)."""
        return {t.tenant: list(t.rows) for t in self.tenants if t.ok}

    def scalars(self) -> dict[str, Any]:
        """Each tenant's first column of its first row (None without rows): ``{"acme": 12}``."""
        return {t.tenant: (t.rows[0][0] if t.rows else None) for t in self.tenants if t.ok}

    @property
    def failed(self) -> list[TenantRows]:
        return [t for t in self.tenants if not t.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def raise_on_failure(self) -> None:
        """Raise :class:`QueryError` naming the tenants the query failed on (the first ten)."""
        if self.failed:
            shown = "\n  ".join(t.describe() for t in self.failed[:10])
            more = f"\n  ... and {len(self.failed) - 10} more" if len(self.failed) > 10 else ""
            raise QueryError(
                f"the query failed on {len(self.failed)} of {len(self.tenants)} tenants:\n  {shown}{more}\n"
                "A table missing on old tenants is expected before they migrate; select them with "
                "result.failed, or migrate first."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sql": self.sql,
            "columns": list(self.columns),
            "tenants": [t.to_dict() for t in self.tenants],
            "failed": len(self.failed),
            "batches": self.batches,
        }


class _Guard:
    """The authorizer: reading is allowed, anything else is refused and remembered."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None
    ) -> int:
        if action in _READS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master":
            # SQLite asks this while setting up an eponymous virtual table (pragma_table_list);
            # a real write of sqlite_master is refused by SQLite itself and by query_only
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and arg2 is None and (arg1 or "").lower() in READ_PRAGMAS:
            return sqlite3.SQLITE_OK
        name = _ACTION_NAMES.get(action, f"action {action}")
        self.refused.append(f"{name} {arg1 or ''}".strip() + (f" = {arg2}" if arg2 else ""))
        return sqlite3.SQLITE_DENY


_ACTION_NAMES = {
    getattr(sqlite3, name): name.removeprefix("SQLITE_").replace("_", " ")
    for name in (
        "SQLITE_CREATE_INDEX",
        "SQLITE_CREATE_TABLE",
        "SQLITE_CREATE_TEMP_INDEX",
        "SQLITE_CREATE_TEMP_TABLE",
        "SQLITE_CREATE_TEMP_TRIGGER",
        "SQLITE_CREATE_TEMP_VIEW",
        "SQLITE_CREATE_TRIGGER",
        "SQLITE_CREATE_VIEW",
        "SQLITE_DELETE",
        "SQLITE_DROP_INDEX",
        "SQLITE_DROP_TABLE",
        "SQLITE_DROP_TEMP_INDEX",
        "SQLITE_DROP_TEMP_TABLE",
        "SQLITE_DROP_TEMP_TRIGGER",
        "SQLITE_DROP_TEMP_VIEW",
        "SQLITE_DROP_TRIGGER",
        "SQLITE_DROP_VIEW",
        "SQLITE_INSERT",
        "SQLITE_PRAGMA",
        "SQLITE_TRANSACTION",
        "SQLITE_UPDATE",
        "SQLITE_ATTACH",
        "SQLITE_DETACH",
        "SQLITE_ALTER_TABLE",
        "SQLITE_REINDEX",
        "SQLITE_ANALYZE",
        "SQLITE_CREATE_VTABLE",
        "SQLITE_DROP_VTABLE",
        "SQLITE_SAVEPOINT",
    )
    if hasattr(sqlite3, name)
}


def attach_limit() -> int:
    """How many databases one connection may ATTACH (``SQLITE_LIMIT_ATTACHED``, 10 by default)."""
    with closing(sqlite3.connect(":memory:")) as conn:
        return int(conn.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED))


def qualifier(sql: str) -> Callable[[str], str] | None:
    """A function giving ``sql`` with each table name prefixed by a schema (``"t3".tasks``), or
    None when ``sql`` is not one query whose tables can all be qualified that way."""
    import sqlglot
    from sqlglot import exp

    try:
        trees = sqlglot.parse(sql, read="sqlite")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
        return None
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        return None
    tree = trees[0]
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    inserts: list[int] = []  # offsets where "alias". goes
    replaces: list[tuple[int, int]] = []  # spans of an explicit "main" to replace
    for table in tree.find_all(exp.Table):
        name = table.this
        if not isinstance(name, exp.Identifier) or "start" not in name.meta:
            return None  # a table-valued function: pragma_table_info('t'), json_each(...)
        db = table.args.get("db")
        if table.args.get("catalog") is not None or name.name.lower().startswith(_EPONYMOUS):
            return None
        if db is None:
            if name.name.lower() in ctes:
                continue
            inserts.append(int(name.meta["start"]))
        elif isinstance(db, exp.Identifier) and db.name.lower() == "main" and "start" in db.meta:
            replaces.append((int(db.meta["start"]), int(db.meta["end"]) + 1))
        else:
            return None  # temp.x or another schema: not the tenant's
    edits = sorted([(s, s, True) for s in inserts] + [(s, e, False) for s, e in replaces], reverse=True)

    def qualify(alias: str) -> str:
        text = sql
        for start, end, insert in edits:
            text = text[:start] + (f'"{alias}".' if insert else f'"{alias}"') + text[end:]
        return text

    return qualify


def _status(exc: sqlite3.Error) -> str:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return "locked"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return "corrupt"
    if "unable to open" in text:
        return "unreadable"
    if getattr(exc, "sqlite_errorcode", None) == 776:
        return "hot_journal"
    return "failed"


def _clean(message: str, alias: str) -> str:
    return re.sub(rf'"?{re.escape(alias)}"?\.', "", message)


def _refuse(sql: str, guard: _Guard) -> ReadOnlyQueryError:
    return ReadOnlyQueryError(
        f"fleet.query runs read-only queries; {sql.strip()[:200]!r} would {', '.join(dict.fromkeys(guard.refused))}. "
        "Change tenants with fleet.migrate() or a tenant's own connection (tenant.connect())."
    )


def query_files(
    files: Sequence[tuple[str, Path]],
    sql: str,
    params: Sequence[Any] | dict[str, Any] = (),
    *,
    reduce: Callable[[list[QueryRow]], Any] | None = None,
    batch_size: int | None = None,
    timeout: float = 1.0,
) -> QueryResult:
    """Run the read-only ``sql`` on each ``(tenant id, file)``; see the module's docstring.
    ``batch_size``: tenants ATTACHed at once (default and maximum: SQLite's attach limit)."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryError(f"fleet.query needs the text of one SELECT, got {sql!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise QueryError(f"batch_size must be at least 1, got {batch_size!r}")
    started = time.perf_counter()
    qualify = qualifier(sql)
    limit = attach_limit()
    size = min(batch_size or limit, limit)
    results: list[TenantRows] = []
    columns: tuple[str, ...] = ()
    batches = 0
    if qualify is None:
        for tenant, path in files:
            found, cols = _direct(tenant, path, sql, params, timeout)
            results.append(found)
            columns = columns or cols
    else:
        for start in range(0, len(files), size):
            batch = files[start : start + size]
            batches += 1
            found_batch, cols = _batch(batch, sql, qualify, params, timeout)
            results.extend(found_batch)
            columns = columns or cols
    rows = [(t.tenant, *row) for t in results if t.ok for row in t.rows]
    reduced = reduce(rows) if reduce is not None else None
    return QueryResult(
        sql, columns, tuple(results), reduced, batches, qualify is not None, time.perf_counter() - started
    )


def _run(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any] | dict[str, Any], guard: _Guard
) -> tuple[tuple[QueryRow, ...], tuple[str, ...]]:
    guard.refused.clear()
    try:
        cursor = conn.execute(sql, params)
        rows = tuple(tuple(r) for r in cursor.fetchall())
    except (sqlite3.ProgrammingError, sqlite3.Warning) as exc:  # two statements, wrong parameters
        raise QueryError(
            f"fleet.query cannot run {sql.strip()[:200]!r}: {exc} (one SELECT, its parameters as in "
            "sqlite3's execute())"
        ) from None
    except sqlite3.DatabaseError:
        if guard.refused:
            raise _refuse(sql, guard) from None
        raise
    columns = tuple(d[0] for d in cursor.description or ())
    return rows, columns


def _direct(
    tenant: str, path: Path, sql: str, params: Sequence[Any] | dict[str, Any], timeout: float
) -> tuple[TenantRows, tuple[str, ...]]:
    """One tenant on a connection of its own (a query that cannot be qualified)."""
    guard = _Guard()
    try:
        with open_readonly(path, timeout) as conn:
            conn.set_authorizer(guard)
            try:
                rows, columns = _run(conn, sql, params, guard)
            except sqlite3.Error as exc:
                return TenantRows(tenant, str(path), _status(exc), error=str(exc)), ()
            return TenantRows(tenant, str(path), "ok", rows), columns
    except UnreadableTenant as exc:
        return TenantRows(tenant, str(path), exc.status, error=exc.detail), ()


def _batch(
    batch: Sequence[tuple[str, Path]],
    sql: str,
    qualify: Callable[[str], str],
    params: Sequence[Any] | dict[str, Any],
    timeout: float,
) -> tuple[list[TenantRows], tuple[str, ...]]:
    """Up to the attach limit of tenants ATTACHed to one in-memory connection, the query run on each."""
    found: dict[int, TenantRows] = {}
    attached: list[tuple[int, str]] = []
    columns: tuple[str, ...] = ()
    with recording.harness():
        conn = sqlite3.connect(
            "file:tenantdb-query?mode=memory", uri=True, timeout=timeout, isolation_level=None
        )
    with closing(conn):
        conn.execute("PRAGMA query_only = ON")
        for n, (tenant, path) in enumerate(batch):
            try:
                uri = readonly_uri(path, read_header(path))
            except UnreadableTenant as exc:
                found[n] = TenantRows(tenant, str(path), exc.status, error=exc.detail)
                continue
            if uri is None:  # WAL without -shm: read from a private copy, on its own connection
                found[n], cols = _direct(tenant, path, sql, params, timeout)
                columns = columns or cols
                continue
            alias = _ALIAS.format(n)
            try:
                conn.execute(f'ATTACH DATABASE ? AS "{alias}"', (uri,))
            except sqlite3.Error as exc:
                found[n] = TenantRows(tenant, str(path), _status(exc), error=str(exc))
                continue
            attached.append((n, alias))
        guard = _Guard()
        conn.set_authorizer(guard)
        for n, alias in attached:
            tenant, path = batch[n]
            try:
                rows, cols = _run(conn, qualify(alias), params, guard)
            except sqlite3.Error as exc:
                found[n] = TenantRows(tenant, str(path), _status(exc), error=_clean(str(exc), alias))
                continue
            columns = columns or cols
            found[n] = TenantRows(tenant, str(path), "ok", rows)
        conn.set_authorizer(None)
        for _, alias in attached:
            conn.execute(f'DETACH DATABASE "{alias}"')
    return [found[n] for n in range(len(batch))], columns
