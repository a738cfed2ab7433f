"""The fault-injection campaign at smoke size: every kind of fault, both plans, both journal
modes, one and two workers; no tenant lost or corrupted, no traceback. ``make faults`` runs the
full size (benchmarks/faults.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.faults import KINDS, run_campaign


@pytest.mark.slow
def test_fault_campaign_smoke(tmp_path: Path) -> None:
    totals = run_campaign(trials=8, seed=11, work=tmp_path)  # every configuration, every kind
    assert totals.problems == []
    assert totals.lost == 0 and totals.tracebacks == 0
    assert totals.trials == 8 and set(totals.kinds) == set(KINDS)
    assert totals.tenants == 6 * (totals.trials - totals.skipped)
