"""The real-world corpus: public migration histories installed from PyPI (the ``dev`` extra) and a
label for every finding the checker makes on them (tests/realworld/labels.toml).

Used by tests/test_realworld_corpus.py (precision and recall must hold) and benchmarks/realworld.py
(the same figures, side by side with django-migration-linter and squawk).

The histories are checked in a child process (``python -m tests.realworld.corpus``): Django can be
set up once per process, and this corpus needs settings of its own (tests/realworld/django_settings.py)
where the rest of the suite uses fixtures/django_project's. The child prints JSON on stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
LABELS = Path(__file__).with_name("labels.toml")
SETTINGS = "tests.realworld.django_settings"
STATEMENT_CODES = ("TDB001", "TDB002", "TDB112", "TDB113")
VERDICTS = ("true", "false")


@dataclass(frozen=True)
class Project:
    """One real history: where it is installed and which of its steps the corpus covers."""

    name: str
    distribution: str  # the PyPI package
    version: str  # the version the labels were made on
    spec: str  # "django:app,app" or "PACKAGE/relative/folder" (an Alembic history inside a package)
    source: str  # "alembic" or "django"
    why: str
    steps: tuple[str, ...] = ()  # Django: only steps of these apps (prefixes of a step's name)

    def resolve(self) -> str:
        """The spec MigrationSet.from_path takes: the package folder found without importing it."""
        if self.spec.startswith("django:"):
            return self.spec
        package, _, rest = self.spec.partition("/")
        found = importlib.util.find_spec(package)
        if found is None or found.origin is None:
            raise LookupError(f"{self.name}: package {package} is not installed (pip install -e '.[dev]')")
        return str(Path(found.origin).parent / rest)

    def covers(self, step_name: str) -> bool:
        return not self.steps or any(step_name.startswith(prefix) for prefix in self.steps)

    def installed(self) -> str | None:
        try:
            return metadata.version(self.distribution)
        except metadata.PackageNotFoundError:
            return None


@dataclass(frozen=True)
class Label:
    project: str
    step: str
    code: str
    subject: str
    verdict: str
    reason: str
    origin: str  # "tool": a finding the checker made; "review": a hazard found by reading the step

    @property
    def key(self) -> tuple[str, str, str, str]:
        return key_of(self.project, self.step, self.code, self.subject)


def key_of(project: str, step: str, code: str, subject: str) -> tuple[str, str, str, str]:
    """Labels match findings case-insensitively, whitespace collapsed."""
    return (project.lower(), step.lower(), code.upper(), " ".join(subject.split()).lower())


def load(path: Path = LABELS) -> tuple[list[Project], list[Label]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    projects = [
        Project(
            name=p["name"],
            distribution=p["distribution"],
            version=p["version"],
            spec=p["spec"],
            source=p["source"],
            why=p["why"],
            steps=tuple(p.get("steps", ())),
        )
        for p in data["project"]
    ]
    labels = [
        Label(
            project=lab["project"],
            step=lab["step"],
            code=lab["code"],
            subject=lab["subject"],
            verdict=lab["verdict"],
            reason=lab["reason"],
            origin=lab.get("origin", "tool"),
        )
        for lab in data.get("label", [])
    ]
    return projects, labels


# -- what a finding is about --------------------------------------------------------------------

#: (code, pattern over today's message, subject built from the groups)
_MESSAGES: tuple[tuple[str, str, str], ...] = (
    ("TDB101", r"^table (\S+) is dropped", "table {0}"),
    ("TDB103", r"^table (\S+) is renamed", "table {0}"),
    ("TDB102", r"^column (\S+?) is dropped", "column {0}"),
    ("TDB104", r"^column (\S+?) is renamed", "column {0}"),
    ("TDB105", r"^(\S+?) is NOT NULL without a default", "column {0}"),
    ("TDB106", r"^(\S+?) becomes NOT NULL", "column {0}"),
    ("TDB107", r"^(\S+?) changes type", "column {0}"),
    ("TDB110", r"^default of (\S+?) is ", "column {0}"),
    ("TDB108", r"^UNIQUE \((.*?)\) added to existing table (\S+)", "unique {1}({0})"),
    (
        "TDB108",
        r"^unique index \S+ added to existing table (\S+): UNIQUE ON \S+ \((.*?)\)",
        "unique {0}({1})",
    ),
    ("TDB109", r"^CHECK \((.*)\) added to existing table (\S+)", "check {1}: {0}"),
    ("TDB109", r"^FOREIGN KEY \((.*?)\)\s*->.* added to existing table (\S+)", "foreign key {1}({0})"),
    ("TDB114", r"loses index (\S+)", "index {0}"),
    ("TDB114", r"loses trigger (\S+)", "trigger {0}"),
    ("TDB114", r"^the rebuild of (\S+) loses CHECK \((.*)\)$", "check {0}: {1}"),
    ("TDB114", r"^the rebuild of (\S+) loses FOREIGN KEY \((.*?)\)", "foreign key {0}({1})"),
    ("TDB111", r"^view (\S+) is dropped", "view {0}"),
    ("TDB111", r"^trigger (\S+) on \S+ is dropped", "trigger {0}"),
)


def subject_of(finding: Any) -> str:
    """What ``finding`` is about, in the labels' format: its ``subject`` when the checker fills it,
    else read from its message (the format of each code is in tests/realworld/labels.toml)."""
    subject = str(getattr(finding, "subject", "") or "")
    if subject:
        return " ".join(subject.split())
    code, message = finding.code, " ".join(str(finding.message).split())
    if code in STATEMENT_CODES:
        return "statement " + " ".join(str(finding.statement or message).split())[:40]
    if code.startswith("TDB2"):
        named = re.search(r"query (\S+)", message)
        return f"query {named.group(1).strip(':,')}" if named else "query ?"
    for rule, pattern, template in _MESSAGES:
        if rule == code and (match := re.search(pattern, message)):
            return template.format(*(g.strip() for g in match.groups()))
    return "?"


# -- running the checker (in the child process) -------------------------------------------------


def _check(project: Project, workdir: Path) -> dict[str, Any]:
    from pytest_tenantdb.fleet.templates import TemplateCache
    from pytest_tenantdb.lint.engine import LintOptions, lint_project
    from pytest_tenantdb.migrations import MigrationSet
    from pytest_tenantdb.versioning import version_store

    started = time.perf_counter()
    migrations = MigrationSet.from_path(project.resolve())
    templates = TemplateCache(workdir / "templates", migrations, version_store("auto", migrations))
    found = lint_project(migrations, templates, None, LintOptions(since=0))  # no app queries
    seconds = time.perf_counter() - started
    steps = {s.name: s.label for s in migrations if project.covers(s.name)}
    labels = set(steps.values())
    return {
        "seconds": seconds,
        "steps": steps,
        "findings": [
            {
                "step": f.step,
                "code": f.code,
                "subject": subject_of(f),
                "severity": f.severity,
                "message": f.message,
                "location": f"{_short(f.file)}:{f.line}",
            }
            for f in found
            if f.severity != "note" and f.step in labels  # notes say what was not checked
        ],
    }


def _short(path: str) -> str:
    return path.split("site-packages/", 1)[-1]


def _linter(project: Project) -> dict[str, Any]:
    """django-migration-linter on the project's migrations: what ``lintmigrations`` reports for each,
    through its own API (sqlmigrate on the SQLite backend, then its SQL and data-migration checks)."""
    from django_migration_linter import MigrationLinter
    from django_migration_linter.sql_analyser.analyser import analyse_sql_statements

    from pytest_tenantdb.migrations import MigrationSet

    migrations = MigrationSet.from_path(project.resolve())
    started = time.perf_counter()
    linter = MigrationLinter(no_cache=True, no_output=True)
    issues: list[dict[str, Any]] = []
    failed: list[str] = []
    for step in migrations:
        if not project.covers(step.name):
            continue
        app, name = step.name.split(".", 1)
        migration = linter.migration_loader.disk_migrations[(app, name)]
        if linter.should_ignore_migration(app, name, migration.operations, is_initial=migration.initial):
            continue
        try:
            sql = linter.get_sql(app, name)
        except Exception as exc:  # as --ignore-sqlmigrate-errors: lint the migration without its SQL
            failed.append(f"{step.label}: {type(exc).__name__}: {str(exc)[:120]}")
            sql = []
        errors, _, warnings = analyse_sql_statements(
            linter.sql_analyser_class, sql, linter.exclude_migration_tests
        )
        data_errors, _, data_warnings = linter.analyse_data_migration(migration)
        for kind, found in (("error", errors + data_errors), ("warning", warnings + data_warnings)):
            issues += [
                {"step": step.label, "code": i.code, "kind": kind, "table": i.table, "column": i.column}
                for i in found
            ]
    return {"seconds": time.perf_counter() - started, "issues": issues, "sqlmigrate_failed": failed}


def _postgres_sql(project: Project, workdir: Path) -> dict[str, Any]:
    """Each revision's upgrade as postgres SQL, as ``alembic upgrade --sql`` emits it offline (one
    revision at a time, on a mock connection): for squawk, which reads postgres SQL only. A revision
    that needs a live database (reflection, ORM queries, reading rows) emits nothing."""
    import io

    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    from pytest_tenantdb.migrations import MigrationSet

    migrations = MigrationSet.from_path(project.resolve())
    out = workdir / project.name
    out.mkdir(parents=True, exist_ok=True)
    revisions = []
    for step in migrations:
        loaded = importlib.util.spec_from_file_location(f"_tenantdb_revision_{step.version}", step.path)
        assert loaded is not None and loaded.loader is not None
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
        buffer = io.StringIO()
        context = MigrationContext.configure(
            dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True}
        )
        error = None
        try:
            with Operations.context(context):
                module.upgrade()
        except Exception as exc:  # a revision that needs a live database
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:160]
        file = out / f"{step.label}.sql"
        # SQLite's PRAGMAs (prefect's revisions switch foreign keys off around rebuilds) have no
        # postgres meaning and make squawk skip the whole file: left out
        sql = re.sub(r"(?im)^\s*PRAGMA[^;]*;\s*$", "", buffer.getvalue())
        file.write_text(sql if error is None else "")
        revisions.append({"step": step.label, "file": str(file), "error": error})
    return {"revisions": revisions}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the checker (or another tool) on the real histories")
    parser.add_argument("--tool", choices=["tenantdb", "django-migration-linter", "postgres-sql"])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("projects", nargs="*")
    args = parser.parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    projects, _ = load()
    chosen = [p for p in projects if not args.projects or p.name in args.projects]
    result: dict[str, Any] = {}
    for project in chosen:
        if args.tool == "tenantdb":
            result[project.name] = _check(project, args.workdir / project.name)
        elif args.tool == "django-migration-linter" and project.source == "django":
            result[project.name] = _linter(project)
        elif args.tool == "postgres-sql" and project.source == "alembic":
            result[project.name] = _postgres_sql(project, args.workdir)
    print(json.dumps(result))
    return 0


def run_child(tool: str, projects: Iterable[str] = (), workdir: Path | None = None) -> dict[str, Any]:
    """Run ``tool`` on the projects in a child process; its JSON answer."""
    with tempfile.TemporaryDirectory(prefix="tenantdb-realworld-") as tmp:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.realworld.corpus",
                "--tool",
                tool,
                "--workdir",
                str(workdir or tmp),
                *projects,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS, "PYTHONWARNINGS": "ignore"},
            check=False,
        )
    if run.returncode != 0:
        raise RuntimeError(f"{tool} on the real-world corpus failed:\n{run.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return answer


# -- scoring ------------------------------------------------------------------------------------


@dataclass
class Score:
    """Findings of one project (or all) against the labels."""

    findings: int = 0
    true: int = 0
    false: int = 0
    unlabeled: list[dict[str, Any]] = field(default_factory=list)
    expected: int = 0  # true labels
    missed: list[Label] = field(default_factory=list)

    @property
    def precision(self) -> float:
        judged = self.true + self.false
        return self.true / judged if judged else 1.0

    @property
    def recall(self) -> float:
        return (self.expected - len(self.missed)) / self.expected if self.expected else 1.0

    def add(self, other: Score) -> None:
        self.findings += other.findings
        self.true += other.true
        self.false += other.false
        self.unlabeled += other.unlabeled
        self.expected += other.expected
        self.missed += other.missed

    def row(self, name: str) -> str:
        return (
            f"| {name} | {self.findings} | {self.true} | {self.false} | {len(self.unlabeled)} | "
            f"{self.precision:.0%} | {self.expected - len(self.missed)}/{self.expected} | {self.recall:.0%} |"
        )


TABLE_HEAD = (
    "| project | findings | true | false | unlabeled | precision | true labels found | recall |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def score(project: str, findings: list[dict[str, Any]], labels: list[Label]) -> Score:
    mine = {lab.key: lab for lab in labels if lab.project == project}
    result = Score(findings=len(findings))
    seen = set()
    for found in findings:
        k = key_of(project, found["step"], found["code"], found["subject"])
        seen.add(k)
        label = mine.get(k)
        if label is None:
            result.unlabeled.append(found)
        elif label.verdict == "true":
            result.true += 1
        else:
            result.false += 1
    truths = [lab for lab in mine.values() if lab.verdict == "true"]
    result.expected = len(truths)
    result.missed = [lab for lab in truths if lab.key not in seen]
    return result


def toml_block(project: str, found: dict[str, Any]) -> str:
    """The label to add for an unlabeled finding (verdict and reason to fill in)."""
    return (
        "[[label]]\n"
        f"project = {json.dumps(project)}\n"
        f"step = {json.dumps(found['step'])}\n"
        f"code = {json.dumps(found['code'])}\n"
        f"subject = {json.dumps(found['subject'], ensure_ascii=False)}\n"
        'verdict = "true"  # or "false": read the step\n'
        'origin = "tool"\n'
        f"reason = {json.dumps('TODO: ' + found['message'] + ' at ' + found['location'], ensure_ascii=False)}\n"
    )


def problems(projects: list[Project], labels: list[Label], checked: dict[str, Any]) -> list[str]:
    """What is wrong with the labels file itself: unknown projects or steps, bad verdicts, no reason,
    the same key twice."""
    out = []
    names = {p.name for p in projects}
    seen: set[tuple[str, str, str, str]] = set()
    for lab in labels:
        where = f"label {lab.project} {lab.step} {lab.code} {lab.subject!r}"
        if lab.project not in names:
            out.append(f"{where}: no such project")
        elif lab.project in checked and lab.step not in set(checked[lab.project]["steps"].values()):
            out.append(f"{where}: no such step in {lab.project}")
        if lab.verdict not in VERDICTS:
            out.append(f"{where}: verdict must be one of {VERDICTS}")
        if not lab.reason.strip():
            out.append(f"{where}: no reason")
        if lab.key in seen:
            out.append(f"{where}: labeled twice")
        seen.add(lab.key)
    return out


def drift(projects: list[Project]) -> list[str]:
    """Packages installed at another version than the one labeled (the dev extra has lower bounds):
    a new release may bring steps without labels, or renumber a Django project's steps."""
    return [
        f"{p.name}: labeled on {p.distribution} {p.version}, installed {p.installed()}"
        for p in projects
        if p.installed() != p.version
    ]


if __name__ == "__main__":
    raise SystemExit(main())
