"""One migration per fleet directory at a time: a lock file next to the tenants.

Two runs on the same tenants would restore each other's backups and run steps twice. The lock
is an ``flock`` (through ``filelock``): the kernel releases it when the holder dies, however it
dies, and forked worker processes share it, so it is free again only when they are gone too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from pytest_tenantdb.errors import FleetBusyError, FleetNotWritableError

LOCK_NAME = ".tenantdb-migrate.lock"


@contextmanager
def fleet_lock(directories: Iterable[Path], timeout: float) -> Iterator[None]:
    """Hold the migration lock of every directory (in a fixed order, so two runs cannot deadlock)."""
    with ExitStack() as stack:
        for directory in sorted(set(directories)):
            lock_file = directory / LOCK_NAME
            try:
                stack.enter_context(FileLock(str(lock_file), timeout=timeout))
            except Timeout:
                raise FleetBusyError(
                    f"another migration or recovery of {directory} is running (it holds {lock_file}); "
                    f"waited {timeout:g}s. Let it finish, or pass a longer lock_timeout."
                ) from None
            except OSError as exc:
                raise FleetNotWritableError(
                    f"cannot create the lock file {lock_file}: {exc.strerror or exc}. Migrating writes a "
                    "backup next to each tenant, so the folder must be writable and have free space; "
                    "nothing was changed."
                ) from exc
        yield
