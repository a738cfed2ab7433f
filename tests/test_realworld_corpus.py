"""Precision and recall of the checker on real public histories (tests/realworld/labels.toml).

Every finding `tenantdb check` makes (no app queries configured) on the corpus's histories, as
installed from PyPI, must have a label; every label marked true must be found (recall 100 %), and at
least 90 % of the findings must be true (precision). The histories run in a child process (Django is
set up there with the corpus's own settings); nothing is cached between runs.
"""

from __future__ import annotations

from tests.realworld.corpus import TABLE_HEAD, Score, drift, load, problems, run_child, score, toml_block


def test_realworld_precision_and_recall() -> None:
    projects, labels = load()
    checked = run_child("tenantdb")
    assert set(checked) == {p.name for p in projects}, "every project of the corpus was checked"
    versions = drift(projects)
    wrong = problems(projects, labels, checked)
    assert not wrong, "tests/realworld/labels.toml:\n" + "\n".join(wrong + versions)

    total = Score()
    rows, unlabeled, missed = [], [], []
    for project in projects:
        result = score(project.name, checked[project.name]["findings"], labels)
        total.add(result)
        rows.append(result.row(project.name))
        unlabeled += [toml_block(project.name, found) for found in result.unlabeled]
        missed += [
            f"  {lab.project} {lab.step} {lab.code} {lab.subject}: {lab.reason}" for lab in result.missed
        ]
    report = "\n".join(
        [
            f"real histories: precision {total.precision:.1%} ({total.true} true / {total.true + total.false} "
            f"labeled findings), recall {total.recall:.1%} ({total.expected - len(total.missed)} of "
            f"{total.expected} true labels found)",
            TABLE_HEAD,
            *rows,
            total.row("all"),
        ]
    )
    if missed:
        report += "\n\ntrue labels not found:\n" + "\n".join(missed)
    if unlabeled:
        report += (
            f"\n\n{len(unlabeled)} finding(s) without a label: read the step and add to "
            "tests/realworld/labels.toml\n\n" + "\n".join(unlabeled)
        )
    if versions:
        report += "\n\nnot the versions labeled:\n" + "\n".join(versions)
    print(report)
    assert not unlabeled, report
    assert total.recall == 1.0, report
    assert total.precision >= 0.90, report
