"""The benchmarks run in smoke size inside the suite: they must work and measure what they say.

No timing is asserted here (the machine's load would make that flaky); `make bench` runs them at
full size and prints whether each target is met.
"""

from __future__ import annotations

import pytest

from benchmarks.fleet import Figure, run_all


@pytest.mark.slow
def test_benchmarks_smoke() -> None:
    figures = run_all("smoke")
    names = [f.name for f in figures]
    assert len(figures) == 35
    for part in (
        "migrate+seed each from empty",
        "copying files only",
        "plain executescript",
        "2 workers vs 1",
        "tenants, progress as in pytest vs none",
        "tenants, progress drawn vs none",
        "pytest --co",
        "with drawn data: template vs from empty",
        "whole examples incl. step",
        "statements/s, ",
        "findings cached",
        "--base with 10 new steps",
        "scratch database per step vs one database",
        "squawk",
        "built-in checks",
        "-revision Alembic history",
        "load prefect's 115 revisions",
        "revision through Alembic vs its SQL",
        "Alembic source: fleet of",
        "built-in checks: alembic_project fixture",
        "real histories (",
        "real Django apps vs django-migration-linter",
        "real Alembic histories vs squawk",
        "one step added to a cached run",
        "-step 4-table history",
        "long history: one step added",
        "long history: a step's checks at",
        "long history: pytest -n 2 vs -n 0",
        "tenants vs introspecting each",
        "files vs 10 x",
        "fleet.query over",
        "no-op rehearse of",
        "rehearse a 10% sample of",
    ):
        assert any(part in n for n in names), part  # every figure is there
    for figure in figures:
        assert figure.ours > 0 and figure.baseline > 0
        assert figure.name in figure.row() and ("met" in figure.row() or "MISSED" in figure.row())


def test_figure_ratio() -> None:
    figure = Figure("x", ours=0.5, baseline=2.0, unit="s", target="t", met=True)
    assert figure.ratio == 4.0
    assert Figure("y", 0.0, 1.0, "s", "t", False).ratio == float("inf")
