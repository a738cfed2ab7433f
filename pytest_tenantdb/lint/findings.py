"""Findings and the formats they are printed in (text, json, github)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path


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
    subject: str = ""  # what it is about: "column t.c", "index ix", "table t", "query name"

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
    notes = sum(1 for f in findings if f.severity == "note")
    count = len(findings) - notes
    lines.append(
        f"{count} finding{'s' if count != 1 else ''}"
        + (f", {notes} note{'s' if notes != 1 else ''}" if notes else "")
    )
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


def as_sarif(findings: Sequence[Finding]) -> str:
    """SARIF 2.1.0, for GitHub code scanning and other SARIF viewers."""
    from pytest_tenantdb.lint.rules import RULES

    used = sorted({f.code for f in findings})
    run = {
        "tool": {
            "driver": {
                "name": "pytest-tenantdb",
                "version": _version(),
                "informationUri": "https://pypi.org/project/pytest-tenantdb/",
                "rules": [
                    {
                        "id": code,
                        "name": RULES[code].name,
                        "shortDescription": {"text": RULES[code].summary},
                        "fullDescription": {"text": RULES[code].explanation},
                        "help": {"text": RULES[code].alternative},
                    }
                    for code in used
                ],
            }
        },
        "results": [
            {
                "ruleId": f.code,
                "ruleIndex": used.index(f.code),
                # the same finding keeps its identity when lines move (code scanning's alert match)
                "partialFingerprints": {
                    "tenantdb/v1": hashlib.sha256(fingerprint(f, "").encode()).hexdigest()[:32]
                },
                "level": {"error": "error", "warning": "warning"}.get(f.severity, "note"),
                "message": {"text": f.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": f.file},
                            "region": {"startLine": f.line},
                        }
                    }
                ],
            }
            for f in findings
        ],
    }
    return json.dumps(
        {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "runs": [run]},
        indent=2,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-tenantdb")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


def as_junit(findings: Sequence[Finding]) -> str:
    """JUnit XML: one failed test case per finding (GitLab CI and most CI servers show it)."""
    from xml.etree import ElementTree as ET

    failures = [f for f in findings if f.severity != "note"]
    suite = ET.Element(
        "testsuite",
        name="tenantdb check",
        tests=str(max(1, len(findings))),
        failures=str(len(failures)),
        skipped=str(len(findings) - len(failures)),
    )
    if not findings:
        ET.SubElement(suite, "testcase", classname="tenantdb", name="no findings")
    for f in findings:
        case = ET.SubElement(suite, "testcase", classname=f.file, name=f"{f.code} line {f.line}")
        if f.severity == "note":  # what was not checked: skipped, never a failure
            ET.SubElement(case, "skipped", message=f.message)
            continue
        failure = ET.SubElement(case, "failure", message=f.message, type=f.code)
        failure.text = f"{f.location}: {f.message}\n{f.statement}\nsafe alternative: {f.hint}"
    return ET.tostring(suite, encoding="unicode")


def relocated(
    findings: Sequence[Finding], root: Path, moved: Mapping[Path, Path] | None = None
) -> list[Finding]:
    """``findings`` with each file relative to ``root`` (the repository's top folder), so that
    GitHub annotations, SARIF and baselines name the same file from any folder and machine; a
    file under a key of ``moved`` (the base ref's queries, copied out of git into a temporary
    folder) is named where it lives in the repository."""
    result = []
    for finding in findings:
        path = Path(finding.file).resolve()
        for copy, original in (moved or {}).items():
            if path.is_relative_to(copy):
                path = original / path.relative_to(copy)
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else finding.file
        result.append(replace(finding, file=shown))
    return result


def fingerprint(finding: Finding, root: str) -> str:
    """Identifies a finding across runs (line numbers move; code, file and message do not)."""
    file = finding.file[len(root) :].lstrip("/") if finding.file.startswith(root) else finding.file
    return f"{finding.code}|{file}|{finding.message}"


FORMATS = {"text": as_text, "json": as_json, "github": as_github, "sarif": as_sarif, "junit": as_junit}
