"""``tenantdb.lock``: the checksums of released steps, written on request, committed by you.

A released step must never change: tenants already ran the old text, so an edit silently splits
the fleet into two schemas. The ``history`` check compares every locked step with the current
one. Steps newer than the lock are unreleased and may still change. The lock is written only
when asked (``tenantdb lock`` or ``pytest --tenantdb-update-lock``), never as a side effect of a
test run: a lock written on the first run would lock steps still being written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pytest_tenantdb.errors import CheckFailure, ConfigError, LockMissing
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.migrations.steps import Step

HEADER = (
    "# tenantdb.lock: checksums of released migration steps. Commit this file.\n"
    "# After a release: tenantdb lock (or pytest --tenantdb-update-lock)\n"
)
WAYS_OUT = (
    "if no tenant ran it yet (the step was never released), accept the new text: run `tenantdb lock` "
    "(or `pytest --tenantdb-update-lock`) and commit {lock}"
)


def write_lock(path: Path, steps: Iterable[Step]) -> int:
    """Write the checksums of ``steps``; the number of steps written."""
    lines = [f"{step.version:04d} {step.name} {step.checksum}\n" for step in steps]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return len(lines)


def read_lock(path: Path) -> dict[int, tuple[str, str]]:
    """``{version: (name, checksum)}`` from a lock file."""
    locked: dict[int, tuple[str, str]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the lock file ({exc}); restore it from git") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[0].isdigit():
            raise ConfigError(f"{path}:{number}: not a lock line ('VERSION NAME CHECKSUM'): {line!r}")
        locked[int(parts[0])] = (parts[1], parts[2])
    return locked


def lock_problems(locked: Mapping[int, tuple[str, str]], migrations: MigrationSet, lock: Path) -> list[str]:
    """What changed in the released steps ``locked``: one line per removed or edited step."""
    problems = []
    current = {step.version: step for step in migrations}
    for version, (name, checksum) in sorted(locked.items()):
        step = current.get(version)
        if step is None:
            problems.append(
                f"released step {version:04d}_{name} was removed; tenants already ran it: restore it, or "
                + WAYS_OUT.format(lock=lock)
            )
        elif step.checksum != checksum:
            problems.append(
                f"released step {step.label} was edited (checksum {checksum[:12]} -> {step.checksum[:12]}, "
                f"{step.path}); tenants already ran the old text: revert the edit and add a new step, or "
                + WAYS_OUT.format(lock=lock)
            )
    return problems


def released_through(locked: Mapping[int, tuple[str, str]], migrations: MigrationSet) -> int:
    """The last version of the unchanged released prefix: every step up to it is locked with
    the same text. The checker need not flag those steps again (their tenants ran them)."""
    through = 0
    for step in migrations:
        entry = locked.get(step.version)
        if entry is None or entry[1] != step.checksum:
            break
        through = step.version
    return through


def check_history(path: Path, migrations: MigrationSet, update: bool = False) -> str:
    """Raise CheckFailure if a released step changed or vanished, LockMissing when there is no
    lock to compare with; return what was done."""
    if update:
        count = write_lock(path, migrations)
        return f"wrote {path} with {count} steps"
    if not path.exists():
        raise LockMissing(
            f"no lock file {path}: nothing is known to be released, so edits to released steps go "
            "unnoticed. After a release run `tenantdb lock` (or `pytest --tenantdb-update-lock`), "
            "or `tenantdb lock --base REF` to lock the steps of a released git ref, and commit the file"
        )
    problems = lock_problems(read_lock(path), migrations, path)
    if problems:
        raise CheckFailure("history intact:\n  " + "\n  ".join(problems))
    return "released steps unchanged"
