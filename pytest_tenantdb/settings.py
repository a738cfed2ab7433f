"""Settings: every option of the plugin, declared once, read from flags and ini in one place.

Command-line flags win over ``[tool.pytest.ini_options]``; a ``@pytest.mark.tenantdb(...)``
marker overrides both for one test (see :meth:`Settings.replace_from_marker`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_tenantdb.errors import ConfigError

if TYPE_CHECKING:
    import pytest


STORES = ("auto", "user_version", "table", "alembic", "django")  # versioning.py implements them
COMPARE = ("semantic", "exact")  # how strict round_trip / no_drift are (schema.SchemaDiff)


@dataclass(frozen=True)
class Option:
    """One setting: its ini name (``tenantdb_<name>``), flag (``--tenantdb-<name>``) and default."""

    name: str
    help: str
    default: str
    kind: Callable[[Any], object] = str

    @property
    def ini(self) -> str:
        return f"tenantdb_{self.name}"

    @property
    def flag(self) -> str:
        return "--tenantdb-" + self.name.replace("_", "-")


def _bool(raw: object) -> bool:
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)


_bool.__name__ = "true or false"

OPTIONS: tuple[Option, ...] = (
    Option(
        "migrations",
        "migrations: a folder of steps, an Alembic folder or alembic.ini, django:APP[,APP] or "
        "module:attribute (paths relative to the rootdir)",
        "migrations",
    ),
    Option(
        "versioning",
        "where tenants record their version: auto (the source's own), user_version, table, alembic or django",
        "auto",
    ),
    Option("base", "code run before step 1: module:function(conn) or an .sql file (e.g. create_all)", ""),
    Option(
        "django_settings", "Django settings module for django: migrations (else DJANGO_SETTINGS_MODULE)", ""
    ),
    Option("workers", "worker processes for fleet.migrate()", "1", int),
    Option("seed", "seed for fake tenant data", "0", int),
    Option("variants", "distinct seeded templates per version and size class", "2", int),
    Option("busy_timeout", "seconds to wait for a locked tenant database", "5.0", float),
    Option("checks", "collect the built-in property checks as test items", "false", _bool),
    Option("window", "versions before head tenants may still be at: N steps back, or 'all'", "1"),
    Option("queries", "folder of app queries per app version (old code checks)", ""),
    Option("schema", "how new tenants are created: a schema.sql file or module:function(conn)", ""),
    Option("lock", "lock file with the checksums of released steps", "tenantdb.lock"),
    Option("failures", "where minimal failing tenants are saved as SQL", ".tenantdb/failures"),
    Option("examples", "hypothesis examples per check (default: the tenantdb profile's)", "0", int),
    Option("max_rows", "at most this many rows per table in a drawn tenant", "5", int),
    Option(
        "schema_compare",
        "how round_trip and no_drift compare schemas: semantic (differences SQLite acts on fail; "
        "column order and same-affinity type spellings are a warning) or exact (those fail too)",
        "semantic",
    ),
    Option(
        "step_coverage",
        "measure which lines and branches of Python steps and app code the drawn tenants reach: "
        "off, on, or a minimum percentage that fails the run below it",
        "off",
    ),
    Option("app_modules", "modules to import that register app code with @app_code(version)", ""),
    Option("recorded", "file of queries recorded with --tenantdb-record, replayed as old code", ""),
)
PATH_OPTIONS = ("migrations", "queries", "lock", "failures", "recorded")


@dataclass(frozen=True)
class Settings:
    """The resolved settings of a run (or of one test, after its marker)."""

    migrations: Path
    versioning: str = "auto"
    workers: int = 1
    seed: int = 0
    variants: int = 2
    busy_timeout: float = 5.0
    checks: bool = False
    window: str = "1"
    queries: Path | None = None
    schema: str = ""
    lock: Path = Path("tenantdb.lock")
    failures: Path = Path(".tenantdb/failures")
    examples: int = 0
    max_rows: int = 5
    app_modules: str = ""
    recorded: Path | None = None
    base: str = ""
    django_settings: str = ""
    schema_compare: str = "semantic"
    step_coverage: str = "off"

    def __post_init__(self) -> None:
        from pytest_tenantdb.checks.step_coverage import parse_setting

        parse_setting(self.step_coverage)  # a clear error now, not at the end of a long run
        if self.schema_compare not in COMPARE:
            raise ConfigError(
                f"tenantdb_schema_compare must be one of {list(COMPARE)}, not {self.schema_compare!r}"
            )
        if self.versioning not in STORES:
            raise ConfigError(f"tenantdb_versioning must be one of {list(STORES)}, not {self.versioning!r}")
        for name in ("workers", "variants"):
            if getattr(self, name) < 1:
                raise ConfigError(f"tenantdb_{name} must be at least 1, got {getattr(self, name)}")
        window = self.window.strip().lower()
        if window != "all" and not (window.isdigit() and int(window) >= 0):
            raise ConfigError(f"tenantdb_window must be a number of steps back or 'all', not {self.window!r}")
        if self.examples < 0 or self.max_rows < 0:
            raise ConfigError("tenantdb_examples and tenantdb_max_rows must be >= 0")
        if self.busy_timeout < 0:
            raise ConfigError(f"tenantdb_busy_timeout must be >= 0, got {self.busy_timeout}")

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        values: dict[str, Any] = {}
        for option in OPTIONS:
            raw = config.getoption(option.flag, default=None)
            if raw is None:
                raw = config.getini(option.ini) or option.default
            values[option.name] = _convert(option, raw)
        for name in PATH_OPTIONS:
            if values[name] == "":
                values[name] = None
                continue
            path = Path(values[name])
            values[name] = path if path.is_absolute() else Path(config.rootpath) / path
        return cls(**values)

    def replace_from_marker(self, **overrides: Any) -> Settings:
        """A copy with a marker's keyword arguments applied (unknown names are an error)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(
                f"@pytest.mark.tenantdb got unknown argument(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        for name in PATH_OPTIONS:
            if overrides.get(name) is not None:
                overrides[name] = Path(overrides[name])
        return dataclasses.replace(self, **overrides)


def _convert(option: Option, raw: object) -> object:
    try:
        return option.kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{option.ini} / {option.flag} must be {getattr(option.kind, '__name__', 'valid')}, got {raw!r}"
        ) from None
