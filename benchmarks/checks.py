"""Benchmarks of the property checks.

- examples per second: a drawn tenant on an in-memory copy of the cached template vs. the same
  tenant on a database migrated from empty for every example (target: >= 10x);
- the built-in checks of the example project, 100 examples per check, as a user runs them
  (target: under 60 s on the 2-core machine).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from benchmarks.fleet import EXAMPLE, Figure
from pytest_tenantdb.checks.context import CheckContext
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.migrations.runner import run_plan
from pytest_tenantdb.strategies import TenantData, tenant_data
from pytest_tenantdb.versioning import UserVersionStore

PROJECT = EXAMPLE.parent


def _samples(ctx: CheckContext, version: int, count: int) -> list[TenantData]:
    found: list[TenantData] = []

    @settings(max_examples=count, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(tenant_data(ctx.schema(version), max_rows=ctx.max_rows))
    def collect(data: TenantData) -> None:
        found.append(data)

    collect()
    return found


def bench_examples(workdir: Path, count: int) -> list[Figure]:
    migrations = MigrationSet.from_path(EXAMPLE)
    ctx = CheckContext(TemplateCache(workdir / "cache", migrations, UserVersionStore()))
    version = ctx.previous(migrations.head)
    step = migrations.step(migrations.head)
    samples = _samples(ctx, version, count)

    def prepare_ours(data: TenantData) -> sqlite3.Connection:
        conn = ctx.fresh(version)
        data.apply(conn)
        return conn

    def prepare_from_empty(data: TenantData) -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        run_plan(conn, migrations, migrations.plan(0, version), ctx.templates.store)
        data.apply(conn)
        return conn

    def timed(prepare: object, with_step: bool) -> float:
        started = time.perf_counter()
        for data in samples:
            conn = prepare(data)  # type: ignore[operator]
            if with_step:
                run_plan(conn, migrations, [(step, "up")], ctx.templates.store)
            conn.close()
        return time.perf_counter() - started

    ctx.fresh(version).close()  # the template is built and loaded before timing
    n = len(samples)
    setup_ours, setup_base = timed(prepare_ours, False), timed(prepare_from_empty, False)
    whole_ours, whole_base = timed(prepare_ours, True), timed(prepare_from_empty, True)
    return [
        Figure(
            f"{n} tenants at v{version} with drawn data: template vs from empty ({n / setup_ours:.0f}/s vs {n / setup_base:.0f}/s)",
            setup_ours,
            setup_base,
            "s",
            ">= 10x faster",
            setup_base / setup_ours >= 10,
        ),
        Figure(
            f"{n} whole examples incl. step {step.label} ({n / whole_ours:.0f}/s vs {n / whole_base:.0f}/s)",
            whole_ours,
            whole_base,
            "s",
            "reported only",
            True,
        ),
    ]


def timed_pytest(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, str, int]:
    """Run pytest in ``project`` as a user does; its wall time, summary line and exit code."""
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    seconds = time.perf_counter() - started
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-200:]
    return seconds, summary, run.returncode


def bench_builtin_checks(workdir: Path, examples: int) -> list[Figure]:
    project = workdir / "project"
    project.mkdir()
    for name in ("migrations", "queries"):
        shutil.copytree(PROJECT / name, project / name)
    for name in ("schema.sql", "tenantdb.lock", "pyproject.toml"):
        shutil.copy(PROJECT / name, project / name)
    seconds, summary, returncode = timed_pytest(
        project, "--tenantdb-examples", str(examples), env={"CI": "true"}
    )
    if returncode != 0:
        raise RuntimeError(f"the built-in checks failed on the good example: {summary}")
    # a pull request adds one step: the passed checks of the others come from pytest's cache
    # (its lock entry and the schema.sql update are the author's job: history and snapshot left out)
    step = project / "migrations" / "0099_pin_notes.sql"
    step.write_text("ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;\n")
    again, summary_again, _ = timed_pytest(
        project,
        "--tenantdb-examples",
        str(examples),
        "-k",
        "not history and not snapshot",
        env={"CI": "true"},
    )
    return [
        Figure(
            f"built-in checks, {examples} examples each ({summary})",
            seconds,
            60.0,
            "s",
            "under 60 s",
            seconds < 60,
        ),
        Figure(
            f"one step added to a cached run ({summary_again})",
            again,
            seconds,
            "s",
            "faster than from cold",
            again < seconds,
        ),
    ]
