"""The directory source: numbered ``.sql`` and ``.py`` files in one folder.

Layouts, detected per file:
- ``0001_create_users.sql`` with ``-- migrate:up`` / ``-- migrate:down`` sections (no markers: up only)
- ``0001_create_users.up.sql`` + ``0001_create_users.down.sql``
- ``0003_backfill.py`` defining ``up(conn)`` and optionally ``down(conn)``
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_tenantdb.errors import MigrationSetError
from pytest_tenantdb.migrations.statements import Statement, is_blank, split_statements
from pytest_tenantdb.migrations.steps import NO_TRANSACTION_MARKER, PythonStep, SqlStep, Step

if TYPE_CHECKING:
    from pytest_tenantdb.migrations import MigrationSet

_STEP_NAME = re.compile(
    r"^(?P<version>\d+)_(?P<name>[A-Za-z0-9_\-]+?)(?P<part>\.up|\.down)?\.(?P<ext>sql|py)$"
)
_MARKER = re.compile(r"^\s*--\s*migrate:(up|down)\b(.*)$", re.IGNORECASE | re.MULTILINE)


@dataclass
class _Parts:
    """The files found for one version while scanning."""

    name: str
    single: Path | None = None
    up: Path | None = None
    down: Path | None = None
    python: Path | None = None


def _ignored(path: Path) -> bool:
    return path.name.startswith(("_", ".")) or path.suffix not in {".sql", ".py"}


def read_text(path: Path) -> str:
    """Read a migration file as UTF-8, or say which file and byte is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MigrationSetError(f"{path}: cannot read migration file ({exc.strerror}).") from exc
    if b"\x00" in data:  # SQLite cannot take a statement with a NUL in it
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise MigrationSetError(f"{path}:{line}: migration file contains a NUL byte; is it a text file?")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MigrationSetError(
            f"{path}:{line}: migration file is not valid UTF-8 (byte {exc.start}); re-save it as UTF-8."
        ) from exc


class DirectorySource:
    """Loads steps from numbered files in one directory."""

    name = "directory"
    looked_for = "a folder of numbered SQL / Python steps (0001_name.sql, 0002_name.py)"
    versioning: str | None = None

    def detect(self, spec: str, path: Path) -> bool:
        return path.is_dir()

    def load(self, spec: str, path: Path) -> list[Step]:
        if (path / "__init__.py").is_file() and any(_is_django_migration(f) for f in path.glob("0*.py")):
            raise MigrationSetError(
                f"{path} holds Django migrations; name the app instead: "
                f'migrations = "django:{path.parent.name}" in [tool.tenantdb] (with DJANGO_SETTINGS_MODULE set).'
            )
        by_version: dict[int, _Parts] = {}
        for file in sorted(path.iterdir()):
            if _ignored(file):
                continue
            if not file.is_file():
                if file.is_symlink() and not file.exists():  # a step pointing nowhere must not vanish
                    raise MigrationSetError(
                        f"{file}: symbolic link to {os.readlink(file)}, which does not exist (or "
                        "loops); fix the link or remove it."
                    )
                continue
            match = _STEP_NAME.match(file.name)
            if match is None:
                raise MigrationSetError(
                    f"{file}: migration file name has no version; name it like "
                    "'0001_create_users.sql' (integer prefix, underscore, name)."
                )
            version = int(match["version"])
            parts = by_version.setdefault(version, _Parts(match["name"]))
            if parts.name != match["name"]:
                raise MigrationSetError(
                    f"duplicate version {version}: {file.name} and another file named "
                    f"'{parts.name}'; give each step its own version number."
                )
            slot = "python" if match["ext"] == "py" else (match["part"] or ".single")[1:]
            if getattr(parts, slot) is not None or (slot != "python" and parts.python is not None):
                raise MigrationSetError(
                    f"duplicate version {version}: {file.name} clashes with another file of the "
                    "same version; give each step its own version number."
                )
            if slot == "python" and (parts.single or parts.up or parts.down):
                raise MigrationSetError(
                    f"duplicate version {version}: {file.name} and an SQL file share the version."
                )
            setattr(parts, slot, file)
        return [self._step(version, parts) for version, parts in sorted(by_version.items())]

    def _step(self, version: int, parts: _Parts) -> Step:
        if parts.python is not None:
            return PythonStep.from_file(version, parts.name, parts.python, read_text(parts.python))
        if parts.single is not None:
            if parts.up or parts.down:
                raise MigrationSetError(
                    f"duplicate version {version}: {parts.single.name} and .up/.down files share "
                    "the version; use one layout per step."
                )
            return self._single_file(version, parts.name, parts.single)
        if parts.up is None:
            raise MigrationSetError(
                f"{parts.down}: down migration without an up file; add "
                f"{version:04d}_{parts.name}.up.sql or remove the down file."
            )
        up_text = read_text(parts.up)
        up = split_statements(up_text)
        down = split_statements(read_text(parts.down)) if parts.down else None
        return SqlStep(
            version,
            parts.name,
            parts.up,
            tuple(up),
            tuple(down) if down is not None else None,
            parts.down,
            transactional=NO_TRANSACTION_MARKER not in up_text.lower(),
        )

    def _single_file(self, version: int, name: str, path: Path) -> SqlStep:
        text = read_text(path)
        markers = list(_MARKER.finditer(text))
        transactional = NO_TRANSACTION_MARKER not in text.lower() and not any(
            _dbmate_options(m[2]).get("transaction") == "false" for m in markers
        )
        if not markers:
            up = split_statements(text)
            return SqlStep(version, name, path, tuple(up), transactional=transactional)
        if not is_blank(text[: markers[0].start()]):
            raise MigrationSetError(
                f"{path}: SQL before the first '-- migrate:' marker; move it into the "
                "'-- migrate:up' section."
            )
        sections: dict[str, list[Statement]] = {}
        for index, marker in enumerate(markers):
            kind = marker[1].lower()
            if kind in sections:
                raise MigrationSetError(f"{path}: more than one '-- migrate:{kind}' section.")
            end = markers[index + 1].start() if index + 1 < len(markers) else len(text)
            body = text[marker.end() : end]
            body = body[1:] if body.startswith("\n") else body
            marker_line = text.count("\n", 0, marker.start()) + 1
            sections[kind] = split_statements(body, marker_line + 1)
        if "up" not in sections:
            raise MigrationSetError(f"{path}: has a '-- migrate:down' but no '-- migrate:up' section.")
        up = sections["up"]
        down = sections.get("down")
        return SqlStep(
            version,
            name,
            path,
            tuple(up),
            tuple(down) if down is not None else None,
            transactional=transactional,
        )


def require_steps(migrations: MigrationSet, fix: Callable[[str | None], str], spec: str) -> None:
    """Any source's set with no step is a misdirected setting: a command that checks or lists
    nothing must not pass. ``fix(suggested)`` says what to do; ``suggested`` is ``spec`` joined
    to a sub-folder that holds step files, when there is one."""
    if len(migrations):
        return
    origin = Path(migrations.origin)
    below = folder_with_steps(origin) if origin.is_dir() else None
    if below is None:
        raise MigrationSetError(f"no migration steps found in {origin}; {fix(None)}")
    raise MigrationSetError(
        f"no migration steps found in {origin} (its sub-folder {below.name} holds step files); "
        + fix(f"{spec.rstrip('/')}/{below.name}")
    )


def folder_with_steps(path: Path) -> Path | None:
    """The first sub-folder of ``path`` holding files named like steps: where a misdirected
    ``migrations`` setting probably meant to point."""
    try:
        folders = sorted(p for p in path.iterdir() if p.is_dir() and not _ignored_folder(p))
        return next((f for f in folders if any(_STEP_NAME.match(c.name) for c in f.iterdir())), None)
    except OSError:
        return None


def _ignored_folder(path: Path) -> bool:
    return path.name.startswith((".", "_"))


def _dbmate_options(rest: str) -> dict[str, str]:
    """dbmate's options after ``-- migrate:up`` / ``-- migrate:down``: ``key:value`` words, read
    as dbmate reads them (``transaction:false`` runs the section outside a transaction; a step runs
    with or without one as a whole, so either section's option applies to the step)."""
    pairs = (word.split(":") for word in rest.split())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def _is_django_migration(path: Path) -> bool:
    try:
        return "class Migration(" in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
