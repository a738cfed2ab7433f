"""pytest-tenantdb's postgres rules side by side with squawk (the ``squawk-cli`` package) on the
postgres subset of the labeled corpus: speed, and which findings each one makes.

squawk lints each file on its own; pytest-tenantdb lints each step against the schema before it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

from benchmarks.fleet import ROOT, Figure
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.lint.engine import LintOptions, lint_project
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.versioning import UserVersionStore

CORPUS = ROOT / "tests" / "corpus" / "postgres.toml"
#: squawk rule -> the pytest-tenantdb code that flags the same hazard
EQUIVALENT = {
    "require-concurrent-index-creation": "TDB301",
    "adding-foreign-key-constraint": "TDB302",
    "constraint-missing-not-valid": "TDB302",
    "adding-field-with-default": "TDB303",
    "changing-column-type": "TDB304",
    "adding-not-nullable-field": "TDB305",
    "ban-drop-table": "TDB101",
    "ban-drop-column": "TDB102",
    "renaming-table": "TDB103",
    "renaming-column": "TDB104",
    "disallowed-unique-constraint": "TDB108",
}


def compare(workdir: Path) -> tuple[Figure, dict[str, object]]:
    beside = Path(sys.executable).parent / "squawk"  # installed in the same virtualenv
    squawk = str(beside) if beside.exists() else shutil.which("squawk")
    corpus = tomllib.loads(CORPUS.read_text())
    projects = []
    for n, case in enumerate(corpus["case"]):
        root = workdir / f"case{n:03d}" / "migrations"
        root.mkdir(parents=True)
        (root / "0001_before.sql").write_text(corpus["before"])
        (root / "0002_step.sql").write_text(case["migration"])
        projects.append((case, root))
    started = time.perf_counter()
    ours: list[Counter[str]] = []
    for _, root in projects:
        migrations = MigrationSet.from_path(root)
        templates = TemplateCache(root.parent / "cache", migrations, UserVersionStore())
        found = lint_project(migrations, templates, None, LintOptions(since=1, dialect="postgres"))
        ours.append(Counter(f.code for f in found))
    ours_seconds = time.perf_counter() - started
    if squawk is None:
        return Figure(
            "squawk not installed (pip install squawk-cli)",
            ours_seconds,
            ours_seconds,
            "s",
            "reported only",
            True,
        ), {}
    files = [str(root / "0002_step.sql") for _, root in projects]
    started = time.perf_counter()
    run = subprocess.run([squawk, "--reporter", "json", *files], capture_output=True, text=True, check=False)
    squawk_seconds = time.perf_counter() - started
    theirs: dict[str, Counter[str]] = {f: Counter() for f in files}
    for finding in json.loads(run.stdout or "[]"):
        theirs[finding["file"]][finding["rule_name"]] += 1
    both = only_ours = only_squawk = 0
    differences: list[str] = []
    for (case, root), mine in zip(projects, ours, strict=True):
        other = {EQUIVALENT[r] for r in theirs[str(root / "0002_step.sql")] if r in EQUIVALENT}
        mine_locking = {c for c in mine if c in set(EQUIVALENT.values())}
        both += len(mine_locking & other)
        only_ours += len(mine_locking - other)
        only_squawk += len(other - mine_locking)
        if mine_locking != other:
            differences.append(f"{case['name']}: ours {sorted(mine_locking)}, squawk {sorted(other)}")
    rules = Counter(r for c in theirs.values() for r in c.elements())
    summary = {
        "cases": len(projects),
        "both": both,
        "only_tenantdb": only_ours,
        "only_squawk": only_squawk,
        "squawk_rules": dict(rules.most_common()),
        "differences": differences,
    }
    figure = Figure(
        f"postgres corpus ({len(projects)} steps) vs squawk: same hazard {both}, only ours {only_ours}, "
        f"only squawk {only_squawk}",
        ours_seconds,
        squawk_seconds,
        "s",
        "reported only",
        True,
    )
    return figure, summary


def bench_squawk(workdir: Path, _: int) -> list[Figure]:
    figure, summary = compare(workdir)
    if summary:
        print("squawk comparison:", json.dumps(summary))
    return [figure]
