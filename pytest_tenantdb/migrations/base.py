"""The base of a history: what a project runs before its first migration.

Some projects create their first tables with an ORM (``metadata.create_all``) and migrate from
there. ``tenantdb_base`` names that code (``module:function`` taking the connection) or an SQL
file; it becomes step 1 of the set, named ``base``.
"""

from __future__ import annotations

from pathlib import Path

from pytest_tenantdb.errors import MigrationSetError
from pytest_tenantdb.migrations.callables import (
    SPEC,
    CallableStep,
    import_object,
    importable_from,
    source_of,
)
from pytest_tenantdb.migrations.directory import read_text
from pytest_tenantdb.migrations.statements import split_statements
from pytest_tenantdb.migrations.steps import SqlStep, Step


def base_step(spec: str, root: Path) -> Step:
    """Step 1 of a set with a base: an SQL file, or ``module:function(conn)``."""
    path = root / spec
    if path.suffix == ".sql" or path.is_file():
        if not path.is_file():
            raise MigrationSetError(f"base SQL file {path} does not exist.")
        return SqlStep(1, "base", path, tuple(split_statements(read_text(path))))
    match = SPEC.match(spec)
    if match is None:
        raise MigrationSetError(
            f"[tool.tenantdb] base = {spec!r} is neither an .sql file nor module:function; e.g. "
            "'myapp.db:create_all' (a function taking the sqlite3 connection)."
        )
    with importable_from(root):
        function = import_object(match["module"], match["attribute"], f"base {spec!r}")
    if not callable(function):
        raise MigrationSetError(f"base {spec!r} is not callable; it must be a function fn(conn).")
    source, file, line = source_of(function)
    return CallableStep(1, "base", file, "base", function, None, source, line)
