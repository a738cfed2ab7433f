"""A baseline file: the findings an existing repository already has, ignored until they change.

Adopting the gate on a project with history should not mean fixing every released step first:
``tenantdb check --write-baseline tenantdb-baseline.json`` records today's findings, and
``--baseline`` (or ``baseline = ...`` in ``[tool.tenantdb]``) reports only new ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pytest_tenantdb.errors import ConfigError
from pytest_tenantdb.lint.findings import Finding, fingerprint


def check_baseline_target(path: Path) -> None:
    """Refuse a ``--write-baseline`` target that cannot be written, before a long lint run."""
    if path.is_dir():
        raise ConfigError(
            f"--write-baseline {path}: is a folder; name a file, e.g. {path / 'tenantdb-baseline.json'}"
        )
    if not path.parent.is_dir():
        raise ConfigError(
            f"--write-baseline {path}: the folder {path.parent} does not exist; create it first "
            "or name a file in an existing folder"
        )


def write_baseline(path: Path, findings: Sequence[Finding], root: str) -> None:
    entries = sorted({fingerprint(f, root) for f in findings})
    check_baseline_target(path)
    try:
        path.write_text(
            json.dumps({"tenantdb-baseline": 1, "findings": entries}, indent=2) + "\n", encoding="utf-8"
        )
    except OSError as exc:
        raise ConfigError(
            f"--write-baseline {path}: cannot write it ({exc.strerror}); name a file you can write"
        ) from exc


def read_baseline(path: Path) -> set[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("tenantdb-baseline") != 1:
            raise ValueError("not a tenantdb baseline")
        return {str(entry) for entry in data["findings"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a baseline file ({exc}); write one with --write-baseline") from exc


def without_known(findings: Sequence[Finding], path: Path | None, root: str) -> list[Finding]:
    """``findings`` less those the baseline at ``path`` lists (all of them when there is none);
    ``root`` is the repository's top folder the baseline's paths are relative to."""
    if path is None:
        return list(findings)
    known = read_baseline(path)
    return [f for f in findings if fingerprint(f, root) not in known]
