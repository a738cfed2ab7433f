"""Where ``--tenantdb-record`` listens: the tenant files handed to tests and the connections
opened on them, told apart from the harness's own connections.

Three parts, none of them reading the stack:

- every :class:`~pytest_tenantdb.fleet.fleet.Tenant` announces its file when it is made
  (:func:`tenant_created`), so a plain ``sqlite3.connect(tenant.path)`` in a test or in the app
  code under test is known to be a connection on a tenant;
- :meth:`Tenant.connect() <pytest_tenantdb.fleet.fleet.Tenant.connect>` hands its connection over
  itself (:func:`tenant_connection`);
- the harness opens its own connections (templates, seeding, migrating, reading versions and
  schemas, the checks) inside :func:`harness`, and the recorder leaves those alone.

With no recorder listening (the usual run) each of these is one ``None`` test. This module
imports nothing heavy and not even ``sqlite3``: :mod:`pytest_tenantdb.database` and the fleet
call it on every connection they open.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import sqlite3


class Listener(Protocol):
    """What a recorder implements (:class:`pytest_tenantdb.checks.appcode.Recorder`)."""

    def add_tenant(self, path: Path) -> None:
        """``path`` is a tenant's file: connections a test opens on it are recorded."""

    def watch(self, conn: sqlite3.Connection) -> None:
        """Record the statements run on ``conn``, a connection a test opened on a tenant."""


_listener: Listener | None = None
_in_harness: ContextVar[bool] = ContextVar("tenantdb_in_harness", default=False)


def listen(listener: Listener | None) -> Listener | None:
    """Make ``listener`` the one told about tenants and their connections (None: nobody);
    return the one it replaces."""
    global _listener
    previous, _listener = _listener, listener
    return previous


def tenant_created(path: Path) -> None:
    """A tenant's file was handed out (called by ``Tenant`` itself)."""
    if _listener is not None:
        _listener.add_tenant(path)


def tenant_connection(conn: sqlite3.Connection) -> None:
    """A test opened ``conn`` on a tenant through ``Tenant.connect()``."""
    if _listener is not None:
        _listener.watch(conn)


@contextmanager
def harness() -> Iterator[None]:
    """Connections opened inside are the harness's own (not app code): never recorded."""
    token = _in_harness.set(True)
    try:
        yield
    finally:
        _in_harness.reset(token)


def in_harness() -> bool:
    """Whether the current code runs inside :func:`harness`."""
    return _in_harness.get()
