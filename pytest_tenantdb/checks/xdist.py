"""With pytest-xdist, the checks of one migration step go to the same worker.

``upgrade``, ``data_kept`` and ``round_trip`` of a step share one run of drawn tenants (see
:func:`pytest_tenantdb.checks.items.run_step_checks`). xdist's default ``load`` distribution hands
items out one by one, round robin, so two workers would each draw the same step's tenants. This
scheduler is ``load`` for every other item and keeps a step's items together; it is used only
when the user did not choose a ``--dist`` mode of their own.
"""

from __future__ import annotations

from typing import Any

import pytest

_STEP_KINDS = ("upgrade", "data_kept", "round_trip")


def step_scope(nodeid: str) -> str:
    """``migrations/0042_x.sql::0042_x`` for the checks of step 0042_x that share one tenant run;
    the node id itself for any other item."""
    parts = nodeid.split("::")
    if len(parts) == 3 and parts[2] in _STEP_KINDS:
        return "::".join(parts[:2])
    return nodeid


class StepSchedulingPlugin:
    """Registered when xdist runs with ``--dist load`` (what ``-n`` implies) and checks are on."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getvalue("dist") != "load":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class StepScheduling(LoadScopeScheduling):  # type: ignore[misc]
            def _split_scope(self, nodeid: str) -> str:
                return step_scope(nodeid)

        return StepScheduling(config, log)
