"""The ``module:attribute`` source: a home-grown runner's list of steps, in Python.

``attribute`` names a list (or tuple) whose items are either callables ``fn(conn)`` or objects
with ``up(conn)`` and maybe ``down(conn)``. An item's version is its position (from 1), its name
its ``__name__`` (or ``name`` attribute, or class name).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_tenantdb.errors import MigrationSetError, StepFailure
from pytest_tenantdb.migrations.borrowed import step_errors
from pytest_tenantdb.migrations.steps import Direction, Step, sha

SPEC = re.compile(r"^(?P<module>[A-Za-z_][\w.]*):(?P<attribute>[A-Za-z_][\w.]*)$")
StepFunction = Callable[[sqlite3.Connection], object]


@contextmanager
def importable_from(root: Path | None) -> Iterator[None]:
    """Let ``import`` find the project's modules while a source loads them (the CLI runs from
    anywhere; pytest already has the rootdir on ``sys.path`` in most projects)."""
    entry = str(root) if root is not None else ""
    added = bool(entry) and entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added:
            sys.path.remove(entry)


def import_object(module_name: str, attribute: str, what: str) -> Any:
    """``module_name.attribute``, or a MigrationSetError that names what failed to import."""
    try:
        module = importlib.import_module(module_name)
    except SystemExit as exc:
        raise MigrationSetError(f"importing {module_name} for {what} called exit({exc.code!r})") from exc
    except Exception as exc:
        raise MigrationSetError(
            f"cannot import {module_name} for {what}: {type(exc).__name__}: {exc}; check that the "
            "module is importable from the project root (or on PYTHONPATH)."
        ) from exc
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise MigrationSetError(f"{module_name} has no attribute {attribute!r} ({what}).")
        value = getattr(value, part)
    return value


def source_of(obj: object) -> tuple[str, Path, int]:
    """Source text, file and first line of a step function or object (for checksums and
    messages); objects without reachable source are identified by their qualified name."""
    target = obj if inspect.isfunction(obj) or inspect.isclass(obj) else type(obj)
    try:
        lines, first = inspect.getsourcelines(target)
        path = Path(inspect.getsourcefile(target) or "<unknown>")
        return "".join(lines), path, first
    except (OSError, TypeError):
        name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
        return name, Path("<unknown>"), 1


@dataclass(frozen=True, eq=False)
class CallableStep(Step):
    """One item of a ``module:attribute`` list."""

    version: int
    name: str
    path: Path
    key: str  # how the source names it: "pkg.steps:STEPS[3]", or "base"
    up: StepFunction
    down: StepFunction | None
    source: str = ""
    line: int = 1
    transactional: bool = True

    @property
    def ident(self) -> str:
        return self.key

    @property
    def checksum(self) -> str:
        return sha("callable", str(self.version), self.name, self.source)

    @property
    def has_down(self) -> bool:
        return self.down is not None

    def run(self, conn: sqlite3.Connection, direction: Direction = "up") -> None:
        function = self.up if direction == "up" else self.down
        if function is None:
            raise StepFailure(self.label, None, str(self.path), "the step has no down", direction)
        with step_errors(self.label, self.path, direction, conn):
            function(conn)


class CallableSource:
    """``package.module:STEPS``."""

    name = "module:attribute"
    looked_for = "module:attribute, a Python list of step functions fn(conn) or objects with up/down"

    versioning: str | None = None

    def detect(self, spec: str, path: Path) -> bool:
        return bool(SPEC.match(spec)) and not spec.startswith("django:") and not path.exists()

    def load(self, spec: str, path: Path) -> list[Step]:
        match = SPEC.match(spec)
        assert match is not None
        with importable_from(path.parent):  # the project root: ``spec`` has no slash
            items = import_object(match["module"], match["attribute"], f"migrations {spec!r}")
        if isinstance(items, str | bytes) or not isinstance(items, list | tuple):
            raise MigrationSetError(
                f"{spec} must be a list of step functions fn(conn) or objects with up/down, "
                f"not {type(items).__name__}."
            )
        steps: list[Step] = []
        for position, item in enumerate(items, start=1):
            up, down = _functions(item)
            if up is None:
                raise MigrationSetError(
                    f"{spec}[{position - 1}] ({item!r}) is neither callable nor has an up(conn) "
                    "method; each item is a function fn(conn) or an object with up(conn)."
                )
            name = getattr(item, "__name__", None) or getattr(item, "name", None) or type(item).__name__
            source, path, line = source_of(item)
            steps.append(
                CallableStep(
                    position,
                    str(name),
                    path,
                    f"{spec}[{position - 1}]",
                    up,
                    down,
                    source,
                    line,
                    transactional=bool(getattr(item, "transactional", True)),
                )
            )
        return steps


def _functions(item: object) -> tuple[StepFunction | None, StepFunction | None]:
    up = getattr(item, "up", None)
    if callable(up):
        down = getattr(item, "down", None)
        return up, down if callable(down) else None
    if callable(item):
        return item, None
    return None, None
