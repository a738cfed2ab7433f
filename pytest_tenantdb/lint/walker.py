"""The migration history walked step by step, each step run on a small scratch database.

Running a long history in one SQLite database costs time quadratic in its length: SQLite
re-reads its whole schema after some DDL (every ``ALTER TABLE ... ADD COLUMN`` re-parses every
table, index, view and trigger). So the walker keeps the schema as a model (a
:class:`~pytest_tenantdb.schema.Schema`, which holds the SQL text of every object) and runs each
step on a fresh scratch database holding only what the step can touch:

- the objects its statements name, and the indexes and triggers of those tables;
- what those triggers and views read or write, the tables their foreign keys point to, and the
  shadow tables of a virtual table;
- for ``ALTER TABLE ... RENAME`` and ``DROP COLUMN``, every object that mentions the table and
  every view or trigger that is or may be broken: created over a missing name, or mentioning
  something a step removed (SQLite rewrites or re-checks them all).

What the step leaves there replaces those objects in the model. Names are matched on the words
of the SQL text, so an object is sometimes brought along without need, never left out. A Python
step can touch anything and runs on the whole schema. Rows are not carried from one step to the
next: each step starts from empty tables, like the "empty database" of rule TDB002.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_tenantdb.errors import StepFailure
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet, SqlStep, Step
from pytest_tenantdb.migrations.runner import run_plan
from pytest_tenantdb.migrations.statements import Statement
from pytest_tenantdb.migrations.tracing import Captured, traced
from pytest_tenantdb.schema import Schema
from pytest_tenantdb.sqltext import name_words
from pytest_tenantdb.versioning import TABLES

IGNORED = TABLES  # the version stores' tables are not part of the app's schema
_REWRITES = re.compile(
    r"\bALTER\s+TABLE\s+(?:\w+\s*\.\s*)?(\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|[\w$]+)\s+(?:RENAME|DROP)\b",
    re.IGNORECASE,
)
_VIRTUAL = re.compile(r"\s*CREATE\s+VIRTUAL\s+TABLE\b", re.IGNORECASE)
_KINDS = ("table", "index", "view", "trigger")

Key = tuple[str, str]  # (kind, name as stored)


def _broken_on_arrival(
    conn: sqlite3.Connection, old: Schema, part: Schema, triggers: dict[str, str]
) -> set[Key]:
    """New or changed views and triggers that do not compile (SQLite creates a view over a
    missing column without complaint, then refuses every later rename)."""
    broken: set[Key] = set()
    for name, sql in part.views.items():
        if old.views.get(name) != sql and _fails(conn, f'SELECT * FROM "{_quoted(name)}" LIMIT 0'):
            broken.add(("view", name))
    changed = [n for n, sql in part.triggers.items() if old.triggers.get(n) != sql]
    for table in {triggers[n] for n in changed if n in triggers}:
        columns = ", ".join(f'"{_quoted(c.name)}" = "{_quoted(c.name)}"' for c in _columns(part, table))
        quoted = _quoted(table)
        writes = [f'INSERT INTO "{quoted}" DEFAULT VALUES', f'DELETE FROM "{quoted}"']
        writes += [f'UPDATE "{quoted}" SET {columns}'] if columns else []
        if any(_fails(conn, f"EXPLAIN {sql}") for sql in writes):  # compiles the table's triggers
            broken |= {("trigger", n) for n in changed if triggers.get(n) == table}
    return broken


def _columns(schema: Schema, table: str) -> tuple[Any, ...]:
    return schema.tables[table].columns if table in schema.tables else ()


def _quoted(name: str) -> str:
    return name.replace('"', '""')


def _fails(conn: sqlite3.Connection, sql: str) -> bool:
    try:
        conn.execute(sql).fetchall()
    except sqlite3.Error:
        return True
    return False


def _objects(schema: Schema, kind: str) -> dict[str, Any]:
    objects: dict[str, dict[str, Any]] = {
        "table": schema.tables,
        "index": schema.indexes,
        "view": schema.views,
        "trigger": schema.triggers,
    }
    return objects[kind]


def _unquote(name: str) -> str:
    if name[:1] in '"`[':
        name = name[1:-1]
    return name.replace('""', '"').lower()


@dataclass
class _Catalog:
    """Lookups over the model, kept up to date object by object (rebuilding them for every
    step would be quadratic again)."""

    by_name: dict[str, set[Key]]
    on_table: dict[str, set[Key]]  # indexes and triggers of a table
    mentions: dict[str, set[Key]]  # objects whose SQL contains a word
    words: dict[Key, frozenset[str]]

    @classmethod
    def empty(cls) -> _Catalog:
        return cls({}, {}, {}, {})

    def add(self, key: Key, sql: str, table: str | None) -> None:
        words = name_words(sql)
        self.words[key] = words
        self.by_name.setdefault(key[1].lower(), set()).add(key)
        if table is not None:
            self.on_table.setdefault(table.lower(), set()).add(key)
        for word in words:
            self.mentions.setdefault(word, set()).add(key)

    def remove(self, key: Key, table: str | None) -> None:
        for word in self.words.pop(key, frozenset()):
            self.mentions.get(word, set()).discard(key)
        self.by_name.get(key[1].lower(), set()).discard(key)
        if table is not None:
            self.on_table.get(table.lower(), set()).discard(key)


class Walker:
    """The schema at ``version``, moved forward one step at a time."""

    def __init__(self, migrations: MigrationSet, templates: TemplateCache) -> None:
        self.migrations = migrations
        self.templates = templates
        self.store = templates.store
        self.version = 0
        self.schema = Schema()
        self._trigger_table: dict[str, str] = {}
        # views and triggers that may be broken (they mention something a step removed): SQLite
        # re-checks every view and trigger on a rename, so those go into every rename step
        self._suspects: set[Key] = set()
        self._catalog = _Catalog.empty()
        self.ran: list[Statement] = []
        self._folder = tempfile.TemporaryDirectory(prefix="tenantdb-lint-")

    # -- moving along the history -------------------------------------------------------------

    def at(self, version: int) -> Schema:
        """The schema at ``version``: from its template when the pytest plugin already cached it
        (``--base`` after a long history), else by running the skipped steps."""
        if version == self.version:
            return self.schema
        template = self.templates.cached_schema_template(version)
        if template is not None:
            conn = sqlite3.connect(template)
            try:
                self._replace(set(self._keys()), conn)
            finally:
                conn.close()
            self.version = version
            return self.schema
        for step, _ in self.migrations.plan(self.version, version):
            self.apply(step)
        return self.schema

    def apply(self, step: Step) -> Schema:
        """Run ``step`` on a scratch database of what it can touch; raises StepFailure.

        Afterwards :attr:`ran` holds the statements it ran: an SQL step's own, or what a Python,
        Alembic or Django step sent to SQLite (with the line of its file that sent it)."""
        keys = self._touched(step)
        conn = self._materialize(keys, step)
        captured = None if isinstance(step, SqlStep) else Captured(step.path)
        self.ran = list(step.up) if isinstance(step, SqlStep) else captured  # type: ignore[assignment]
        try:
            with traced(conn, sink=captured) if captured is not None else nullcontext():
                run_plan(conn, self.migrations, [(step, "up")], self.store)
            self._replace(keys, conn)
        finally:
            conn.close()
        self.version = step.version
        return self.schema

    def database(self, sql: Iterable[str]) -> sqlite3.Connection:
        """A scratch database of the current schema with what ``sql`` (app queries) can reach,
        to prepare those queries against. The caller closes it."""
        words: set[str] = set()
        for text in sql:
            words |= name_words(text)
        return self._materialize(self._closure(words, set()), None)

    # -- what a step can touch ----------------------------------------------------------------

    def _touched(self, step: Step) -> set[Key]:
        if not isinstance(step, SqlStep):
            return set(self._keys())  # Python code can read or change anything
        words: set[str] = set()
        rewritten: set[str] = set()
        for statement in step.up:
            words |= name_words(statement.sql)
            rewritten |= {_unquote(m) for m in _REWRITES.findall(statement.sql)}
        if rewritten:
            words |= {name.lower() for _, name in self._suspects}
        return self._closure(words, rewritten)

    def _closure(self, words: set[str], rewritten: set[str]) -> set[Key]:
        catalog = self._catalog
        todo = [key for word in words for key in catalog.by_name.get(word, ())]
        for table in rewritten:
            todo += catalog.mentions.get(table, ())
        seen: set[Key] = set()
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            kind, name = key
            if kind == "table":
                info = self.schema.tables[name]
                todo += catalog.on_table.get(name.lower(), ())
                for fk in info.foreign_keys:
                    todo += catalog.by_name.get(fk.ref_table.lower(), ())
                if _VIRTUAL.match(info.sql):  # its shadow tables (docs_data, docs_idx ... of docs)
                    prefix = name.lower() + "_"
                    todo += [k for n, keys in catalog.by_name.items() if n.startswith(prefix) for k in keys]
            elif kind == "index":
                todo += catalog.by_name.get(self.schema.indexes[name].table.lower(), ())
            else:  # a view or trigger: what it reads and writes
                for word in catalog.words[key]:
                    todo += catalog.by_name.get(word, ())
        return seen

    def _keys(self) -> Iterable[Key]:
        for kind in _KINDS:
            yield from ((kind, name) for name in _objects(self.schema, kind))

    def _sql(self, key: Key) -> str:
        kind, name = key
        item = _objects(self.schema, kind)[name]
        return item if isinstance(item, str) else item.sql or ""

    def _materialize(self, keys: set[Key], step: Step | None) -> sqlite3.Connection:
        # A file, not :memory:, so that statements behave as on a tenant (``journal_mode = WAL``
        # fails inside a transaction); no statement cache, since a cached EXPLAIN is never
        # re-checked against a changed schema.
        if step is None:  # only to prepare queries against
            conn = sqlite3.connect(":memory:", isolation_level=None, cached_statements=0)
        else:
            path = Path(self._folder.name) / "step.sqlite3"
            path.unlink(missing_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, cached_statements=0)
            conn.execute("PRAGMA journal_mode = MEMORY")
            conn.execute("PRAGMA synchronous = OFF")
            # the version a tenant would have; also makes the file non-empty, as a tenant's is
            conn.execute(f"PRAGMA user_version = {int(self.version)}")
        for kind in _KINDS:
            for key in sorted(k for k in keys if k[0] == kind):
                sql = self._sql(key)
                try:
                    conn.execute(sql)
                except sqlite3.Error as exc:
                    if "already exists" in str(exc):  # e.g. the shadow tables of a virtual table
                        continue
                    conn.close()
                    label = step.label if step else f"version {self.version}"
                    where = str(step.path) if step else ""
                    raise StepFailure(
                        label, sql, where, f"the schema before this step could not be rebuilt: {exc}"
                    ) from exc
        return conn

    def _replace(self, keys: set[Key], conn: sqlite3.Connection) -> None:
        """The objects ``keys`` of the model become what ``conn`` holds."""
        part = Schema.from_connection(conn, ignore=IGNORED, previous=self.schema)
        triggers = dict(
            conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        )
        old = self.schema
        self._note_suspects(keys, part)
        self._suspects |= _broken_on_arrival(conn, old, part, triggers)
        for key in keys:
            self._catalog.remove(key, self._owner(key))
        # copies, not comprehensions: a dict copy of a large schema is cheap, a Python loop is not
        objects: dict[str, dict[str, Any]] = {
            "table": dict(old.tables),
            "index": dict(old.indexes),
            "view": dict(old.views),
            "trigger": dict(old.triggers),
        }
        for kind, name in keys:
            objects[kind].pop(name, None)
            if kind == "trigger":
                self._trigger_table.pop(name, None)
        fresh: dict[str, dict[str, Any]] = {
            "table": part.tables,
            "index": part.indexes,
            "view": part.views,
            "trigger": part.triggers,
        }
        for kind, made in fresh.items():
            objects[kind].update(made)
        self.schema = Schema(objects["table"], objects["index"], objects["view"], objects["trigger"])
        self._trigger_table.update((n, t) for n, t in triggers.items() if n in part.triggers)
        for kind, made in fresh.items():
            for name in made:
                key = (kind, name)
                self._catalog.add(key, self._sql(key), self._owner(key))

    def _note_suspects(self, keys: set[Key], part: Schema) -> None:
        """Views and triggers that mention what this step removed (an object or a column) may be
        broken now; SQLite re-checks them on every later rename."""
        old = self.schema
        gone = {name.lower() for kind, name in keys if name not in _objects(part, kind)}
        for kind, name in keys:
            if kind == "table" and name in part.tables:
                gone |= {c.name.lower() for c in old.tables[name].columns} - {
                    c.name.lower() for c in part.tables[name].columns
                }
        mentioned = {
            k for word in gone for k in self._catalog.mentions.get(word, ()) if k[0] in ("view", "trigger")
        }
        self._suspects = {
            k for k in self._suspects | mentioned if k not in keys or k[1] in _objects(part, k[0])
        }

    def _owner(self, key: Key) -> str | None:
        kind, name = key
        if kind == "index":
            index = self.schema.indexes.get(name)
            return index.table if index else None
        if kind == "trigger":
            return self._trigger_table.get(name)
        return None
