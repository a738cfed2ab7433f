"""``tenantdb.lock``: the checksums of released steps, written by the plugin, committed by you.

A released step must never change: tenants already ran the old text, so an edit silently splits
the fleet into two schemas. The ``history`` check compares every locked step with the current
one. Steps newer than the lock are unreleased and may still change; run
``pytest --tenantdb-update-lock`` when you release them.
"""

from __future__ import annotations

from pathlib import Path

from pytest_tenantdb.errors import CheckFailure, ConfigError
from pytest_tenantdb.migrations import MigrationSet

HEADER = (
    "# tenantdb.lock: checksums of released migration steps. Commit this file.\n"
    "# After a release: pytest --tenantdb-update-lock\n"
)


def write_lock(path: Path, migrations: MigrationSet) -> None:
    lines = [f"{step.version:04d} {step.name} {step.checksum}\n" for step in migrations]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(lines), encoding="utf-8")


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


def check_history(path: Path, migrations: MigrationSet, update: bool = False) -> str:
    """Raise CheckFailure if a released step changed or vanished; return what was done."""
    if update or not path.exists():
        write_lock(path, migrations)
        return f"wrote {path} with {len(migrations)} steps"
    problems = []
    current = {step.version: step for step in migrations}
    for version, (name, checksum) in sorted(read_lock(path).items()):
        step = current.get(version)
        if step is None:
            problems.append(f"released step {version:04d}_{name} was removed; tenants already ran it")
        elif step.checksum != checksum:
            problems.append(
                f"released step {step.label} was edited (checksum {checksum[:12]} -> {step.checksum[:12]}, "
                f"{step.path}); tenants already ran the old text: revert the edit and add a new step"
            )
    if problems:
        raise CheckFailure("history intact:\n  " + "\n  ".join(problems))
    return "released steps unchanged"
