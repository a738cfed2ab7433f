"""pytest-tenantdb: test migrations of database-per-tenant (SQLite) applications.

The public names load lazily, so the installed plugin costs almost nothing when unused.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_tenantdb.checks.appcode import app_code
    from pytest_tenantdb.errors import (
        CheckFailure,
        ConfigError,
        MigrationSetError,
        QueryError,
        ReadOnlyQueryError,
        SeedingError,
        StepFailure,
        TemplateBuildError,
        TenantDatabaseError,
        TenantDBError,
        TenantIdError,
    )
    from pytest_tenantdb.fleet.fleet import Fleet, FleetBuilder, Tenant, validate_tenant_id
    from pytest_tenantdb.fleet.query import QueryResult
    from pytest_tenantdb.fleet.report import FleetMigrationError, FleetReport, TenantOutcome
    from pytest_tenantdb.fleet.scan import ScanResult
    from pytest_tenantdb.fleet.seeding import Seeder
    from pytest_tenantdb.migrations import MigrationSet, Step
    from pytest_tenantdb.schema import Schema, SchemaDiff

__version__ = "0.1.0"

_LAZY = {
    "CheckFailure": "pytest_tenantdb.errors",
    "ConfigError": "pytest_tenantdb.errors",
    "MigrationSetError": "pytest_tenantdb.errors",
    "QueryError": "pytest_tenantdb.errors",
    "ReadOnlyQueryError": "pytest_tenantdb.errors",
    "SeedingError": "pytest_tenantdb.errors",
    "StepFailure": "pytest_tenantdb.errors",
    "TemplateBuildError": "pytest_tenantdb.errors",
    "TenantDatabaseError": "pytest_tenantdb.errors",
    "TenantDBError": "pytest_tenantdb.errors",
    "TenantIdError": "pytest_tenantdb.errors",
    "Fleet": "pytest_tenantdb.fleet.fleet",
    "FleetBuilder": "pytest_tenantdb.fleet.fleet",
    "Tenant": "pytest_tenantdb.fleet.fleet",
    "validate_tenant_id": "pytest_tenantdb.fleet.fleet",
    "FleetMigrationError": "pytest_tenantdb.fleet.report",
    "FleetReport": "pytest_tenantdb.fleet.report",
    "TenantOutcome": "pytest_tenantdb.fleet.report",
    "QueryResult": "pytest_tenantdb.fleet.query",
    "ScanResult": "pytest_tenantdb.fleet.scan",
    "Seeder": "pytest_tenantdb.fleet.seeding",
    "MigrationSet": "pytest_tenantdb.migrations",
    "Step": "pytest_tenantdb.migrations",
    "app_code": "pytest_tenantdb.checks.appcode",
    "Schema": "pytest_tenantdb.schema",
    "SchemaDiff": "pytest_tenantdb.schema",
}
__all__ = [
    "CheckFailure",
    "ConfigError",
    "Fleet",
    "FleetBuilder",
    "FleetMigrationError",
    "FleetReport",
    "MigrationSet",
    "MigrationSetError",
    "QueryError",
    "QueryResult",
    "ReadOnlyQueryError",
    "ScanResult",
    "Schema",
    "SchemaDiff",
    "Seeder",
    "SeedingError",
    "Step",
    "StepFailure",
    "TemplateBuildError",
    "Tenant",
    "TenantDBError",
    "TenantDatabaseError",
    "TenantIdError",
    "TenantOutcome",
    "app_code",
    "validate_tenant_id",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pytest_tenantdb' has no attribute {name!r}")
