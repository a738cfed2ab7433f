"""MigrationSet: the ordered steps of a project, loaded from any registered source."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from pytest_tenantdb.errors import ConfigError, MigrationSetError
from pytest_tenantdb.migrations.directory import DirectorySource
from pytest_tenantdb.migrations.steps import Direction, PythonStep, SqlStep, Step

__all__ = ["VERSION_SYNTAX", "Direction", "MigrationSet", "MigrationSource", "PythonStep", "SqlStep", "Step"]

#: Every way to name a version, wherever one is taken (``--since``, ``[tool.tenantdb] since``,
#: fleet mixes, ``migrate(to=...)``, markers); :meth:`MigrationSet.resolve` reads them.
VERSION_SYNTAX = (
    "a step's number (3), 'head', 'head-N' (N steps before head), 'oldest', 'empty' or a step's name"
)
_HEAD = re.compile(r"head(?:-(\d+))?")


class MigrationSource(Protocol):
    """Something that turns a spec (a path, ``django:auth``, ``module:attribute``) into steps."""

    name: str
    looked_for: str  # one line for the error that lists what was looked for
    versioning: str | None  # the tool's own version store ("alembic", "django"), if it has one

    def detect(self, spec: str, path: Path) -> bool:
        """True when this source understands ``spec`` (``path`` is it joined to the project root)."""
        ...

    def load(self, spec: str, path: Path) -> list[Step]:
        """The steps of ``spec``, in history order."""
        ...


def _builtin_sources() -> list[MigrationSource]:
    from pytest_tenantdb.migrations.alembic import AlembicSource
    from pytest_tenantdb.migrations.callables import CallableSource
    from pytest_tenantdb.migrations.django import DjangoSource

    return [DjangoSource(), CallableSource(), AlembicSource(), DirectorySource()]


_SOURCES: list[MigrationSource] = _builtin_sources()


def register_source(source: MigrationSource) -> None:
    """Let a new source format take precedence over the built-in ones."""
    _SOURCES.insert(0, source)


class MigrationSet(Sequence[Step]):
    """The steps of a project in version order, with their hashes.

    Version 0 is the empty database; versions need not be contiguous (gaps are listed in
    :attr:`gaps`), but each may appear only once.
    """

    def __init__(
        self, steps: Sequence[Step], origin: str = "<memory>", versioning: str | None = None
    ) -> None:
        ordered = sorted(steps, key=lambda s: s.version)
        seen: dict[int, Step] = {}
        idents: dict[str, Step] = {}
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
            if step.ident and step.ident in idents:
                raise MigrationSetError(
                    f"duplicate step {step.ident}: {idents[step.ident].path} and {step.path}; "
                    "give each step its own name."
                )
            if step.ident:
                idents[step.ident] = step
            seen[step.version] = step
        self._steps = tuple(ordered)
        self.origin = origin
        self.versioning = versioning  # the source's own version store, used unless one is chosen
        self._prefix_hashes: list[tuple[int, str]] | None = None

    @classmethod
    def from_path(
        cls, spec: str | Path, *, base: str | None = None, root: str | Path | None = None
    ) -> MigrationSet:
        """Load migrations from ``spec``, auto-detecting the source: a folder of SQL / Python
        steps, an Alembic script location / ``alembic.ini`` / folder of revisions,
        ``django:app_label[,app_label]`` or ``module:attribute``. Relative paths are taken from
        ``root`` (default: the current directory). ``base`` (``module:function`` or an ``.sql``
        file) runs before the first step, for projects that create their first tables outside
        the migrations (``metadata.create_all``)."""
        text = str(spec).strip()
        if not text:
            raise MigrationSetError(
                "the migrations spec is empty; name a folder, alembic.ini, django:APP or module:attribute."
            )
        root_path = Path(root) if root is not None else Path.cwd()
        joined = Path(text)
        if not joined.exists() and ":" in joined.name and joined.parent != Path("."):
            # ``django:auth`` or ``pkg.steps:STEPS`` that settings joined to the rootdir like a path
            text, root_path = joined.name, joined.parent
        path = root_path / text
        for source in _SOURCES:
            if source.detect(text, path):
                steps = source.load(text, path)
                if base:
                    steps = _with_base(steps, base, root_path, source.name)
                origin = str(path) if path.exists() else text
                return cls(steps, origin=origin, versioning=source.versioning)
        looked = "\n".join(f"  - {s.looked_for}" for s in _SOURCES)
        what = f"{path} does not exist" if not path.exists() else f"{path} is no known layout"
        raise MigrationSetError(
            f"cannot load migrations from {text!r}: {what}. Looked for:\n{looked}\n"
            "Set migrations in [tool.tenantdb] of pyproject.toml (for one pytest run: --tenantdb-migrations)."
        )

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
    def gaps(self) -> tuple[range, ...]:
        """Runs of missing version numbers between 1 and head (allowed, reported), as ranges:
        a step numbered 99999999999999999999 makes one range, not that many numbers."""
        bounds = zip((0, *self.versions), self.versions, strict=False)
        return tuple(range(low + 1, high) for low, high in bounds if high > low + 1)

    def gaps_text(self) -> str:
        """The gaps for people: ``"4, 7-9"``."""
        return ", ".join(
            str(r.start) if r.stop - r.start == 1 else f"{r.start}-{r.stop - 1}" for r in self.gaps
        )

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
        """Turn ``3``, ``"head"``, ``"head-1"``, ``"oldest"``, ``"empty"`` or a step's name into a
        version (:data:`VERSION_SYNTAX`, the same everywhere a version is taken)."""
        known = (0, *self.versions)
        if isinstance(version, bool):
            raise ConfigError(f"cannot read version {version!r}; {self._syntax()}")
        if isinstance(version, int):
            if version not in known:
                raise ConfigError(f"version {version} is not a step of {self.origin}; known: {list(known)}")
            return version
        text = str(version).strip().lower()
        if text == "empty":
            return 0
        if text == "oldest":
            return self.versions[0] if self.versions else 0
        head = _HEAD.fullmatch(text.replace(" ", ""))
        if head is not None:
            back = int(head[1] or 0)
            if back >= len(known):
                raise ConfigError(
                    f"version {version!r} is before the empty database: {self.origin} has only "
                    f"{len(self.versions)} steps"
                )
            return known[len(known) - 1 - back]
        if text.isdigit():
            return self.resolve(int(text))
        named = self._by_name(text) if text else None  # a step called head_of_list is a name
        if named is not None:
            return named
        raise ConfigError(f"cannot read version {version!r}; {self._syntax()}")

    def _syntax(self) -> str:
        """What a version may be, with an example of this history's names."""
        if not self._steps:
            return f"use {VERSION_SYNTAX} ({self.origin} has no steps)"
        last = self._steps[-1]
        return f"use {VERSION_SYNTAX} (e.g. {last.ident or last.label!r})"

    def _by_name(self, text: str) -> int | None:
        """The version of the step called ``text``: its source's name (``alembic:ae1027a6acf``,
        ``django:auth.0008``), its label or its bare name, or a unique prefix of those."""
        exact: list[int] = []
        prefix: list[int] = []
        for step in self._steps:
            names = {n.lower() for n in (step.ident, step.label, step.name) if n}
            if text in names:
                exact.append(step.version)
            elif any(n.startswith(text) for n in names):
                prefix.append(step.version)
        found = exact or prefix
        if len(set(found)) > 1:
            raise ConfigError(
                f"version {text!r} is ambiguous: it names {[self.step(v).label for v in sorted(set(found))]}; "
                "write more of the name."
            )
        return found[0] if found else None

    def plan(self, start: int, target: int) -> list[tuple[Step, Direction]]:
        """The steps (and directions) that take a database from ``start`` to ``target``."""
        if target >= start:
            return [(s, "up") for s in self._steps if start < s.version <= target]
        return [(s, "down") for s in reversed(self._steps) if target < s.version <= start]


def _with_base(steps: list[Step], base: str, root: Path, source: str) -> list[Step]:
    """``steps`` after a first step that runs ``base`` (every other step moves up one version)."""
    import dataclasses

    from pytest_tenantdb.migrations.base import base_step

    if source == "directory":
        raise MigrationSetError(
            "a base ([tool.tenantdb] base) is for Alembic, Django and module:attribute sources; in a folder "
            "of SQL / Python steps, put it in the first step file instead."
        )
    return [base_step(base, root), *(dataclasses.replace(s, version=s.version + 1) for s in steps)]  # type: ignore[type-var]
