"""The tenantdb command keeps its promise (docs/reference/cli.md) on random argv, pyproject.toml
and migration folders: no traceback, a documented exit code, never 70, exit 2 with a message,
exit 1 only for findings. benchmarks/fuzz_cli.py at smoke size; ``make fuzz`` runs it at full size."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fuzz_cli import SIZES, Case, Outcome, draw_case, fuzz, problems, run_in_process


@settings(max_examples=SIZES["smoke"], deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False))
def test_random_invocations_keep_the_promise(rng: random.Random) -> None:
    outcome = run_in_process(draw_case(rng))
    assert problems(outcome) == [], (
        f"{outcome.case.describe()}\nexit {outcome.code}\nstdout: {outcome.out[-800:]}\nstderr: {outcome.err[-2000:]}"
    )


def test_the_console_script_keeps_it_too() -> None:
    tally = fuzz(3, seed=1, subprocess_every=1)
    assert tally.runs == {"in-process": 3, "subprocess": 3}
    assert tally.broken == [] and tally.tracebacks == 0
    report = tally.report()
    assert "runs: 6 (3 in-process, 3 through the console script)" in report and "tracebacks: 0" in report


def test_the_promise_is_checked() -> None:
    """The oracle itself: each way of breaking the promise is seen."""
    check, versions = Case(("check", ".")), Case(("versions", "m"))
    assert problems(Outcome(check, 1, "1 finding\n", "", "in-process")) == []
    assert problems(Outcome(check, 2, "", "error: ConfigError: x\n", "in-process")) == []
    broken = {
        "a Python traceback in the output": Outcome(check, 2, "", "Traceback (most recent", "in-process"),
        "exit 2 without a message on stderr": Outcome(check, 2, "", "", "in-process"),
        "exit 1 that is not findings of check": Outcome(versions, 1, "x", "", "in-process"),
        "internal error (exit 70)": Outcome(check, 70, "", "tenantdb: internal error", "in-process"),
        "exit code 3 is not documented": Outcome(check, 3, "", "x", "in-process"),
    }
    for expected, outcome in broken.items():
        assert expected in problems(outcome)
    assert problems(Outcome(check, None, "", "SystemExit: 1", "in-process"))[0].startswith("an exception")
