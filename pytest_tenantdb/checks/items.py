"""The built-in checks as pytest items (``tenantdb::0004_split_name::upgrade``), the hypothesis
settings they run with, minimal failing tenants saved as SQL, and ``--tenantdb-replay``."""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_tenantdb.checks.appcode import REGISTRY, load_recorded
from pytest_tenantdb.checks.builtin import STEP_KINDS, Check, StepChecksFailure, all_checks, step_checks
from pytest_tenantdb.checks.context import CheckContext
from pytest_tenantdb.checks.lockfile import check_history
from pytest_tenantdb.checks.step_coverage import StepCoverage, measured_files, parse_setting
from pytest_tenantdb.errors import (
    CheckFailure,
    ConfigError,
    LockMissing,
    SeedingError,
    TemplateBuildError,
    TenantDBError,
)
from pytest_tenantdb.queries import QueryFolder
from pytest_tenantdb.settings import Settings

if TYPE_CHECKING:
    from hypothesis import settings as HypothesisSettings

    from pytest_tenantdb.factory import TenantDBFactory

RUN_KEY = pytest.StashKey["ChecksRun"]()
PROFILE_CI = "tenantdb-ci"
PROFILE_DEV = "tenantdb-dev"
REPLAY_HEADER = "-- tenantdb replay"


def schema_snapshot(spec: str, rootdir: Path, where: str) -> Callable[[sqlite3.Connection], None]:
    """``schema.sql`` (run as a script) or ``module:function`` (called with a connection);
    ``where`` names the setting in errors (``settings.origin``)."""
    if re.fullmatch(r"[\w.]+:\w+", spec):
        module_name, _, attr = spec.partition(":")
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{where}: cannot import it ({exc})") from exc
        return fn  # type: ignore[no-any-return]
    path = Path(spec) if Path(spec).is_absolute() else rootdir / spec
    try:
        script = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read {path} ({exc})") from exc

    def create(conn: sqlite3.Connection) -> None:
        conn.executescript(script)

    return create


def build_context(factory: TenantDBFactory, settings: Settings) -> CheckContext:
    for module in settings.app_modules.replace(",", " ").split():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"{settings.origin('app_modules')}: cannot import {module!r} ({exc})") from exc
    migrations = factory.migrations(settings.migrations)
    minimum = parse_setting(settings.step_coverage)
    app_code = [fn for fns in REGISTRY.values() for fn in fns]
    return CheckContext(
        step_coverage=None
        if minimum is None
        else StepCoverage(measured_files(migrations, app_code), minimum),
        templates=factory.templates(settings),
        queries=QueryFolder(settings.queries) if settings.queries else None,
        schema_snapshot=schema_snapshot(settings.schema, settings.root, settings.origin("schema"))
        if settings.schema
        else None,
        snapshot_origin=settings.schema,
        failures_dir=settings.failures,
        max_rows=settings.max_rows,
        window=settings.window,
        schema_compare=settings.schema_compare,
        app_code={v: list(fns) for v, fns in REGISTRY.items()},
        recorded=load_recorded(settings.recorded) if settings.recorded else {},
        lint_settings=settings,
    )


def hypothesis_settings(config: pytest.Config, examples: int) -> HypothesisSettings:
    """The tenantdb profile (CI: more examples, derandomized; local: fast), unless the user chose one."""
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    cache = getattr(config, "cache", None)
    database = DirectoryBasedExampleDatabase(str(cache.mkdir("tenantdb") / "hypothesis")) if cache else None
    quiet = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    # no "explain" phase: it reruns a failing step hundreds of times to say which lines only
    # failing tenants ran, which the failure message already says better (statement, rows)
    phases = [phase for phase in Phase if phase is not Phase.explain]
    settings.register_profile(
        PROFILE_CI,
        max_examples=100,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=quiet,
        phases=phases,
    )
    settings.register_profile(
        PROFILE_DEV,
        max_examples=25,
        deadline=None,
        database=database,
        suppress_health_check=quiet,
        phases=phases,
    )
    chosen = config.getoption("hypothesis_profile", default=None)
    if chosen:
        base = settings.get_profile(chosen)  # the user's own settings win
    else:
        base = settings.get_profile(PROFILE_CI if os.environ.get("CI") else PROFILE_DEV)
    if examples:
        base = settings(base, max_examples=examples)
    return base


def failure_path(ctx: CheckContext, check: Check) -> Path | None:
    """Where the minimal failing tenant of ``check`` is saved (``tenantdb_failures``)."""
    if ctx.failures_dir is None or check.body is None:
        return None
    return ctx.failures_dir / (re.sub(r"[^\w.-]+", "_", check.id) + ".sql")


def _save_failure(
    ctx: CheckContext, check: Check, conn: sqlite3.Connection, params: dict[str, object]
) -> None:
    path = failure_path(ctx, check)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        REPLAY_HEADER,
        f"-- check: {check.id}",
        f"-- version: {check.version}",
        f"-- params: {json.dumps(params, default=repr)}",
        f"PRAGMA user_version = {int(conn.execute('PRAGMA user_version').fetchone()[0])};",
        *conn.iterdump(),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


SLOW_ITEM_SECONDS = 10.0  # an item running longer says what it is doing, every as many seconds


class _Progress:
    """Counts the tenants a check has drawn and, once it runs long, says so now and then."""

    def __init__(self, check: Check, say: Callable[[str], None] | None, limit: int | None) -> None:
        self.check, self.say, self.limit = check, say, limit
        self.started = self.last = time.monotonic()
        self.examples = 0

    def tick(self) -> None:
        self.examples += 1
        now = time.monotonic()
        if self.say is not None and now - self.last >= SLOW_ITEM_SECONDS:
            self.last = now
            budget = f" of at most {self.limit}" if self.limit else ""
            self.say(
                f"tenantdb::{self.check.id}: {now - self.started:.0f} s, {self.examples} drawn tenants{budget} "
                f"so far ({self.check.kind.replace('+', ', ')} check{'s' if '+' in self.check.kind else ''} "
                f"from version {self.check.version})"
            )


def run_check(
    ctx: CheckContext,
    check: Check,
    hsettings: HypothesisSettings,
    say: Callable[[str], None] | None = None,
    saved_as: Mapping[str, Check] | None = None,
) -> None:
    """Run one check over hypothesis-drawn tenants; on failure save the minimal one (as the
    check ``saved_as`` names for the failure's kind, when one run serves several checks).
    ``say`` reports progress when it runs longer than ``SLOW_ITEM_SECONDS``."""
    if check.run_once is not None:
        check.run_once(ctx)
        return
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pytest_tenantdb.strategies import tenant_data

    assert check.version is not None and check.body is not None
    version, body = check.version, check.body
    params = st.fixed_dictionaries({name: _param_values(name) for name in check.params})
    progress = _Progress(check, say, hsettings.max_examples)

    def check_tenant(data: Any, params: dict[str, object]) -> None:
        progress.tick()
        conn = ctx.fresh(version)
        data.apply(conn)
        try:
            body(ctx, conn, params)  # leaves conn as it is: the tenant saved if the check fails
        except CheckFailure as exc:
            # the last one saved is the minimal one
            for kind in exc.check.split("+"):
                _save_failure(ctx, (saved_as or {}).get(kind, check), conn, params)
            raise
        finally:
            conn.close()

    try:
        # a step's checks need rows only in the tables the step can reach
        only = ctx.focus(check.aim) if check.aim is not None else None
        data = tenant_data(ctx.schema(version), max_rows=ctx.max_rows, tables=only)
    except SeedingError as exc:  # reported as not run, never as passed on empty tables
        pytest.skip(f"not run: {exc}")
    if check.aim is not None:  # at the edge of what the step adds: duplicates, NULLs, values outside
        from pytest_tenantdb.checks.aim import aimed

        data = aimed(data, ctx.schema(version), ctx.schema(check.aim))
    if hsettings.database is not None:  # every check shares check_tenant's source: one key space each
        hsettings = settings(hsettings, database=_keyed_database()(hsettings.database, check.id))
    test = hsettings(given(data=data, params=params)(check_tenant))
    test()


def run_step_checks(
    ctx: CheckContext,
    checks: list[Check],
    hsettings: HypothesisSettings,
    say: Callable[[str], None] | None = None,
) -> dict[str, BaseException | None]:
    """Run the checks of one step (upgrade, data_kept, round_trip) over the same drawn tenants,
    in one hypothesis run; the outcome of each by its kind (None: passed). Hypothesis tells
    distinct failures apart and shrinks each, so each check still gets its own minimal tenant."""
    from hypothesis import settings

    first = checks[0]
    assert first.aim is not None and first.version is not None
    step = ctx.migrations.step(first.aim)
    kinds = [c.kind for c in checks]
    together = Check(first.id, "+".join(kinds), first.version, step_checks(step, kinds), aim=first.aim)
    outcome: dict[str, BaseException | None] = dict.fromkeys(kinds)

    def record(exc: BaseException) -> None:
        from hypothesis.errors import FlakyFailure

        if isinstance(exc, BaseExceptionGroup) and not isinstance(exc, FlakyFailure):
            for part in exc.exceptions:  # hypothesis found several distinct failures
                record(part)
            return
        if isinstance(exc, StepChecksFailure):  # several failed on one tenant: each its own
            for kind, part in exc.parts.items():
                for note in getattr(exc, "__notes__", []):
                    part.add_note(note)
                outcome[kind] = part
            return
        leaves = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
        named = {k for e in leaves for k in getattr(e, "check", "").split("+")} & set(kinds)
        for kind in named or kinds:  # an error that is not a check's failure is every check's
            outcome[kind] = exc

    try:
        run_check(
            ctx, together, settings(hsettings, report_multiple_bugs=True), say, {c.kind: c for c in checks}
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # pytest.skip is a BaseException too
        record(exc)
    return outcome


@functools.cache
def _keyed_database() -> Any:
    """The class, made on first use (hypothesis is imported lazily)."""
    from hypothesis.database import ExampleDatabase

    class KeyedDatabase(ExampleDatabase):
        """Hypothesis' example database, each check under its own keys: the saved examples of
        one check are replayed for that check only (through the public database API)."""

        def __init__(self, inner: ExampleDatabase, name: str) -> None:
            super().__init__()
            self.inner, self.prefix = inner, hashlib.sha256(name.encode()).digest()[:8]

        def save(self, key: bytes, value: bytes) -> None:
            self.inner.save(self.prefix + key, value)

        def fetch(self, key: bytes) -> Any:
            return self.inner.fetch(self.prefix + key)

        def delete(self, key: bytes, value: bytes) -> None:
            self.inner.delete(self.prefix + key, value)

        def move(self, src: bytes, dest: bytes, value: bytes) -> None:
            self.inner.move(self.prefix + src, self.prefix + dest, value)

    return KeyedDatabase


def _param_values(name: str) -> Any:
    from hypothesis import strategies as st

    if name == "id" or name.endswith("_id"):
        return st.one_of(st.integers(0, 8), st.none())
    return st.one_of(st.text(max_size=12), st.integers(-5, 5), st.none())


def load_replay(ctx: CheckContext, file: Path) -> tuple[Check, str, dict[str, object]]:
    """The check a saved failing tenant failed, the tenant's SQL and the parameters it used."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--tenantdb-replay {file}: cannot read it ({exc})") from exc
    header = dict(re.findall(r"^-- (check|version|params): (.*)$", text, re.MULTILINE))
    if not text.startswith(REPLAY_HEADER) or "check" not in header:
        raise ConfigError(
            f"--tenantdb-replay {file}: not a tenantdb failure file (no '{REPLAY_HEADER}' header)"
        )
    check = {c.id: c for c in all_checks(ctx, None)}.get(header["check"])
    if check is None or check.body is None:
        raise ConfigError(
            f"--tenantdb-replay {file}: check {header['check']!r} does not exist in this migration set any more"
        )
    return check, text, json.loads(header.get("params", "{}"))


def replay(ctx: CheckContext, check: Check, text: str, params: dict[str, object]) -> None:
    """Rerun ``check`` on exactly the saved tenant, once, without hypothesis."""
    assert check.body is not None
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(text)
    check.body(ctx, conn, params)


@functools.cache
def _code_digest() -> str:
    """Hash of pytest-tenantdb's own source: a changed check never reuses a cached pass."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _passed_marker(
    config: pytest.Config, ctx: CheckContext, check: Check, hsettings: HypothesisSettings
) -> Path | None:
    """Where a pass of ``check`` is remembered across runs: the checks of a step depend only on
    the steps up to it (``prefix_hash``), the drawing settings and this package's code, so a pull
    request that adds a step re-runs only the checks of that step and of the history's end
    (every_path, no_drift, old_code). None when not cached (other kinds, no pytest cache)."""
    cache = getattr(config, "cache", None)
    if cache is None or check.kind not in STEP_KINDS or check.aim is None:
        return None
    if ctx.step_coverage is not None:
        return None  # measuring what the tenants reach needs the tenants drawn
    import hypothesis

    parts = [
        _code_digest(),
        ctx.migrations.prefix_hash(check.aim),
        check.id,
        f"{hsettings.max_examples}:{hsettings.derandomize}:{hypothesis.__version__}:{sqlite3.sqlite_version}",
        f"{ctx.max_rows}:{ctx.schema_compare}:{type(ctx.templates.store).__name__}",
    ]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
    return Path(cache.mkdir("tenantdb")) / "passed" / key


class ChecksRun:
    """The built-in checks of one pytest run: their context (built once, lazily), hypothesis
    settings, and what items share (one tenant run serves a step's three checks; a step whose
    template cannot be built fails once). One per session, kept in ``config.stash``."""

    def __init__(
        self,
        *,
        context_factory: Callable[[], CheckContext],
        lock: Path | None,
        update_lock: bool,
        hsettings: Callable[[], HypothesisSettings],
        fallback_file: Path,
        root: Path,
    ) -> None:
        self.context_factory = context_factory
        self.root = root.resolve()
        self.lock = lock
        self.update_lock = update_lock
        self.hsettings = hsettings
        self.fallback_file = fallback_file
        self._context: CheckContext | None = None
        self.broken_steps: dict[str, str] = {}  # step -> the item that reported it broken
        self.step_outcomes: dict[int, dict[str, BaseException | None]] = {}  # version -> kind -> outcome

    @functools.cached_property
    def hypothesis_settings(self) -> HypothesisSettings:
        """Built once for the run (profiles registered, example database opened)."""
        return self.hsettings()

    @property
    def context(self) -> CheckContext:
        if self._context is None:
            self._context = self.context_factory()
        return self._context

    @functools.cached_property
    def checks_by_file(self) -> dict[Path, list[Check]]:
        """Each check at home in a migration file: a step's checks in the step's file, the
        checks of the history's end (every_path, no_drift, old_code, history) in the head
        step's file; checks of steps without a file of their own in the project (an installed
        package's migrations) in ``fallback_file``, the project's configuration file, so their
        node ids can still be pasted (``pyproject.toml::0010_v3.2.0.a::upgrade``)."""
        ctx = self.context
        history = None
        if self.lock is not None:
            lock, update = self.lock, self.update_lock
            history = lambda c: _history(c, lock, update)  # noqa: E731
        steps = {step.label: step for step in ctx.migrations}
        head = ctx.migrations[-1] if len(ctx.migrations) else None
        files: dict[Path, list[Check]] = {}
        for check in all_checks(ctx, history):
            step = steps.get(check.id.split("::", 1)[0], head)
            path = getattr(step, "path", None)
            inside = isinstance(path, Path) and path.is_file() and path.resolve().is_relative_to(self.root)
            home = path.resolve() if inside and isinstance(path, Path) else self.fallback_file
            files.setdefault(home, []).append(check)
        return files

    def step_outcome(
        self, check: Check, say: Callable[[str], None], items: list[pytest.Item]
    ) -> BaseException | None:
        """The outcome of step check ``check``, from one run of all its step's checks selected in
        this session (``items``) that have not passed in an earlier run with the same inputs."""
        assert check.aim is not None
        outcomes = self.step_outcomes.get(check.aim, {})
        if check.kind not in outcomes:
            selected = [i.check for i in items if isinstance(i, CheckItem)]
            config = next(i.config for i in items)
            todo = [
                c
                for c in selected
                if c.aim == check.aim
                and c.kind in STEP_KINDS
                and c.kind not in outcomes
                and not _is_cached(_passed_marker(config, self.context, c, self.hypothesis_settings))
            ]
            todo = [check, *(c for c in todo if c is not check)]  # the one asked for first
            outcomes.update(run_step_checks(self.context, todo, self.hypothesis_settings, say))
            self.step_outcomes[check.aim] = outcomes
        return outcomes[check.kind]


class MigrationFile(pytest.File):
    """A migration step's file as pytest sees it: its items are the step's built-in checks
    (``migrations/0004_split_name.sql::0004_split_name::upgrade``), so ``pytest migrations/``
    runs them and a pasted node id runs one. ``--tenantdb-replay`` makes one for the saved file."""

    def __init__(
        self, *, checks: list[Check], replay: tuple[str, dict[str, object]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.checks = checks
        self.replay = replay

    def collect(self) -> Iterator[CheckItem | CheckGroup]:
        named = [
            ((f"replay::{c.id}" if self.replay is not None else c.id).split("::"), c) for c in self.checks
        ]
        yield from _nodes(self, named, self.replay)


class CheckGroup(pytest.Collector):
    """A level of a check's id (``0004_split_name`` in ``...::0004_split_name::upgrade``):
    pytest matches a pasted node id one ``::`` part at a time, so each part is a node."""

    def __init__(
        self,
        *,
        named: list[tuple[list[str], Check]],
        replay: tuple[str, dict[str, object]] | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.named = named
        self.replay = replay

    def collect(self) -> Iterator[CheckItem | CheckGroup]:
        yield from _nodes(self, self.named, self.replay)


def _nodes(
    parent: pytest.Collector,
    named: list[tuple[list[str], Check]],
    replay: tuple[str, dict[str, object]] | None,
) -> Iterator[CheckItem | CheckGroup]:
    """Children of ``parent``: an item for each one-part name, a group for each first part of
    longer names, in the order the checks come."""
    groups: dict[str, list[tuple[list[str], Check]]] = {}
    order: list[tuple[str, Check | None]] = []
    for parts, check in named:
        if len(parts) == 1:
            order.append((parts[0], check))
        else:
            if parts[0] not in groups:
                order.append((parts[0], None))
            groups.setdefault(parts[0], []).append((parts[1:], check))
    for name, one in order:
        if one is not None:
            yield CheckItem.from_parent(parent, name=name, check=one, replay=replay)
        else:
            yield CheckGroup.from_parent(parent, name=name, named=groups[name], replay=replay)


def _without_params(note: str) -> str:
    """Hypothesis' falsifying example less its ``params={...}`` (the last argument): every drawn
    parameter of every query is a wall; the failure message shows the values the failing
    queries ran with."""
    return re.sub(r"params=\{.*\}(?=,?\s*\)\s*$)", "params={...}", note, flags=re.DOTALL)


def _forget_failure(ctx: CheckContext, check: Check) -> None:
    """A check that passes now has no failing tenant: its saved one (ours: it has our header)
    would only send someone to replay a failure that is gone."""
    saved = failure_path(ctx, check)
    if saved is None or not saved.is_file():
        return
    try:
        with saved.open("rb") as head:
            ours = head.read(len(REPLAY_HEADER)) == REPLAY_HEADER.encode()
        if ours:
            saved.unlink()
    except OSError:
        pass  # a failure file we cannot remove is only stale, never wrong


def _is_cached(marker: Path | None) -> bool:
    return marker is not None and marker.exists()


def _history(ctx: CheckContext, lock: Path, update: bool) -> None:
    """A missing lock skips ``history`` on a laptop (steps may still be written) and fails it
    under ``CI``, where a gate that passes forever without a lock would be no gate."""
    try:
        check_history(lock, ctx.migrations, update)
    except LockMissing as exc:
        if os.environ.get("CI"):
            raise CheckFailure(f"history: {exc}") from None
        pytest.skip(f"history: {exc}")


class CheckItem(pytest.Item):
    """One built-in check, run as a test."""

    def __init__(
        self, *, check: Check, replay: tuple[str, dict[str, object]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.replay = replay

    @property
    def run(self) -> ChecksRun:
        return self.config.stash[RUN_KEY]

    def runtest(self) -> None:
        parent = self.run
        if self.replay is not None:
            replay(parent.context, self.check, *self.replay)
            return
        if parent.context.step_coverage is not None:  # measured from the first check to the end
            parent.context.step_coverage.start()
        passed = _passed_marker(self.config, parent.context, self.check, parent.hypothesis_settings)
        if _is_cached(passed):
            self.user_properties.append(("tenantdb", "passed in an earlier run with the same inputs"))
            return
        try:
            if self.check.kind in STEP_KINDS and self.check.aim is not None:
                failed = parent.step_outcome(self.check, self._say, self.session.items)
                if failed is not None:
                    raise failed
            else:
                run_check(parent.context, self.check, parent.hypothesis_settings, self._say)
            if passed is not None:
                passed.parent.mkdir(parents=True, exist_ok=True)
                passed.touch()
            _forget_failure(parent.context, self.check)
        except TemplateBuildError as exc:
            # one broken step fails once, at the first item that needs it; the others point there
            root = str(getattr(exc.__cause__, "step", "") or exc)
            first = parent.broken_steps.setdefault(root, self.nodeid)
            if first != self.nodeid:
                pytest.skip(f"needs a template that step {root} cannot build: see {first}")
            raise

    def _say(self, line: str) -> None:
        """A line on the terminal now, past pytest's output capture (the item is still running)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or capture is None:
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(line)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, TenantDBError):
            text = str(excinfo.value)
            notes = [
                _without_params(n)
                for n in getattr(excinfo.value, "__notes__", [])
                if "Falsifying" in n or "data=" in n
            ]
            if notes:
                text += "\n\nminimal failing tenant (hypothesis):\n" + "\n".join(notes)
            saved = failure_path(self.run.context, self.check)
            if self.replay is None and saved is not None and saved.exists():
                text += f"\n\nsaved as {saved}; rerun it with: pytest --tenantdb-replay {saved}"
            return text
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.check.id
