"""``[tool.tenantdb]`` in a project's pyproject.toml: where migrations and queries are, which
rules to skip. Flags of ``tenantdb check`` override it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_tenantdb.checks.appcode import load_recorded
from pytest_tenantdb.errors import ConfigError
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.lint.engine import LintOptions
from pytest_tenantdb.lint.pyproject import read_table, toml
from pytest_tenantdb.lint.rules import RULES
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.migrations.directory import require_steps
from pytest_tenantdb.queries import Query, QueryFolder, QuerySources, python_queries
from pytest_tenantdb.versioning import version_store

DIALECTS = ("sqlite", "postgres")


@dataclass(frozen=True)
class LintProject:
    migrations: MigrationSet
    templates: TemplateCache
    queries: QuerySources | None
    options: LintOptions
    baseline: Path | None = None
    python: tuple[Path, ...] = ()


def _options(
    table: dict[str, object], since: int | str | None, ignore: Sequence[str], migrations: MigrationSet | None
) -> LintOptions:
    codes = {str(c).upper() for c in [*_list(table, "ignore"), *ignore]}
    selected = {str(c).upper() for c in _list(table, "select")}
    bad = (codes | selected) - set(RULES)
    if bad:
        raise ConfigError(f"unknown rule code(s) {sorted(bad)}; see `tenantdb explain CODE`")
    raw = since if since is not None else table.get("since", 0)
    if migrations is not None:  # a number, head-N or a step's name (alembic:ae10..., django:auth.0008)
        try:
            start = migrations.resolve(raw if isinstance(raw, int) else str(raw))
        except ConfigError as exc:
            where = f"--since {since}" if since is not None else f"[tool.tenantdb] since = {toml(raw)}"
            raise ConfigError(f"{where}: {exc}") from exc
    elif isinstance(raw, int) or str(raw).isdigit():
        start = int(str(raw))
    else:
        raise ConfigError(f"[tool.tenantdb] since must be a version, got {raw!r}")
    dialect = str(table.get("dialect", "sqlite")).lower()
    if dialect not in DIALECTS:
        raise ConfigError(f"[tool.tenantdb] dialect must be one of {list(DIALECTS)}, not {dialect!r}")
    severity = table.get("severity", {})
    if not isinstance(severity, dict) or any(
        str(code).upper() not in RULES or level not in ("error", "warning", "note", "off")
        for code, level in severity.items()
    ):
        raise ConfigError(
            f'[tool.tenantdb.severity] maps rule codes to "error", "warning", "note" or "off", got {severity!r}'
        )
    overrides = tuple(sorted((str(code).upper(), str(level)) for code, level in severity.items()))
    window = table.get("window", 1)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError(f"[tool.tenantdb] window must be a number of app versions >= 1, got {window!r}")
    return LintOptions(start, frozenset(codes), frozenset(selected), dialect, window, overrides)


def lint_options(root: Path, migrations: MigrationSet | None = None) -> LintOptions:
    """The rule selection of a project, for the checker's pytest items."""
    return _options(read_table(root), None, (), migrations)


def project_cache(root: Path) -> Path:
    """Where the checker keeps templates and findings: pytest's cache dir, shared with the plugin."""
    return root / ".pytest_cache" / "d" / "tenantdb"


def unwritable(folder: Path) -> str | None:
    """Why ``folder`` cannot hold a cache, or None when it can (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def load_config(
    root: Path, *, since: int | str | None = None, ignore: Sequence[str] = (), cache: Path | None = None
) -> LintProject:
    """Read ``root/pyproject.toml`` (optional) and open the project's migrations and queries.
    ``cache`` replaces :func:`project_cache` (a read-only checkout is checked with a temporary one)."""
    table = read_table(root)
    _options(table, 0, ignore, None)  # settings errors before any migration is imported
    if table.get("django_settings"):
        os.environ["DJANGO_SETTINGS_MODULE"] = str(table["django_settings"])
    base = str(table["base"]) if table.get("base") else None
    spec = str(table.get("migrations", "migrations"))
    migrations = MigrationSet.from_path(spec, base=base, root=root)
    require_steps(
        migrations,
        lambda found: (
            f"set migrations = {json.dumps(found or 'FOLDER')} in [tool.tenantdb] of "
            f"{root / 'pyproject.toml'}"
            + (
                ""
                if found
                else " (a folder of 0001_name.sql steps, alembic.ini, django:APP or module:attribute)"
            )
        ),
        spec,
    )
    options = _options(table, since, ignore, migrations)
    folder = QueryFolder(root / str(table["queries"])) if table.get("queries") else None
    python = tuple(root / str(p) for p in _list(table, "python"))
    tagged: dict[int, list[Query]] = {}
    if python:  # the working tree's Python code is the app code of the current head
        tagged[migrations.head] = [q for f in python_files(python) for q in python_queries(f, _read(f))]
    if table.get("recorded"):
        recorded = root / str(table["recorded"])
        for version, sqls in load_recorded(recorded).items():
            tagged.setdefault(version, []).extend(
                Query(f"recorded:{n}", sql, recorded, n) for n, sql in enumerate(sqls, start=1)
            )
    queries = QuerySources(folder, tagged) if folder or tagged else None
    templates = TemplateCache(
        (cache or project_cache(root)) / "templates",
        migrations,
        version_store(str(table.get("versioning", "auto")), migrations),
    )
    baseline = root / str(table["baseline"]) if table.get("baseline") else None
    return LintProject(migrations, templates, queries, options, baseline, python)


def python_files(paths: Sequence[Path]) -> list[Path]:
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


def _list(table: dict[str, object], key: str) -> list[object]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"[tool.tenantdb] {key} must be a list, got {value!r}")
    return value
