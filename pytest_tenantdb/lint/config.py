"""What the checker needs from a project's settings (``settings.py``): its migrations, the old
code (queries folder, Python literals, recorded queries), the rules and the released steps.
``tenantdb check`` and the ``compatible`` items both get their inputs here, so they find the same."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_tenantdb.checks.appcode import load_recorded
from pytest_tenantdb.checks.lockfile import read_lock, released_through
from pytest_tenantdb.errors import ConfigError
from pytest_tenantdb.factory import load_migrations
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.lint.engine import LintOptions
from pytest_tenantdb.lint.rules import RULES
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.migrations.directory import require_steps
from pytest_tenantdb.pyproject import pytest_cache_dir
from pytest_tenantdb.queries import Query, QueryFolder, QuerySources, python_queries
from pytest_tenantdb.settings import Layer, Settings
from pytest_tenantdb.versioning import version_store


@dataclass(frozen=True)
class LintProject:
    settings: Settings
    migrations: MigrationSet
    templates: TemplateCache
    queries: QuerySources | None
    options: LintOptions

    @property
    def baseline(self) -> Path | None:
        return self.settings.baseline

    @property
    def python(self) -> tuple[Path, ...]:
        return self.settings.python


def lint_options(settings: Settings, migrations: MigrationSet) -> LintOptions:
    """The rules, the first step to check and the window of ``settings``. Steps of the lock's
    unchanged released prefix are not flagged again: their tenants already ran them."""
    lint_options_early(settings)
    unknown = sorted(code for code, _ in settings.severity if code not in RULES)
    if unknown:
        raise ConfigError(f"{settings.origin('severity')}: unknown rule code(s) {unknown}")
    try:
        since = migrations.resolve(int(settings.since) if settings.since.isdigit() else settings.since)
    except ConfigError as exc:
        raise ConfigError(f"{settings.origin('since')}: {exc}") from exc
    if settings.lock is not None and settings.lock.is_file():
        since = max(since, released_through(read_lock(settings.lock), migrations))
    size = settings.window_size
    window = len(migrations) + 1 if size is None else size
    return LintOptions(
        since,
        frozenset(settings.ignore),
        frozenset(settings.select),
        settings.dialect,
        window,
        settings.severity,
    )


def lint_queries(settings: Settings, migrations: MigrationSet) -> QuerySources | None:
    """The old code of ``settings``: the queries folder by app version, the SQL literals of the
    Python app code (the current head's code), the recorded queries by the version they ran at.
    None when there is none; none at all when no earlier version is live (``window = 0``)."""
    if settings.window_size == 0:
        return QuerySources(None, {})  # known: no old code runs on the new schema
    folder = QueryFolder(settings.queries) if settings.queries is not None else None
    tagged: dict[int, list[Query]] = {}
    if settings.python:
        tagged[migrations.head] = [
            q for f in python_files(settings.python) for q in python_queries(f, _read(f))
        ]
    if settings.recorded is not None:
        for version, sqls in load_recorded(settings.recorded).items():
            tagged.setdefault(version, []).extend(
                Query(f"recorded:{n}", sql, settings.recorded, n) for n, sql in enumerate(sqls, start=1)
            )
    return QuerySources(folder, tagged) if folder or tagged else None


def project_cache(settings: Settings) -> Path:
    """Where the checker keeps templates and findings: pytest's cache (its ``cache_dir``
    honoured), shared with the plugin."""
    return pytest_cache_dir(settings.root) / "d" / "tenantdb"


def unwritable(folder: Path) -> str | None:
    """Why ``folder`` cannot hold a cache, or None when it can (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def cli_settings(root: Path, *, since: str | None = None, ignore: tuple[str, ...] = ()) -> Settings:
    """The settings ``tenantdb check`` runs with: ``[tool.tenantdb]``, then its flags."""
    settings = Settings.load(root, Layer({"since": since}, lambda _, raw: f"--since {raw}"))
    if ignore:
        from dataclasses import replace

        settings = replace(settings, ignore=(*settings.ignore, *(c.upper() for c in ignore)))
    return settings


def load_config(settings: Settings, *, cache: Path | None = None) -> LintProject:
    """Open the migrations and old code of ``settings`` for the checker. ``cache`` replaces
    :func:`project_cache` (a read-only checkout is checked with a temporary one)."""
    lint_options_early(settings)  # settings errors before any migration is imported
    migrations = load_migrations(settings)
    require_steps(
        migrations,
        lambda found: (
            f"set migrations = {json.dumps(found or 'FOLDER')} in [tool.tenantdb] of "
            f"{settings.root / 'pyproject.toml'}"
            + (
                ""
                if found
                else " (a folder of 0001_name.sql steps, alembic.ini, django:APP or module:attribute)"
            )
        ),
        str(settings.migrations),
    )
    templates = TemplateCache(
        (cache or project_cache(settings)) / "templates",
        migrations,
        version_store(settings.versioning, migrations),
    )
    return LintProject(
        settings,
        migrations,
        templates,
        lint_queries(settings, migrations),
        lint_options(settings, migrations),
    )


def lint_options_early(settings: Settings) -> None:
    """The rule codes checked before anything is loaded."""
    bad = sorted({*settings.ignore, *settings.select} - set(RULES))
    if bad:
        raise ConfigError(f"unknown rule code(s) {bad}; see `tenantdb explain CODE`")


def python_files(paths: tuple[Path, ...]) -> list[Path]:
    """The ``.py`` files of ``paths`` (files, or folders searched recursively)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.py")))
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"[tool.tenantdb] python: {path} does not exist")
    return files


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from exc
