"""Precision and recall of the checker on a labeled corpus (tests/corpus/sqlite.toml).

Fails below recall 100 % (every expected finding is made) or precision 95 % (few false alarms).
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.lint.engine import LintOptions, lint_project
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.queries import QueryFolder
from pytest_tenantdb.versioning import UserVersionStore

CORPUS = tomllib.loads((Path(__file__).parent / "corpus" / "sqlite.toml").read_text())
POSTGRES = tomllib.loads((Path(__file__).parent / "corpus" / "postgres.toml").read_text())


def _run_postgres(case: dict[str, object], root: Path) -> list[str]:
    (root / "migrations").mkdir(parents=True)
    (root / "migrations" / "0001_before.sql").write_text(str(case.get("before", POSTGRES["before"])))
    (root / "migrations" / "0002_step.sql").write_text(str(case["migration"]))
    folder = None
    if "queries" in case:  # postgres cases have no old code unless they give it
        (root / "queries").mkdir()
        (root / "queries" / "0001.sql").write_text(str(case["queries"]))
        folder = QueryFolder(root / "queries")
    migrations = MigrationSet.from_path(root / "migrations")
    templates = TemplateCache(root / "cache", migrations, UserVersionStore())  # not used by postgres
    options = LintOptions(since=1, dialect="postgres")
    return sorted(f.code for f in lint_project(migrations, templates, folder, options))


def _run(case: dict[str, object], root: Path) -> list[str]:
    (root / "migrations").mkdir(parents=True)
    (root / "migrations" / "0001_before.sql").write_text(str(case.get("before", CORPUS["before"])))
    (root / "migrations" / "0002_step.sql").write_text(str(case["migration"]))
    queries = case.get("queries", CORPUS["queries"])
    folder = None
    if queries is not False:
        (root / "queries").mkdir()
        (root / "queries" / "0001.sql").write_text(str(queries))
        folder = QueryFolder(root / "queries")
    migrations = MigrationSet.from_path(root / "migrations")
    templates = TemplateCache(root.parent / "cache", migrations, UserVersionStore())
    found = lint_project(migrations, templates, folder, LintOptions(since=1))
    return sorted(f.code for f in found if f.severity != "note")  # notes say what was not checked


def test_corpus_precision_and_recall(tmp_path: Path) -> None:
    true_pos = false_pos = false_neg = 0
    misses = []
    runs = [(case, _run) for case in CORPUS["case"]] + [(case, _run_postgres) for case in POSTGRES["case"]]
    for n, (case, run) in enumerate(runs):
        got = Counter(run(case, tmp_path / f"case{n}"))
        want = Counter(case["expected"])
        true_pos += sum((got & want).values())
        false_pos += sum((got - want).values())
        false_neg += sum((want - got).values())
        if got != want:
            misses.append(f"{case['name']}: expected {sorted(want.elements())}, got {sorted(got.elements())}")
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 1.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 1.0
    report = f"precision {precision:.1%}, recall {recall:.1%} over {len(runs)} cases\n" + "\n".join(misses)
    print(report)
    assert recall == 1.0, report
    assert precision >= 0.95, report


def test_corpus_covers_every_rule_and_safe_look_alikes() -> None:
    from pytest_tenantdb.lint.rules import RULES

    expected = {code for case in CORPUS["case"] + POSTGRES["case"] for code in case["expected"]}
    assert expected >= set(RULES) - {"TDB001"}  # TDB001 needs a statement SQLite runs but sqlglot cannot read
    assert sum(1 for case in CORPUS["case"] if not case["expected"]) >= 20
