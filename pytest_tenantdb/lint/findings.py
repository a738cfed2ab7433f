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


def fingerprint(finding: Finding, root: str) -> str:
    """Identifies a finding across runs (line numbers move; code, file and message do not)."""
    file = finding.file[len(root) :].lstrip("/") if finding.file.startswith(root) else finding.file
    return f"{finding.code}|{file}|{finding.message}"


FORMATS = {"text": as_text, "json": as_json, "github": as_github, "sarif": as_sarif, "junit": as_junit}
