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
    assert len(figures) == 13
    assert any("migrate+seed each from empty" in n for n in names)
    assert any("copying files only" in n for n in names)
    assert any("plain executescript" in n for n in names)
    assert any("2 workers vs 1" in n for n in names)
    assert any("pytest --co" in n for n in names)
    assert any("with drawn data: template vs from empty" in n for n in names)
    assert any("whole examples incl. step" in n for n in names)
    assert any("statements/s, " in n for n in names)
    assert any("findings cached" in n for n in names)
    assert any("--base with 10 new steps" in n for n in names)
    assert any("scratch database per step vs one database" in n for n in names)
    assert any("squawk" in n for n in names)
    assert any("built-in checks" in n for n in names)
    for figure in figures:
        assert figure.ours > 0 and figure.baseline > 0
        assert figure.name in figure.row() and ("met" in figure.row() or "MISSED" in figure.row())


def test_figure_ratio() -> None:
    figure = Figure("x", ours=0.5, baseline=2.0, unit="s", target="t", met=True)
    assert figure.ratio == 4.0
    assert Figure("y", 0.0, 1.0, "s", "t", False).ratio == float("inf")
