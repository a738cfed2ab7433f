"""The Alembic source: a project's revisions, run through Alembic's own operations.

Accepted specs: a script location (a folder with ``env.py`` and ``versions/``), an ``alembic.ini``
(its ``script_location`` and ``version_locations``, relative to the file), or a bare folder of
revision files (projects keep one per dialect, e.g. ``versions/sqlite``). Revisions are ordered
from base to head along Alembic's revision graph; a revision's version is its position (1, 2...),
its name its revision id (``alembic:ae1027a6acf`` resolves wherever a version is accepted).

Each revision runs on the tenant's own connection inside the migrator's transaction: through the
project's ``env.py`` when it takes a connection from ``config.attributes["connection"]`` (the way
pytest-alembic hands one over), otherwise straight from the revision script with Alembic's
``Operations`` (batch mode included). SQLAlchemy and Alembic are imported only when a spec is an
Alembic one.
"""

from __future__ import annotations

import configparser
import functools
import os
import re
import sqlite3
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pytest_tenantdb.errors import MigrationSetError, StepFailure
from pytest_tenantdb.migrations.borrowed import BorrowedConnection, deepest_frame, step_errors
from pytest_tenantdb.migrations.callables import importable_from
from pytest_tenantdb.migrations.steps import Direction, Step, sha

_REVISION = re.compile(r"^revision\s*(:\s*[\w\[\], |]+)?\s*=\s*['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(:\s*[\w\[\], |]+)?\s*=", re.MULTILINE)
# env.py files written for tests (pytest-alembic's recipe) take an open connection from here
_TAKES_CONNECTION = re.compile(r"attributes\s*(\.get\s*\(|\[)\s*['\"]connection['\"]")


def is_revision_file(path: Path) -> bool:
    """True for a Python file that declares ``revision = ...`` and ``down_revision = ...``."""
    if path.suffix != ".py" or not path.is_file():
        return False
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:20_000]
    except OSError:
        return False
    return bool(_REVISION.search(text) and _DOWN_REVISION.search(text))


@dataclass(frozen=True)
class _Layout:
    """Where a project's Alembic files are."""

    script_location: Path
    version_locations: tuple[Path, ...]
    ini: Path | None = None

    @property
    def env_py(self) -> Path | None:
        env = self.script_location / "env.py"
        return env if env.is_file() else None


def _layout(path: Path) -> _Layout:
    if path.is_file():
        return _from_ini(path)
    if (path / "env.py").is_file() and (path / "versions").is_dir():
        return _Layout(path, (path / "versions",))
    return _Layout(path, (path,))


def _from_ini(ini: Path) -> _Layout:
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
    try:
        parser.read_string(ini.read_text(encoding="utf-8"))
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise MigrationSetError(f"{ini}: cannot read it as an alembic.ini ({exc}).") from exc
    if not parser.has_option("alembic", "script_location"):
        raise MigrationSetError(f"{ini}: no script_location in its [alembic] section.")
    location = parser.get("alembic", "script_location")
    if ":" in location and not Path(location).exists():
        raise MigrationSetError(
            f"{ini}: script_location {location!r} names a package resource; give tenantdb the "
            "folder itself (the one holding env.py and versions/)."
        )
    script = _relative(ini, location)
    raw = parser.get("alembic", "version_locations", fallback="")
    separator = parser.get("alembic", "version_path_separator", fallback="")
    parts = _split_locations(raw, separator)
    versions = tuple(_relative(ini, p) for p in parts) or (script / "versions",)
    return _Layout(script, versions, ini)


def _split_locations(raw: str, separator: str) -> list[str]:
    if not raw.strip():
        return []
    seps = {"os": os.pathsep, ":": ":", ";": ";", "space": " ", "newline": "\n", "": " "}
    sep = seps.get(separator, separator)
    if separator in ("", "space"):
        return [p for p in re.split(r"[\s,]+", raw) if p]
    return [p.strip() for p in raw.split(sep) if p.strip()]


def _relative(ini: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else ini.parent / path


class AlembicSource:
    """Detects and loads Alembic histories."""

    name = "alembic"
    versioning: str | None = "alembic"
    looked_for = "Alembic: a folder with env.py and versions/, an alembic.ini, or a folder of revision files"

    def detect(self, spec: str, path: Path) -> bool:
        if path.is_file():
            return path.suffix == ".ini" and "[alembic]" in path.read_text(encoding="utf-8", errors="replace")
        if not path.is_dir():
            return False
        if (path / "env.py").is_file() and (path / "versions").is_dir():
            return True
        return any(is_revision_file(f) for f in sorted(path.glob("*.py")))

    def load(self, spec: str, path: Path) -> list[Step]:
        layout = _layout(path)
        for folder in layout.version_locations:
            if not folder.is_dir():
                raise MigrationSetError(f"{folder}: Alembic version location does not exist.")
        scripts = _load_scripts(layout)
        takes_connection = bool(
            layout.env_py
            and _TAKES_CONNECTION.search(layout.env_py.read_text(encoding="utf-8", errors="replace"))
        )
        steps: list[Step] = []
        for position, script in enumerate(scripts, start=1):
            source = Path(script.path).read_text(encoding="utf-8", errors="surrogateescape")
            _MODULES[(str(Path(script.path)), hash(source))] = script.module  # imported once
            down = script.down_revision
            downs = () if down is None else (down,) if isinstance(down, str) else tuple(down)
            steps.append(
                AlembicStep(
                    position,
                    script.revision,
                    Path(script.path),
                    downs,
                    source,
                    layout if takes_connection else None,
                    has_down_function=callable(getattr(script.module, "downgrade", None)),
                )
            )
        return steps


def _load_scripts(layout: _Layout) -> list[Any]:
    """The revision scripts from base to head, through Alembic's own ScriptDirectory."""
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    with importable_from(layout.ini.parent if layout.ini else layout.script_location.parent):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                directory = ScriptDirectory(
                    str(layout.script_location),
                    version_locations=[str(p) for p in layout.version_locations],
                )
                heads = directory.get_heads()
                scripts = list(reversed(list(directory.walk_revisions("base", "heads"))))
        except (RevisionError, CommandError) as exc:
            raise MigrationSetError(f"{layout.script_location}: {exc}; fix the revision graph.") from exc
        except (Exception, SystemExit) as exc:
            raise MigrationSetError(_import_failure(exc, layout)) from exc
    for warning in caught:
        if "present more than once" in str(warning.message):
            raise MigrationSetError(
                f"{layout.script_location}: {warning.message}: two revision files declare the same "
                "revision id; give one of them a new id."
            )
    if len(heads) > 1:
        raise MigrationSetError(
            f"{layout.script_location}: the revision history has {len(heads)} heads "
            f"({', '.join(sorted(heads))}): unmerged branches. Merge them "
            "(`alembic merge heads`) so every tenant ends at one head."
        )
    return scripts


def _import_failure(exc: BaseException, layout: _Layout) -> str:
    """Name the revision file (and line) whose import raised ``exc``."""
    folders = [str(p.resolve()) for p in layout.version_locations]
    frame = deepest_frame(exc, lambda filename: any(os.path.abspath(filename).startswith(f) for f in folders))
    where = f"{frame[0]}:{frame[1]}" if frame else None
    shown = f"{type(exc).__name__}: {exc}"
    if where is None and isinstance(exc, SyntaxError) and exc.filename:
        found = [f / exc.filename for f in layout.version_locations if (f / exc.filename).is_file()]
        where = f"{found[0] if found else exc.filename}:{exc.lineno}"
    if where is None:
        return f"{layout.script_location}: loading the Alembic revisions raised {shown}."
    return f"{where}: importing this Alembic revision raised {shown}; fix the revision file."


@dataclass(frozen=True, eq=False)
class AlembicStep(Step):
    """One Alembic revision."""

    version: int
    name: str
    path: Path
    down_revisions: tuple[str, ...]
    source: str
    env: _Layout | None  # run through env.py (it takes our connection), or straight from the script
    has_down_function: bool = True
    transactional: bool = True

    @property
    def ident(self) -> str:
        return f"alembic:{self.name}"

    @cached_property
    def checksum(self) -> str:
        return sha("alembic", str(self.version), self.name, self.source)

    @property
    def has_down(self) -> bool:
        return self.has_down_function

    def run(self, conn: sqlite3.Connection, direction: Direction = "up") -> None:
        if direction == "down" and not self.has_down:
            raise StepFailure(self.label, None, str(self.path), "the revision has no downgrade()", "down")
        with step_errors(self.label, self.path, direction, conn), sqlalchemy_connection(conn) as bind:
            if self.env is not None:
                self._through_env(bind, direction)
            else:
                self._through_operations(bind, direction)

    def _script(self) -> Any:
        return _script_module(self.path, self.source)

    def _through_operations(self, bind: Any, direction: Direction) -> None:
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext

        context = MigrationContext.configure(
            connection=bind, opts={"render_as_batch": True, "transaction_per_migration": True}
        )
        module = self._script()
        # Alembic's own per-revision "transaction" (as its run_migrations opens one), so that
        # revisions using op.get_context().autocommit_block() find it; its commits are no-ops on
        # the lent connection, so the revision stays inside the migrator's transaction.
        with context.begin_transaction(_per_migration=True), Operations.context(context):
            getattr(module, "upgrade" if direction == "up" else "downgrade")()

    def _through_env(self, bind: Any, direction: Direction) -> None:
        """The project's env.py configures the context with our connection; Alembic runs exactly
        this revision and keeps ``alembic_version`` itself."""
        from alembic.runtime.environment import EnvironmentContext
        from alembic.runtime.migration import RevisionStep

        assert self.env is not None
        config = _config(self.env)
        config.attributes["connection"] = bind
        directory = _directory(self.env)
        revision = directory.get_revision(self.name)
        step = RevisionStep(directory.revision_map, revision, direction == "up")

        def plan(_heads: Any, _context: Any) -> list[Any]:
            return [step]

        with (
            importable_from(self.env.ini.parent if self.env.ini else self.env.script_location.parent),
            EnvironmentContext(config, directory, fn=plan, destination_rev=self.name),
        ):
            directory.run_env()


def _config(layout: _Layout) -> Any:
    """An Alembic Config of the project (new per run: it carries the lent connection)."""
    from alembic.config import Config

    config = Config(str(layout.ini)) if layout.ini else Config()
    config.set_main_option("script_location", str(layout.script_location))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in layout.version_locations))
    return config


@functools.cache
def _directory(layout: _Layout) -> Any:
    """The project's ScriptDirectory, read once per process (not once per revision and tenant)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(layout))


_MODULES: dict[tuple[str, int], Any] = {}


def _script_module(path: Path, source: str) -> Any:
    """A revision module, imported once per process and file content."""
    key = (str(path), hash(source))  # a str caches its hash: no re-hashing per tenant
    if key not in _MODULES:
        from alembic.util.pyfiles import load_python_file

        _MODULES[key] = load_python_file(str(path.parent), path.name)
    return _MODULES[key]


class _Lender:
    """One SQLAlchemy engine per process; each ``connect()`` hands out the connection lent now."""

    def __init__(self) -> None:
        self.local = threading.local()
        self._engine: Any = None

    def engine(self) -> Any:
        if self._engine is None:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            self._engine = create_engine("sqlite://", creator=self._current, poolclass=NullPool)
            from sqlalchemy import event

            event.listen(self._engine, "before_cursor_execute", self._record)
        return self._engine

    def _record(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        calls = getattr(self.local, "calls", None)
        if calls is not None:
            calls.append((statement, parameters, many, self._line(str(self.local.path))))

    @staticmethod
    def _line(path: str) -> int:
        """The line of the revision (``path``) that is running the statement, 0 if none is."""
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename == path:
                return frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return 0

    def _current(self) -> BorrowedConnection:
        return BorrowedConnection(self.local.conn)


_LENDER = _Lender()


@contextmanager
def recorded_calls(path: Path) -> Iterator[list[tuple[str, Any, bool, int]]]:
    """Every statement SQLAlchemy runs on lent connections of this thread inside the block, with
    its parameters, whether it was an ``executemany`` and the line of revision ``path`` that ran
    it (see checks/recorded.py)."""
    calls: list[tuple[str, Any, bool, int]] = []
    _LENDER.local.calls, _LENDER.local.path = calls, path
    try:
        yield calls
    finally:
        _LENDER.local.calls = None


@contextmanager
def sqlalchemy_connection(conn: sqlite3.Connection) -> Iterator[Any]:
    """A SQLAlchemy connection over the tenant's own sqlite3 connection (lent: whatever
    SQLAlchemy commits or rolls back, the migrator's transaction decides)."""
    _LENDER.local.conn = conn
    try:
        with _LENDER.engine().connect() as bind:
            yield bind
    finally:
        _LENDER.local.conn = None
