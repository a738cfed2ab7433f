"""App queries per app version: the "old code" that must keep running on a newer schema.

A queries folder holds one ``NNNN*.sql`` file per app version that changed its queries; app
version v uses the newest file whose number is <= v. A file is either plain statements or
named queries (``-- name: get_user`` before each one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from pytest_tenantdb.errors import MigrationSetError
from pytest_tenantdb.migrations.directory import read_text
from pytest_tenantdb.migrations.statements import split_statements

_NAME = re.compile(r"^\s*--\s*name:\s*([A-Za-z_][\w-]*)\s*$", re.MULTILINE)
_FILE = re.compile(r"^(\d+)[\w.-]*\.sql$")


@dataclass(frozen=True)
class Query:
    """One app query, with where it was written and the app version that introduced it (its
    file's number, or the version it was recorded or tagged at; None when not known)."""

    name: str
    sql: str
    path: Path
    line: int
    version: int | None = None

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


def load_query_file(path: Path) -> list[Query]:
    """The queries of one file: named (``-- name: x``) or, without names, ``<file stem>:<n>``."""
    text = read_text(path)
    names = list(_NAME.finditer(text))
    if not names:
        return [
            Query(f"{path.stem}:{n}", s.sql, path, s.line)
            for n, s in enumerate(split_statements(text), start=1)
        ]
    queries = []
    for index, match in enumerate(names):
        end = names[index + 1].start() if index + 1 < len(names) else len(text)
        first_line = text.count("\n", 0, match.end()) + 2
        body = text[match.end() : end]
        body = body[1:] if body.startswith("\n") else body
        statements = split_statements(body, first_line)
        if len(statements) != 1:
            raise MigrationSetError(
                f"{path}:{first_line - 1}: query {match[1]!r} must hold exactly one statement, "
                f"found {len(statements)}"
            )
        queries.append(Query(match[1], statements[0].sql, path, statements[0].line))
    return queries


class QueryFolder:
    """The queries folder of a project, by app version."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise MigrationSetError(f"queries folder {folder} does not exist")
        self.folder = folder
        self.files: dict[int, Path] = {}
        self._loaded: dict[int, list[Query]] = {}  # a file is read once, not once per step
        for file in sorted(folder.iterdir()):
            match = _FILE.match(file.name)
            if match:
                version = int(match[1])
                if version in self.files:
                    raise MigrationSetError(f"{file}: two query files for app version {version}")
                self.files[version] = file

    @property
    def app_versions(self) -> tuple[int, ...]:
        return tuple(sorted(self.files))

    def for_version(self, version: int) -> list[Query]:
        """The queries app version ``version`` runs (newest file numbered <= version)."""
        usable = [v for v in self.files if v <= version]
        if not usable:
            return []
        newest = max(usable)
        if newest not in self._loaded:
            self._loaded[newest] = [replace(q, version=newest) for q in load_query_file(self.files[newest])]
        return list(self._loaded[newest])


_SQL_SHAPE = re.compile(
    r"^(SELECT\b.*\bFROM\b|INSERT\s+(OR\s+\w+\s+)?INTO\b|REPLACE\s+INTO\b|UPDATE\s+\S+\s+SET\b"
    r"|DELETE\s+FROM\b|WITH\b.*\bAS\s*\()",
    re.IGNORECASE | re.DOTALL,
)


def python_queries(path: Path, text: str) -> list[Query]:
    """SQL string literals in Python source (found through ``ast``), as queries of that file.

    Only literal strings count (implicit concatenation included); f-strings and strings built at
    run time cannot be checked statically and are left out.
    """
    import ast

    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError) as exc:
        raise MigrationSetError(f"{path}: cannot parse Python source for SQL literals ({exc})") from exc
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            sql = node.value.strip()
            if _SQL_SHAPE.match(sql):
                found.append(Query(f"{path.name}:{node.lineno}", sql, path, node.lineno))
    return sorted(found, key=lambda q: q.line)


class QuerySources:
    """Old app code from several sources, by app version: a queries folder, queries recorded
    with ``--tenantdb-record``, and SQL literals of Python files (tagged with an app version)."""

    def __init__(
        self,
        folder: QueryFolder | None = None,
        tagged: dict[int, list[Query]] | None = None,
    ) -> None:
        self.folder = folder
        self.tagged = tagged or {}

    def for_version(self, version: int) -> list[Query]:
        """The queries app version ``version`` runs: the newest tagged set <= version of each source."""
        queries = self.folder.for_version(version) if self.folder else []
        usable = [v for v in self.tagged if v <= version]
        if usable:
            tag = max(usable)
            queries = queries + [
                q if q.version is not None else replace(q, version=tag) for q in self.tagged[tag]
            ]
        return queries

    def __bool__(self) -> bool:
        return self.folder is not None or bool(self.tagged)
