"""Findings and the formats they are printed in (text, json, github)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Finding:
    """One problem: which rule, where (file:line, step), what happened and what to do instead."""

    code: str
    severity: str
    message: str
    file: str
    line: int
    step: str = ""
    statement: str = ""
    hint: str = ""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


def as_text(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"{f.location}: {f.code} [{f.severity}] {f.message}")
        if f.statement:
            lines.append("    " + f.statement.replace("\n", "\n    "))
        if f.hint:
            lines.append(f"    safe alternative: {f.hint}")
    lines.append(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}")
    return "\n".join(lines)


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps([asdict(f) for f in findings], indent=2)


def as_github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands: annotations on the pull request's diff."""
    level = {"error": "error", "warning": "warning"}
    out = []
    for f in findings:
        message = f"{f.code} {f.message}".replace("%", "%25").replace("\n", "%0A")
        out.append(
            f"::{level.get(f.severity, 'notice')} file={f.file},line={f.line},title={f.code}::{message}"
        )
    return "\n".join(out)


FORMATS = {"text": as_text, "json": as_json, "github": as_github}
