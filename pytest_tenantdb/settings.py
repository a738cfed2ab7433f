"""Settings: every option of the plugin, declared once, read from flags and ini in one place.

Command-line flags win over ``[tool.pytest.ini_options]``; a ``@pytest.mark.tenantdb(...)``
marker overrides both for one test (see :meth:`Settings.replace_from_marker`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_tenantdb.errors import ConfigError

if TYPE_CHECKING:
    import pytest


@dataclass(frozen=True)
class Option:
    """One setting: its ini name (``tenantdb_<name>``), flag (``--tenantdb-<name>``) and default."""

    name: str
    help: str
    default: str
    kind: type = str

    @property
    def ini(self) -> str:
        return f"tenantdb_{self.name}"

    @property
    def flag(self) -> str:
        return "--tenantdb-" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("migrations", "migrations directory, relative to the rootdir", "migrations"),
    Option("versioning", "where tenants record their version: user_version or table", "user_version"),
    Option("workers", "worker processes for fleet.migrate()", "1", int),
    Option("seed", "seed for fake tenant data", "0", int),
    Option("variants", "distinct seeded templates per version and size class", "2", int),
    Option("busy_timeout", "seconds to wait for a locked tenant database", "5.0", float),
)


@dataclass(frozen=True)
class Settings:
    """The resolved settings of a run (or of one test, after its marker)."""

    migrations: Path
    versioning: str = "user_version"
    workers: int = 1
    seed: int = 0
    variants: int = 2
    busy_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.versioning not in ("user_version", "table"):
            raise ConfigError(
                f"tenantdb_versioning must be 'user_version' or 'table', not {self.versioning!r}"
            )
        for name in ("workers", "variants"):
            if getattr(self, name) < 1:
                raise ConfigError(f"tenantdb_{name} must be at least 1, got {getattr(self, name)}")
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
        path = Path(values["migrations"])
        values["migrations"] = path if path.is_absolute() else Path(config.rootpath) / path
        return cls(**values)

    def replace_from_marker(self, **overrides: Any) -> Settings:
        """A copy with a marker's keyword arguments applied (unknown names are an error)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(
                f"@pytest.mark.tenantdb got unknown argument(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        if "migrations" in overrides:
            overrides["migrations"] = Path(overrides["migrations"])
        return dataclasses.replace(self, **overrides)


def _convert(option: Option, raw: object) -> object:
    try:
        return option.kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{option.ini} / {option.flag} must be {option.kind.__name__}, got {raw!r}"
        ) from None
