"""Migration steps: one version each, runnable up (and maybe down) on a sqlite3 connection."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import sqlite3
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pytest_tenantdb.errors import MigrationSetError, StepFailure
from pytest_tenantdb.migrations.borrowed import step_errors
from pytest_tenantdb.migrations.statements import Statement

Direction = Literal["up", "down"]

NO_TRANSACTION_MARKER = "-- tenantdb: no-transaction"
_FK_CHECK = re.compile(r"^\s*PRAGMA\s+(\w+\.)?foreign_key_check\b", re.IGNORECASE)


class Step(ABC):
    """One migration step. Sources (SQL and Python files, callables, Alembic, Django) subclass it.

    ``version`` is the step's place in the history (the file's number, or the position in an
    Alembic or Django graph); ``name`` is what the source calls it (a revision id, ``auth.0008_...``).
    """

    version: int
    name: str
    path: Path
    transactional: bool

    @property
    def label(self) -> str:
        """``0004_split_name``: how reports and test ids name the step."""
        return f"{self.version:04d}_{self.name}"

    @property
    def ident(self) -> str:
        """The source's own name for the step (``alembic:ae1027a6acf``), accepted as a version."""
        return ""

    @property
    @abstractmethod
    def checksum(self) -> str:
        """Hash of everything that defines what the step does; changes when it is edited."""

    @property
    @abstractmethod
    def has_down(self) -> bool:
        """True when the step can be reverted."""

    @abstractmethod
    def run(self, conn: sqlite3.Connection, direction: Direction = "up") -> None:
        """Run the step on ``conn``; raise :class:`StepFailure` naming the failing statement."""


def source_words(path: Path) -> frozenset[str] | None:
    """Every name-like word of a step's source file, lower case (None when it cannot be read):
    what a Python-driven step names, even in branches that run only when a tenant has rows."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return frozenset(w.lower() for w in re.findall(r"[A-Za-z_]\w*", text))


def names_table(words: frozenset[str], table: str) -> bool:
    """Whether ``words`` name ``table``, directly or as the Django model stored in it (model
    ``Foo`` of app ``bar`` lives in ``bar_foo``)."""
    lower = table.lower()
    return lower in words or lower.split("_", 1)[-1] in words


def sha(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class SqlStep(Step):
    """A step written in SQL: up statements and optional down statements."""

    version: int
    name: str
    path: Path
    up: tuple[Statement, ...]
    down: tuple[Statement, ...] | None = None
    down_path: Path | None = None
    transactional: bool = True

    @functools.cached_property
    def checksum(self) -> str:
        down = "\n".join(s.sql for s in self.down) if self.down is not None else "<none>"
        return sha("sql", str(self.version), self.name, *(s.sql for s in self.up), down)

    @property
    def has_down(self) -> bool:
        return self.down is not None

    def statements(self, direction: Direction = "up") -> tuple[Statement, ...]:
        """The statements run in ``direction``."""
        if direction == "up":
            return self.up
        if self.down is None:
            raise StepFailure(self.label, None, str(self.path), "the step has no down section", "down")
        return self.down

    def run(self, conn: sqlite3.Connection, direction: Direction = "up") -> None:
        path = self.path if direction == "up" else (self.down_path or self.path)
        for statement in self.statements(direction):
            location = f"{path}:{statement.line}"
            try:
                cursor = conn.execute(statement.sql)
                if _FK_CHECK.match(statement.sql):
                    violations = cursor.fetchall()
                    if violations:
                        table, rowid, parent, _ = violations[0]
                        raise StepFailure(
                            self.label,
                            statement.sql,
                            location,
                            f"{len(violations)} foreign key violation(s), first: {table} rowid "
                            f"{rowid} references a missing row of {parent}",
                            direction,
                        )
            except sqlite3.Error as exc:
                raise StepFailure(self.label, statement.sql, location, str(exc), direction) from exc


@dataclass(frozen=True, eq=False)
class PythonStep(Step):
    """A data migration in Python: a module defining ``up(conn)`` and maybe ``down(conn)``.

    A module sets ``TRANSACTIONAL = False`` when it cannot run inside one transaction.
    """

    version: int
    name: str
    path: Path
    source: str
    has_down_function: bool
    transactional: bool = True
    _module: list[ModuleType] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def from_file(cls, version: int, name: str, path: Path, source: str) -> PythonStep:
        """Load and validate the module now, so a broken file fails at collection time."""
        step = cls(version, name, path, source, has_down_function=False)
        module = step.module()
        if not callable(getattr(module, "up", None)):
            raise MigrationSetError(
                f"{path}: a Python migration step must define a function up(conn); "
                "add one (and optionally down(conn))."
            )
        return cls(
            version,
            name,
            path,
            source,
            has_down_function=callable(getattr(module, "down", None)),
            transactional=bool(getattr(module, "TRANSACTIONAL", True)),
            _module=step._module,  # already imported: not a second time at the first run
        )

    def module(self) -> ModuleType:
        """The step's module, imported once per process from its file."""
        if not self._module:
            module_name = f"_tenantdb_step_{self.version}_{self.checksum[:12]}"
            spec = importlib.util.spec_from_file_location(module_name, self.path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            try:
                code = compile(self.source, str(self.path), "exec")
                exec(code, module.__dict__)
            except SyntaxError as exc:
                raise MigrationSetError(
                    f"{self.path}:{exc.lineno}: Python migration step does not compile: {exc.msg}"
                ) from exc
            except (Exception, SystemExit) as exc:  # exit() at import is the step's, not ours
                raise MigrationSetError(
                    f"{self.path}: importing the Python migration step raised "
                    f"{type(exc).__name__}: {exc}; fix the module's top-level code."
                ) from exc
            self._module.append(module)
        return self._module[0]

    @functools.cached_property
    def checksum(self) -> str:
        return sha("python", str(self.version), self.name, self.source)

    @property
    def has_down(self) -> bool:
        return self.has_down_function

    def run(self, conn: sqlite3.Connection, direction: Direction = "up") -> None:
        if direction == "down" and not self.has_down:
            raise StepFailure(self.label, None, str(self.path), "the step has no down()", "down")
        with step_errors(self.label, self.path, direction, conn):
            getattr(self.module(), direction)(conn)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_module"] = []
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
