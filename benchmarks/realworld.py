"""Precision and recall on real public histories (tests/realworld/labels.toml), per project and
overall, for pytest-tenantdb and side by side for django-migration-linter and squawk.

- pytest-tenantdb: ``tenantdb check`` with no app queries, every finding matched to its label by
  (project, step, code, subject) (tests/realworld/corpus.py).
- django-migration-linter (Django apps only): what ``lintmigrations`` reports for each migration
  (``sqlmigrate`` on the SQLite backend, its SQLite analyser, its data-migration checks). Its issue
  codes are mapped to ours (LINTER); issues about code style or reversibility have no counterpart
  and are counted apart ("other").
- squawk (postgres SQL only): each Alembic revision's upgrade rendered offline for postgres (as
  ``alembic upgrade --sql`` does), SQLite PRAGMAs left out; a revision that needs a live database
  (reflection, ORM queries) emits nothing. Its rules are mapped to ours (SQUAWK); its locking and
  robustness rules have no SQLite counterpart ("other"). Django apps cannot emit postgres SQL
  without a postgres server (``sqlmigrate`` reads the migration table and introspects constraint
  names), so squawk is not run on them.

The other tools do not name the column a finding is about (django-migration-linter names a table
for some), so their findings are matched by step and hazard class: a finding is true when its step
has a true label of a class it maps to (and of its table, when it names one), and such a label is
found when a finding of its class is in its step. That can only flatter them.

Smoke size (inside the suite) runs four short projects; full size (``make bench``) all of them and
rewrites the table in docs/performance.md ("Precision on real histories").
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.fleet import ROOT, Figure
from tests.realworld.corpus import TABLE_HEAD, Label, Score, load, run_child, score

SMOKE = ("optuna", "ihatemoney", "django-contrib", "django-axes")
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- realworld-table:begin (make bench) -->", "<!-- realworld-table:end -->"

#: django-migration-linter issue code -> the codes of ours that flag the same hazard
LINTER: dict[str, frozenset[str]] = {
    "DROP_TABLE": frozenset({"TDB101"}),
    "DROP_COLUMN": frozenset({"TDB102"}),
    "RENAME_TABLE": frozenset({"TDB103"}),
    "RENAME_COLUMN": frozenset({"TDB104"}),
    "NOT_NULL": frozenset({"TDB105", "TDB106"}),  # a NOT NULL column added, or a column made NOT NULL
    "ALTER_COLUMN": frozenset({"TDB107"}),  # postgres ALTER COLUMN ... TYPE; never on SQLite
    "ADD_UNIQUE": frozenset({"TDB108"}),
}
#: squawk rule -> the codes of ours that flag the same hazard
SQUAWK: dict[str, frozenset[str]] = {
    "ban-drop-table": frozenset({"TDB101"}),
    "ban-drop-column": frozenset({"TDB102"}),
    "renaming-table": frozenset({"TDB103"}),
    "renaming-column": frozenset({"TDB104"}),
    "adding-required-field": frozenset({"TDB105"}),
    "adding-not-nullable-field": frozenset({"TDB106"}),  # SET NOT NULL on an existing column
    "changing-column-type": frozenset({"TDB107"}),
    "disallowed-unique-constraint": frozenset({"TDB108"}),
    "adding-foreign-key-constraint": frozenset({"TDB109"}),
    "constraint-missing-not-valid": frozenset({"TDB109"}),
    "ban-drop-default": frozenset({"TDB110"}),
}


@dataclass(frozen=True)
class Hit:
    """One finding of another tool: where, which of our codes it stands for, which table if named."""

    project: str
    step: str
    codes: frozenset[str]
    table: str | None = None


@dataclass
class Other:
    """Another tool's findings against the labels."""

    tool: str
    projects: tuple[str, ...]
    findings: int = 0  # mapped to a hazard class of ours
    other: int = 0  # style, robustness, locking: no counterpart
    true: int = 0
    false: int = 0
    expected: int = 0
    found: int = 0
    seconds: float = 0.0
    note: str = ""

    @property
    def precision(self) -> float:
        return self.true / (self.true + self.false) if self.true + self.false else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0


def _table_of(subject: str) -> str | None:
    kind, _, rest = subject.partition(" ")
    if kind == "table":
        return rest.lower()
    if kind == "column":
        return rest.rsplit(".", 1)[0].lower()
    if kind in ("unique", "foreign", "check"):
        return rest.removeprefix("key ").split("(")[0].split(":")[0].strip().lower()
    return None


def match(tool: str, projects: Iterable[str], hits: list[Hit], labels: list[Label], other: int) -> Other:
    names = tuple(projects)
    truths = [lab for lab in labels if lab.project in names and lab.verdict == "true"]
    result = Other(tool, names, findings=len(hits), other=other, expected=len(truths))
    found: set[int] = set()
    for hit in hits:
        covered = [
            n
            for n, lab in enumerate(truths)
            if lab.project == hit.project
            and lab.step == hit.step
            and lab.code in hit.codes
            and (hit.table is None or _table_of(lab.subject) in (None, hit.table.lower()))
        ]
        if covered:
            result.true += 1
            found.update(covered)
        else:
            result.false += 1
    result.found = len(found)
    return result


def _ours(checked: dict[str, Any], labels: list[Label], names: Iterable[str]) -> Score:
    total = Score()
    for name in names:
        total.add(score(name, checked[name]["findings"], labels))
    return total


def _linter(names: list[str], labels: list[Label]) -> Other:
    if not names:
        return Other("django-migration-linter", (), note="no Django app in this run")
    answer = run_child("django-migration-linter", names)
    hits, other, failed = [], 0, 0
    for name, result in answer.items():
        failed += len(result["sqlmigrate_failed"])
        for issue in result["issues"]:
            if issue["code"] in LINTER:
                hits.append(Hit(name, issue["step"], LINTER[issue["code"]], issue["table"]))
            else:
                other += 1
    compared = match("django-migration-linter", answer, hits, labels, other)
    compared.seconds = sum(r["seconds"] for r in answer.values())
    compared.note = f"sqlmigrate failed on {failed} migration(s) without a database (linted without SQL)"
    return compared


def _squawk(names: list[str], labels: list[Label], workdir: Path) -> Other | None:
    beside = Path(sys.executable).parent / "squawk"  # installed in the same virtualenv
    squawk = str(beside) if beside.exists() else shutil.which("squawk")
    if squawk is None:
        return None
    if not names:
        return Other("squawk", (), note="no Alembic history in this run")
    workdir.mkdir(parents=True, exist_ok=True)
    answer = run_child("postgres-sql", names, workdir)
    step_of = {}
    emitted = total = 0
    for name, result in answer.items():
        for revision in result["revisions"]:
            total += 1
            if revision["error"] is None:
                emitted += 1
                step_of[str(Path(revision["file"]).resolve())] = (name, revision["step"])
    started = time.perf_counter()
    run = subprocess.run(
        [squawk, "--reporter", "json", *step_of], capture_output=True, text=True, check=False, cwd=workdir
    )
    seconds = time.perf_counter() - started
    hits, other = [], 0
    for violation in json.loads(run.stdout or "[]"):
        rule = violation["rule_name"]
        file = (workdir / violation["file"]).resolve()
        where = step_of.get(str(file))
        if rule in SQUAWK and where is not None:
            hits.append(Hit(where[0], where[1], SQUAWK[rule], _statement_table(file, violation["line"])))
        else:
            other += 1
    compared = match("squawk", answer, hits, labels, other)
    compared.seconds = seconds
    compared.note = f"{emitted} of {total} revisions emit postgres SQL offline"
    return compared


_TABLE = re.compile(r"\b(?:ALTER|DROP)\s+TABLE\s+(?:IF\s+EXISTS\s+)?\"?(\w+)|\bON\s+\"?(\w+)", re.IGNORECASE)


def _statement_table(file: Path, line: int) -> str | None:
    """The table of the statement squawk points at (its lines are counted from 0)."""
    text = "\n".join(file.read_text().splitlines()[line:]).split(";", 1)[0]
    found = _TABLE.search(text)
    return (found.group(1) or found.group(2)) if found else None


def _tool_row(name: str, applies: str, c: Other) -> str:
    return (
        f"| {name} | {applies} | {c.findings} (+{c.other} other) | {c.true} | {c.false} | "
        f"{c.precision:.0%} | {c.found}/{c.expected} | {c.recall:.0%} |"
    )


def _our_row(applies: str, s: Score) -> str:
    return (
        f"| pytest-tenantdb | {applies} | {s.findings} | {s.true} | {s.false} | {s.precision:.0%} | "
        f"{s.expected - len(s.missed)}/{s.expected} | {s.recall:.0%} |"
    )


def bench_realworld(workdir: Path, full: bool) -> list[Figure]:
    projects, labels = load()
    chosen = [p for p in projects if full or p.name in SMOKE]
    names = [p.name for p in chosen]
    checked = run_child("tenantdb", names)
    per_project = {name: score(name, checked[name]["findings"], labels) for name in names}
    total = _ours(checked, labels, names)
    ours_seconds = sum(r["seconds"] for r in checked.values())
    steps = sum(len(r["steps"]) for r in checked.values())

    django = [p.name for p in chosen if p.source == "django"]
    alembic = [p.name for p in chosen if p.source == "alembic"]
    linter = _linter(django, labels)
    squawk = _squawk(alembic, labels, workdir / "squawk")
    ours_django, ours_alembic = _ours(checked, labels, django), _ours(checked, labels, alembic)

    lines = [
        f"Real histories, {len(names)} projects, {steps} steps, "
        f"{sum(1 for lab in labels if lab.project in names)} labels, measured {date.today().isoformat()} "
        "(benchmarks/realworld.py; `make bench` regenerates this table):",
        "",
        TABLE_HEAD,
        *(per_project[name].row(name) for name in names),
        total.row("**all**"),
        "",
        "| tool | applies to | findings | true | false | precision | true labels found | recall |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        _our_row("every project", total),
        _our_row("Django apps", ours_django),
        _tool_row("django-migration-linter 6", "Django apps", linter),
        _our_row("Alembic histories", ours_alembic),
        _tool_row("squawk", "Alembic histories as postgres SQL", squawk)
        if squawk
        else "| squawk | not installed | | | | | | |",
        "",
        f"django-migration-linter: {linter.note}. squawk: {squawk.note if squawk else 'not installed'}.",
    ]
    table = "\n".join(lines)
    print(table)
    if full:
        _write_doc(table)

    figures = [
        Figure(
            f"real histories ({len(names)} projects, {steps} steps): precision {total.precision:.0%} "
            f"({total.true}/{total.true + total.false}), recall {total.recall:.0%}",
            ours_seconds,
            60.0,
            "s",
            ">= 90 %, recall 100 %",
            total.precision >= 0.9 and total.recall == 1.0 and not total.unlabeled,
        ),
        Figure(
            f"real Django apps vs django-migration-linter: precision {ours_django.precision:.0%} vs "
            f"{linter.precision:.0%}, recall {ours_django.recall:.0%} vs {linter.recall:.0%}",
            sum(checked[name]["seconds"] for name in django),
            linter.seconds,
            "s",
            "reported only",
            True,
        ),
    ]
    alembic_seconds = sum(checked[name]["seconds"] for name in alembic)
    if squawk is None:
        figures.append(
            Figure(
                "real Alembic histories vs squawk: squawk not installed (pip install squawk-cli)",
                alembic_seconds,
                alembic_seconds,
                "s",
                "reported only",
                True,
            )
        )
    else:
        figures.append(
            Figure(
                f"real Alembic histories vs squawk: precision {ours_alembic.precision:.0%} vs "
                f"{squawk.precision:.0%}, recall {ours_alembic.recall:.0%} vs {squawk.recall:.0%}",
                alembic_seconds,
                squawk.seconds,
                "s",
                "reported only",
                True,
            )
        )
    return figures


def _write_doc(table: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        return
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":  # python -m benchmarks.realworld: this benchmark alone, at full size
    with tempfile.TemporaryDirectory(prefix="tenantdb-bench-") as tmp:
        for figure in bench_realworld(Path(tmp), full=True):
            print(figure.row())
