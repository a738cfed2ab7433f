"""MigrationSet: the ordered steps of a project, loaded from any registered source."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from pytest_tenantdb.errors import ConfigError, MigrationSetError
from pytest_tenantdb.migrations.directory import DirectorySource
from pytest_tenantdb.migrations.steps import Direction, PythonStep, SqlStep, Step

__all__ = ["Direction", "MigrationSet", "MigrationSource", "PythonStep", "SqlStep", "Step"]


class MigrationSource(Protocol):
    """Something that turns a path into steps (a SQL folder today; Alembic or Django later)."""

    name: str

    def detect(self, path: Path) -> bool:
        """True when this source understands ``path``."""
        ...

    def load(self, path: Path) -> list[Step]:
        """The steps found at ``path``, in any order."""
        ...


_SOURCES: list[MigrationSource] = [DirectorySource()]


def register_source(source: MigrationSource) -> None:
    """Let a new source format take precedence over the built-in ones."""
    _SOURCES.insert(0, source)


class MigrationSet(Sequence[Step]):
    """The steps of a project in version order, with their hashes.

    Version 0 is the empty database; versions need not be contiguous (gaps are listed in
    :attr:`gaps`), but each may appear only once.
    """

    def __init__(self, steps: Sequence[Step], origin: str = "<memory>") -> None:
        ordered = sorted(steps, key=lambda s: s.version)
        seen: dict[int, Step] = {}
        for step in ordered:
            if step.version <= 0:
                raise MigrationSetError(
                    f"{step.path}: version {step.version} is reserved for the empty database; "
                    "number steps from 1."
                )
            if step.version in seen:
                raise MigrationSetError(
                    f"duplicate version {step.version}: {seen[step.version].path} and {step.path}; "
                    "give each step its own version number."
                )
            seen[step.version] = step
        self._steps = tuple(ordered)
        self.origin = origin
        self._prefix_hashes: list[tuple[int, str]] | None = None

    @classmethod
    def from_path(cls, path: str | Path) -> MigrationSet:
        """Load a migrations directory, auto-detecting its layout."""
        path = Path(path)
        if not path.exists():
            raise MigrationSetError(
                f"migrations directory {path} does not exist; set tenantdb_migrations in "
                "your pytest ini or pass --tenantdb-migrations PATH."
            )
        for source in _SOURCES:
            if source.detect(path):
                return cls(source.load(path), origin=str(path))
        raise MigrationSetError(f"{path}: no migration source understands this path.")

    def __getitem__(self, index: int) -> Step:  # type: ignore[override]
        return self._steps[index]

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self._steps)

    def __repr__(self) -> str:
        return f"MigrationSet({self.origin!r}, versions={list(self.versions)})"

    @property
    def versions(self) -> tuple[int, ...]:
        """The versions of the steps, ascending (0, the empty database, is not listed)."""
        return tuple(step.version for step in self._steps)

    @property
    def head(self) -> int:
        """The newest version, or 0 when there are no steps."""
        return self._steps[-1].version if self._steps else 0

    @property
    def gaps(self) -> tuple[int, ...]:
        """Missing version numbers between 1 and head (allowed, reported)."""
        present = set(self.versions)
        return tuple(v for v in range(1, self.head + 1) if v not in present)

    def step(self, version: int) -> Step:
        """The step of ``version``."""
        for step in self._steps:
            if step.version == version:
                return step
        raise ConfigError(f"no migration step has version {version}; known: {list(self.versions)}")

    def prefix_hash(self, version: int) -> str:
        """Hash of steps 1..version: identifies the schema a template at ``version`` has."""
        if self._prefix_hashes is None:
            digest = hashlib.sha256(b"tenantdb-prefix-v1")
            hashes = [(0, digest.hexdigest())]
            for step in self._steps:
                digest.update(step.checksum.encode())
                hashes.append((step.version, digest.copy().hexdigest()))
            self._prefix_hashes = hashes
        return [h for v, h in self._prefix_hashes if v <= version][-1]

    @property
    def checksum(self) -> str:
        """Hash of the whole set: changes when any step is added, removed or edited."""
        return self.prefix_hash(self.head)

    def resolve(self, version: int | str) -> int:
        """Turn ``3``, ``"head"``, ``"head-1"``, ``"oldest"`` or ``"empty"`` into a version."""
        known = (0, *self.versions)
        if isinstance(version, bool):
            raise ConfigError(f"version must be an int or a name like 'head-1', not {version!r}")
        if isinstance(version, int):
            if version not in known:
                raise ConfigError(f"version {version} is not a step of {self.origin}; known: {list(known)}")
            return version
        text = str(version).strip().lower()
        if text == "empty":
            return 0
        if text == "oldest":
            return self.versions[0] if self.versions else 0
        if text.startswith("head"):
            back_text = text[4:].replace(" ", "")
            back = 0
            if back_text:
                if not back_text.startswith("-") or not back_text[1:].isdigit():
                    raise ConfigError(f"cannot read version {version!r}; write 'head' or 'head-2'")
                back = int(back_text[1:])
            if back >= len(known):
                raise ConfigError(
                    f"version {version!r} is before the empty database: {self.origin} has only "
                    f"{len(self.versions)} steps"
                )
            return known[len(known) - 1 - back]
        if text.isdigit():
            return self.resolve(int(text))
        raise ConfigError(
            f"cannot read version {version!r}; use an int, 'head', 'head-N', 'oldest' or 'empty'"
        )

    def plan(self, start: int, target: int) -> list[tuple[Step, Direction]]:
        """The steps (and directions) that take a database from ``start`` to ``target``."""
        if target >= start:
            return [(s, "up") for s in self._steps if start < s.version <= target]
        return [(s, "down") for s in reversed(self._steps) if target < s.version <= start]
