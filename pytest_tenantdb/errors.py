"""Typed errors: every message says what went wrong, where, and what to do next."""

from __future__ import annotations


class TenantDBError(Exception):
    """Base class of every error pytest-tenantdb raises on purpose."""


class ConfigError(TenantDBError):
    """A setting, flag, marker argument or factory argument is not valid."""


class MigrationSetError(TenantDBError):
    """A migrations directory cannot be loaded (bad name, duplicate version, bad file...)."""


class TenantIdError(TenantDBError):
    """A tenant id is unsafe to use as a file name (path separator, '..', too long...)."""


class TenantDatabaseError(TenantDBError):
    """A tenant database cannot be used: missing, corrupted, locked or not SQLite."""


class FleetBusyError(TenantDBError):
    """Another migration (or recovery) of the same fleet directory holds its lock."""


class FleetNotWritableError(TenantDBError):
    """A fleet directory cannot be written at all (read-only, full): nothing was migrated."""


class QueryError(TenantDBError):
    """A fleet query cannot run as written (not one statement, wrong parameters), or
    ``QueryResult.raise_on_failure()`` found tenants it failed on."""


class ReadOnlyQueryError(QueryError):
    """``fleet.query`` was given a statement that writes (INSERT, UPDATE, CREATE, a PRAGMA with a
    value, ATTACH...): it only reads; tenants change through ``fleet.migrate()``."""


class TemplateBuildError(TenantDBError):
    """A migration step failed while building the template of a schema version."""


class SeedingError(TenantDBError):
    """Fake data could not be generated for a table (e.g. an unsatisfiable constraint)."""


class StepFailure(TenantDBError):
    """A migration step raised while running on one database.

    Carries the step, the statement (with its file and line) and SQLite's own message, so
    a fleet report can say exactly what broke for which tenant. For a Python step, ``code`` is
    the step's line that failed (``location`` gives its file and number).
    """

    def __init__(
        self,
        step: str,
        statement: str | None,
        location: str,
        error: str,
        direction: str = "up",
        *,
        code: str | None = None,
    ) -> None:
        self.step = step
        self.statement = statement
        self.location = location
        self.error = error
        self.direction = direction
        self.code = code
        shown = [f"> {code}"] if code else []
        if statement is not None or not code:
            shown.append(statement if statement is not None else "(no statement reached)")
        super().__init__(f"step {step} ({direction}) failed at {location}: {error}\n  " + "\n  ".join(shown))


class CheckFailure(TenantDBError):
    """A built-in property check found a counterexample (the message says which and why).

    ``check`` names the kind of check that failed (``upgrade``, ``data_kept``...) when one drawn
    tenant serves several checks at once."""

    def __init__(self, message: str, check: str = "") -> None:
        super().__init__(message)
        self.check = check


class RolloutFailure(TenantDBError):
    """A simulated rollout (``tenant_rollout``) found app code that fails while the fleet
    migrates: the message names each query, tenant, schema version and app version, and the
    interleaving to replay."""


class LockMissing(TenantDBError):
    """There is no lock file, so nothing is known to be released: the ``history`` check skips
    (fails under ``CI``) with how to write one."""


class QueryParameterError(TenantDBError):
    """A query mixes positional (``?``) and named parameters in a way Python's ``sqlite3``
    cannot bind: it takes either a sequence or a mapping, never both."""


class SchemaDifferenceWarning(UserWarning):
    """Two schemas differ only in ways SQLite behaves the same on (column order, a declared
    type of the same affinity); ``tenantdb_schema_compare = exact`` makes it a failure."""
