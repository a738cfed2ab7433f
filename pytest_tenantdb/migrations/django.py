"""The Django source: ``django:app_label[,app_label...]``, run through Django's migration executor.

The steps are the apps' migrations and everything they depend on, in the order ``manage.py
migrate`` applies them to an empty database (the graph's forwards plan of each leaf). A step's
name is ``app.migration`` (``django:auth.0008`` resolves wherever a version is accepted).

Each migration runs on the tenant's own connection, inside the migrator's transaction, with
Django's executor (``apply_migration`` / ``unapply_migration``), which also keeps the
``django_migrations`` table as Django does. While it runs, the tenant's connection is the
project's default database alias, so data migrations that use the default manager reach it.
Settings come from ``DJANGO_SETTINGS_MODULE`` (or ``tenantdb_django_settings``).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pytest_tenantdb.errors import MigrationSetError, StepFailure
from pytest_tenantdb.migrations.borrowed import BorrowedConnection, deepest_frame, step_errors
from pytest_tenantdb.migrations.callables import importable_from
from pytest_tenantdb.migrations.steps import Direction, Step, sha

PREFIX = "django:"
SETTINGS_ENV = "DJANGO_SETTINGS_MODULE"


def setup_django(root: Path) -> None:
    """Configure Django once per process, from ``DJANGO_SETTINGS_MODULE``; errors say what to set."""
    try:
        import django
        from django.conf import settings
    except ImportError as exc:
        raise MigrationSetError(
            "a django: migrations spec needs Django installed (pip install django)."
        ) from exc
    if not settings.configured and not os.environ.get(SETTINGS_ENV):
        raise MigrationSetError(
            f"Django settings are not configured: set {SETTINGS_ENV} (e.g. 'mysite.settings') or "
            "django_settings in [tool.tenantdb]."
        )
    with importable_from(root):
        try:
            django.setup()
        except (Exception, SystemExit) as exc:
            raise MigrationSetError(
                f"Django could not start with settings {os.environ.get(SETTINGS_ENV) or '(configured in code)'}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


class DjangoSource:
    """``django:auth,contenttypes``."""

    name = "django"
    versioning: str | None = "django"
    looked_for = "Django: django:app_label[,app_label] with DJANGO_SETTINGS_MODULE set"

    def detect(self, spec: str, path: Path) -> bool:
        return spec.startswith(PREFIX)

    def load(self, spec: str, path: Path) -> list[Step]:
        labels = [label.strip() for label in spec[len(PREFIX) :].split(",") if label.strip()]
        if not labels:
            raise MigrationSetError(f"{spec!r} names no app; write django:app_label[,app_label...].")
        setup_django(path.parent)
        history = _history()
        unknown = [label for label in labels if label not in history.apps]
        if unknown:
            raise MigrationSetError(
                f"{spec}: no migrations for app(s) {unknown}; apps with migrations: {sorted(history.apps)}. "
                "Check INSTALLED_APPS in your Django settings."
            )
        order = tuple(history.plan(labels))
        return [
            DjangoStep(
                position,
                f"{app}.{name}",
                history.file(app, name),
                app,
                name,
                order,
                history.atomic(app, name),
                all(operation.reversible for operation in history.migration(app, name).operations),
            )
            for position, (app, name) in enumerate(order, start=1)
        ]


class _History:
    """Django's migration graph and the project state before each migration, built once per process."""

    def __init__(self) -> None:
        from django.db.migrations.loader import MigrationLoader

        try:
            self.loader = MigrationLoader(None, ignore_no_migrations=True)
        except (Exception, SystemExit) as exc:
            raise MigrationSetError(_import_failure(exc)) from exc
        conflicts = self.loader.detect_conflicts()
        if conflicts:
            shown = "; ".join(
                f"{app}: {', '.join(sorted(names))}" for app, names in sorted(conflicts.items())
            )
            raise MigrationSetError(
                f"conflicting Django migrations (several leaves in one app): {shown}; "
                "merge them with `manage.py makemigrations --merge`."
            )
        self.apps = {app for app, _ in self.loader.graph.nodes}
        self._states: dict[tuple[tuple[str, str], ...], dict[tuple[str, str], Any]] = {}

    def plan(self, labels: list[str]) -> list[tuple[str, str]]:
        """What ``migrate`` applies to an empty database for these apps (dependencies included)."""
        from django.db.migrations.exceptions import CircularDependencyError

        graph = self.loader.graph
        plan: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        try:
            for leaf in graph.leaf_nodes():
                if leaf[0] in labels:
                    for key in graph.forwards_plan(leaf):
                        if key not in seen:
                            seen.add(key)
                            plan.append(key)
        except CircularDependencyError as exc:
            raise MigrationSetError(f"the Django migration graph has a cycle: {exc}") from exc
        return plan

    def migration(self, app: str, name: str) -> Any:
        return self.loader.graph.nodes[app, name]

    def file(self, app: str, name: str) -> Path:
        module = sys.modules.get(type(self.migration(app, name)).__module__)
        return Path(getattr(module, "__file__", None) or f"<{app}.{name}>")

    def atomic(self, app: str, name: str) -> bool:
        return bool(self.migration(app, name).atomic)

    def state_before(self, order: tuple[tuple[str, str], ...], key: tuple[str, str]) -> Any:
        """The project state just before ``key`` in ``order``, models rendered (cloned per use)."""
        if order not in self._states:
            from django.db.migrations.state import ProjectState

            states = self._states[order] = {}
            state = ProjectState(real_apps=self.loader.unmigrated_apps)
            for each in order:
                states[each] = state
                state = self.migration(*each).mutate_state(state, preserve=True)
        state = self._states[order][key]
        state.apps  # render once; clones copy the rendered models  # noqa: B018
        return state


_HISTORY: list[_History] = []


def _history() -> _History:
    if not _HISTORY:
        _HISTORY.append(_History())
    return _HISTORY[0]


def _import_failure(exc: BaseException) -> str:
    where = deepest_frame(exc, lambda filename: f"{os.sep}migrations{os.sep}" in filename)
    shown = f"{type(exc).__name__}: {exc}"
    if where:
        return (
            f"{where[0]}:{where[1]}: importing this Django migration raised {shown}; fix the migration file."
        )
    return f"loading the Django migrations raised {shown}"


@dataclass(frozen=True, eq=False)
class DjangoStep(Step):
    """One Django migration."""

    version: int
    name: str
    path: Path
    app: str
    migration_name: str
    order: tuple[tuple[str, str], ...] = field(repr=False)  # the whole plan: states depend on it
    transactional: bool = True
    reversible: bool = True  # every operation has a reverse (RunPython without one has not)

    @property
    def ident(self) -> str:
        return f"{PREFIX}{self.name}"

    @cached_property
    def checksum(self) -> str:
        try:
            source = self.path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            source = self.name
        return sha("django", str(self.version), self.name, source)

    @property
    def has_down(self) -> bool:
        return self.reversible

    def run(self, conn: sqlite3.Connection, direction: Direction = "up") -> None:
        history = _history()
        key = (self.app, self.migration_name)
        if direction == "down" and not self.reversible:
            raise StepFailure(self.label, None, str(self.path), "the migration is irreversible", "down")
        with step_errors(self.label, self.path, direction, conn), _tenant_connection(conn) as wrapper:
            if (direction == "up") == _applied(conn, key):
                return  # Django applies only what django_migrations does not list (and v.v.)
            executor = _executor(wrapper, history)
            migration = history.migration(*key)
            state = history.state_before(self.order, key).clone()
            if direction == "up":
                executor.apply_migration(state, migration)
            else:
                executor.unapply_migration(state, migration)


def _applied(conn: sqlite3.Connection, key: tuple[str, str]) -> bool:
    from pytest_tenantdb.versioning import DJANGO_TABLE, has_table  # (versioning imports us)

    return has_table(conn, DJANGO_TABLE) and bool(
        conn.execute(f"SELECT 1 FROM {DJANGO_TABLE} WHERE app = ? AND name = ?", key).fetchone()
    )


def _executor(wrapper: Any, history: _History) -> Any:
    """Django's executor over our connection and the graph loaded once (no loader per step)."""
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.recorder import MigrationRecorder

    executor = MigrationExecutor.__new__(MigrationExecutor)
    executor.connection = wrapper
    executor.loader = history.loader
    executor.recorder = MigrationRecorder(wrapper)
    executor.progress_callback = None
    return executor


@contextmanager
def _tenant_connection(conn: sqlite3.Connection) -> Iterator[Any]:
    """A Django SQLite connection over the tenant's sqlite3 connection, installed as the default
    alias for the duration of the step, already 'inside a transaction' so Django never commits."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.backends.sqlite3 import _functions
    from django.db.backends.sqlite3.base import DatabaseWrapper

    settings = dict(connections.settings[DEFAULT_DB_ALIAS])
    settings.update(ENGINE="django.db.backends.sqlite3", NAME=":tenantdb:")
    wrapper = DatabaseWrapper(settings, DEFAULT_DB_ALIAS)
    _functions.register(conn)
    wrapper.connection = BorrowedConnection(conn)
    wrapper.transaction_mode = None  # Django >= 5.1 sets it while connecting, which it does not here
    wrapper.autocommit = False
    wrapper.in_atomic_block = True  # the migrator's transaction; Django nests savepoints in it
    wrapper.commit_on_exit = False
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    previous = connections[DEFAULT_DB_ALIAS]
    connections[DEFAULT_DB_ALIAS] = wrapper
    try:
        yield wrapper
    finally:
        connections[DEFAULT_DB_ALIAS] = previous
        wrapper.connection = None
        if not conn.in_transaction:  # Django turns them on after a schema edit outside one
            conn.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")
