"""Rollout simulation: the app code of versions N and N+1 runs against tenants while the fleet
migrates, the way a release rolls out.

Three modes:

- ``eager``: every tenant is migrated, one at a time, while the old app serves; then the code
  is switched and only the new app serves;
- ``batches``: tenants are migrated ``batch`` at a time; between batches both app versions
  serve (the old app any tenant, the new app the tenants already migrated, or any tenant with
  ``new_code="any"``); after the last batch the old app is retired;
- ``lazy``: nothing is migrated up front; a tenant is migrated on the first request of the new
  app (on-login migration); the old app serves until it is retired, tenants the new app never
  reached stay behind.

An *interleaving* (a tuple of :class:`Request`, :class:`Migrate` and :class:`Switch` events)
says which tenant gets a request of which app version, with which parameters, between which
migration steps. It is drawn by the same code from a seed (:meth:`Rollout.run`, replayable) or
by hypothesis (:func:`interleavings`, :meth:`Rollout.check`: a failing interleaving is shrunk
and printed). Each request runs every piece of that app version's code (queries folder,
``@app_code`` functions, recorded queries), each in a savepoint that is rolled back, so a
tenant's data stays the data it was built with. A piece that fails is a rollout failure when
the same piece with the same parameters works on the same tenant's data at the app's own schema
version (as the ``old_code`` check decides); errors there too (a parameter that makes no sense)
are counted as ``ignored``.

Nothing heavy is imported here: hypothesis only inside :func:`interleavings` and
:meth:`Rollout.check`.
"""

from __future__ import annotations

import importlib
import random
import sqlite3
import string
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_tenantdb import database, recording
from pytest_tenantdb.checks.appcode import AppFunction, load_recorded
from pytest_tenantdb.checks.builtin import _attempt, query_params
from pytest_tenantdb.errors import ConfigError, QueryParameterError, RolloutFailure
from pytest_tenantdb.fleet.migrator import migrate_many, migrate_tenant
from pytest_tenantdb.fleet.report import _NUMBER, GROUP_IDS, REPR_SIZE, TenantOutcome, group_failures
from pytest_tenantdb.lint.placeholders import binding
from pytest_tenantdb.queries import QueryFolder

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from pytest_tenantdb.fleet.fleet import Fleet, FleetBuilder, VersionMix
    from pytest_tenantdb.fleet.templates import TemplateCache
    from pytest_tenantdb.migrations import MigrationSet
    from pytest_tenantdb.settings import Settings
    from pytest_tenantdb.versioning import VersionStore

MODES = ("eager", "batches", "lazy")
NEW_CODE = ("migrated", "any")
#: At most this many requests are drawn between two migration steps (and after the last one).
REQUESTS = 3


# -- app code --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppPiece:
    """One piece of app code of one app version: a query (queries folder or recorded) or a
    registered function. ``location`` is its file:line (or the recorded file)."""

    kind: str  # "query", "function" or "recorded"
    name: str
    location: str
    app: int
    sql: str | None = None
    fn: AppFunction | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name} ({self.location})"

    def runner(self, params: Mapping[str, object]) -> Callable[[sqlite3.Connection], object]:
        """How to run it with ``params`` (bound as the ``old_code`` check binds them)."""
        if self.fn is not None:
            return self.fn
        assert self.sql is not None
        sql, bound = self.sql, binding(self.sql, params)
        return lambda conn: conn.execute(sql, bound).fetchall()


def _newest(by_version: Mapping[int, Sequence[Any]], version: int) -> Sequence[Any]:
    """The set registered at the newest version <= ``version`` (none: nothing)."""
    usable = [v for v in by_version if v <= version]
    return by_version[max(usable)] if usable else ()


def _shown_path(path: Path) -> str:
    """``path`` relative to the current directory when it lies under it (as pytest shows paths)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


def app_pieces(
    version: int,
    queries: QueryFolder | None,
    functions: Mapping[int, Sequence[AppFunction]],
    recorded: Mapping[int, Sequence[str]],
    recorded_file: str = "recorded",
) -> list[AppPiece]:
    """The code app version ``version`` runs: from each source the newest set <= ``version``
    (the queries folder's rule, applied to registered functions and recorded queries too).

    A query Python's ``sqlite3`` cannot bind (named and bare ``?`` mixed) raises
    :class:`QueryParameterError` saying which one, rather than being left out unchecked."""
    pieces: list[AppPiece] = []
    for query in queries.for_version(version) if queries is not None else []:
        pieces.append(
            AppPiece("query", query.name, f"{_shown_path(query.path)}:{query.line}", version, sql=query.sql)
        )
    for fn in _newest(functions, version):
        code = getattr(fn, "__code__", None)
        where = f"{_shown_path(Path(code.co_filename))}:{code.co_firstlineno}" if code is not None else "?"
        pieces.append(AppPiece("function", f"{fn.__module__}.{fn.__qualname__}", where, version, fn=fn))
    for n, sql in enumerate(_newest(recorded, version), start=1):
        pieces.append(AppPiece("recorded", f"statement {n}", recorded_file, version, sql=sql))
    for piece in pieces:
        if piece.sql is not None:
            try:
                binding(piece.sql)
            except QueryParameterError as exc:
                raise QueryParameterError(f"{piece.label} cannot be run in a rollout: {exc}") from None
    return pieces


# -- interleavings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A request of app version ``app`` on ``tenant``: every piece of that version's code runs,
    with ``params`` (a value per parameter name, as the ``old_code`` check draws them)."""

    tenant: str
    app: int
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Migrate:
    """The rollout migrates ``tenants`` to the new version (one batch; one tenant when eager)."""

    tenants: tuple[str, ...]


@dataclass(frozen=True)
class Switch:
    """The old app is retired: from here on only the new app serves."""


Event = Request | Migrate | Switch


class _Chooser(Protocol):
    """Where an interleaving's choices come from: a seeded ``random.Random`` or hypothesis."""

    def integer(self, low: int, high: int) -> int: ...

    def choice(self, items: Sequence[Any]) -> Any: ...

    def permutation(self, items: Sequence[str]) -> list[str]: ...

    def value(self, name: str) -> object: ...


class _Seeded:
    """Choices from ``random.Random(seed)``: the same seed, the same interleaving."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def choice(self, items: Sequence[Any]) -> Any:
        return items[self.rng.randrange(len(items))]

    def permutation(self, items: Sequence[str]) -> list[str]:
        shuffled = list(items)
        self.rng.shuffle(shuffled)
        return shuffled

    def value(self, name: str) -> object:
        """As the ``old_code`` check draws a parameter: small ids (or NULL) for ``id`` / ``*_id``,
        short text, small ints or NULL for the others."""
        if name == "id" or name.endswith("_id"):
            return self.choice([*range(9), None])
        kind = self.rng.randrange(3)
        if kind == 0:
            return "".join(self.rng.choices(string.ascii_letters + " ", k=self.rng.randint(0, 12)))
        return self.rng.randint(-5, 5) if kind == 1 else None


class _Drawn:
    """Choices drawn by hypothesis (shrinkable)."""

    def __init__(self, draw: Any) -> None:
        from hypothesis import strategies as st

        self.draw, self.st = draw, st

    def integer(self, low: int, high: int) -> int:
        return int(self.draw(self.st.integers(low, high)))

    def choice(self, items: Sequence[Any]) -> Any:
        return self.draw(self.st.sampled_from(items))

    def permutation(self, items: Sequence[str]) -> list[str]:
        return list(self.draw(self.st.permutations(items)))

    def value(self, name: str) -> object:
        from pytest_tenantdb.checks.items import _param_values

        return self.draw(_param_values(name))


@dataclass(frozen=True)
class Plan:
    """What an interleaving is drawn over: the tenants, which of them the rollout migrates, the
    two app versions and the parameter names each version's code uses."""

    tenants: tuple[str, ...]
    pending: tuple[str, ...]
    old: int
    new: int
    params: Mapping[int, tuple[str, ...]]
    mode: str = "batches"
    batch: int = 1
    requests: int = REQUESTS
    new_code: str = "migrated"

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"rollout mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.new_code not in NEW_CODE:
            raise ConfigError(f"new_code={self.new_code!r}: choose 'migrated' or 'any'")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise ConfigError(f"batch must be an int >= 1 (tenants migrated at a time), got {self.batch!r}")
        if isinstance(self.requests, bool) or not isinstance(self.requests, int) or self.requests < 0:
            raise ConfigError(
                f"requests must be an int >= 0 (requests drawn between steps), got {self.requests!r}"
            )
        if not self.tenants:
            raise ConfigError("a rollout needs at least one tenant: build the fleet with count >= 1")


def draw_interleaving(plan: Plan, choose: _Chooser) -> tuple[Event, ...]:
    """One interleaving of ``plan``'s mode, every choice asked of ``choose``."""
    events: list[Event] = []
    migrated = {t for t in plan.tenants if t not in plan.pending}

    def requests(apps: Sequence[int], most: int) -> None:
        for _ in range(choose.integer(0, most)):
            app = choose.choice(apps)
            served = plan.tenants
            if app == plan.new and plan.mode != "lazy" and plan.new_code == "migrated":
                served = tuple(t for t in plan.tenants if t in migrated)
                if not served:
                    app, served = plan.old, plan.tenants
            tenant = choose.choice(served)
            values = {name: choose.value(name) for name in plan.params.get(app, ())}
            events.append(Request(tenant, app, values))

    if plan.mode == "lazy":
        requests((plan.old, plan.new), plan.requests * (len(plan.tenants) + 1))
    else:
        order = choose.permutation(plan.pending) if plan.pending else []
        size = 1 if plan.mode == "eager" else plan.batch
        during = (plan.old,) if plan.mode == "eager" else (plan.old, plan.new)
        requests(during, plan.requests)
        for start in range(0, len(order), size):
            chunk = tuple(order[start : start + size])
            events.append(Migrate(chunk))
            migrated.update(chunk)
            requests(during, plan.requests)
    events.append(Switch())
    requests((plan.new,), plan.requests)
    return tuple(events)


def interleavings(
    tenants: Sequence[str],
    *,
    old: int,
    new: int,
    pending: Sequence[str] | None = None,
    mode: str = "batches",
    batch: int = 1,
    requests: int = REQUESTS,
    new_code: str = "migrated",
    params: Mapping[int, Sequence[str]] | None = None,
) -> SearchStrategy[tuple[Event, ...]]:
    """A hypothesis strategy of rollout interleavings over ``tenants`` (``pending``: those the
    rollout migrates, default all) from app version ``old`` to ``new``; ``params`` gives the
    parameter names of each app version's code (a value is drawn for each, per request).

    >>> interleavings(["t1", "t2"], old=11, new=12, mode="batches", batch=1)  # doctest: +SKIP
    """
    from hypothesis import strategies as st

    plan = Plan(
        tuple(tenants),
        tuple(tenants if pending is None else pending),
        old,
        new,
        {v: tuple(k) for v, k in (params or {}).items()},
        mode,
        batch,
        requests,
        new_code,
    )
    plan.validate()

    @st.composite
    def draw(draw_fn: st.DrawFn) -> tuple[Event, ...]:
        return draw_interleaving(plan, _Drawn(draw_fn))

    return draw()


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryFailure:
    """A piece of app code that failed during the rollout: which (``piece``), on which tenant,
    at which schema version, under which app version, at which event of the interleaving."""

    piece: AppPiece
    tenant: str
    schema: int
    app: int
    error: str
    event: int
    params: Mapping[str, object] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"{self.piece.label}: app {self.app} on {self.tenant} at schema {self.schema}: {self.error}"
            f" (event {self.event})"
        )


@dataclass(frozen=True)
class QueryFailureGroup:
    """The failures of one piece of app code with the same error (tenant ids, numbers aside)."""

    piece: AppPiece
    error: str
    failures: tuple[QueryFailure, ...]

    @property
    def count(self) -> int:
        return len(self.failures)

    @property
    def tenants(self) -> list[str]:
        return list(dict.fromkeys(f.tenant for f in self.failures))

    @property
    def schemas(self) -> list[int]:
        return sorted({f.schema for f in self.failures})

    @property
    def apps(self) -> list[int]:
        return sorted({f.app for f in self.failures})

    def headline(self, location: bool = True) -> str:
        """``query x (file:7) under app 11 at schema 12: <error> -- 5 times, 3 tenants: a, b, c``."""
        tenants = self.tenants
        names = ", ".join(tenants[:GROUP_IDS]) + (
            f", ... (+{len(tenants) - GROUP_IDS})" if len(tenants) > GROUP_IDS else ""
        )
        apps = ", ".join(map(str, self.apps))
        schemas = ", ".join(map(str, self.schemas))
        what = self.piece.label if location else f"{self.piece.kind} {self.piece.name}"
        return (
            f"{what} under app {apps} at schema {schemas}: {self.error} -- "
            f"{self.count} time{'s' if self.count != 1 else ''}, {len(tenants)} "
            f"tenant{'s' if len(tenants) != 1 else ''}: {names}"
        )

    def describe(self) -> str:
        sql = f"\n    {' '.join(self.piece.sql.split())}" if self.piece.sql else ""
        return self.headline() + sql


def group_query_failures(failures: Sequence[QueryFailure]) -> list[QueryFailureGroup]:
    """Failures grouped by (piece of code, error), the error's tenant ids and numbers left out
    as :func:`~pytest_tenantdb.fleet.report.group_failures` does for a fleet; largest first."""
    groups: dict[tuple[str, str], list[QueryFailure]] = {}
    for failure in failures:
        error = _NUMBER.sub("<n>", failure.error.replace(failure.tenant, "<tenant>"))
        groups.setdefault((failure.piece.label, error), []).append(failure)
    made = [
        QueryFailureGroup(
            members[0].piece, members[0].error.replace(members[0].tenant, "<tenant>"), tuple(members)
        )
        for members in groups.values()
    ]
    return sorted(made, key=lambda g: -g.count)


@dataclass(frozen=True)
class RolloutResult:
    """What one simulated rollout did: the interleaving, every query that failed, the
    migrations it ran (``TenantOutcome``s) and where each tenant ended."""

    mode: str
    old: int
    new: int
    interleaving: tuple[Event, ...]
    failures: tuple[QueryFailure, ...]
    migrations: tuple[TenantOutcome, ...]
    versions: Mapping[str, int]
    requests: int
    ignored: int
    seed: int | None = None
    directory: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and all(o.status != "failed" for o in self.migrations)

    @property
    def pending(self) -> list[str]:
        """Tenants not at the new version when the rollout ended (lazy: never asked for by the
        new app; or their migration failed)."""
        return [t for t, v in self.versions.items() if v != self.new]

    def failure_groups(self) -> list[QueryFailureGroup]:
        return group_query_failures(self.failures)

    def headline(self) -> str:
        seed = f", seed {self.seed}" if self.seed is not None else ""
        failed = sum(o.status == "failed" for o in self.migrations)
        return (
            f"rollout {self.mode} from app {self.old} to {self.new}{seed}: {_n(len(self.versions), 'tenant')}, "
            f"{_n(self.requests, 'request')}, {_n(len(self.failures), 'failed query', 'failed queries')}, "
            f"{_n(len(self.migrations), 'migration')} ({failed} failed), "
            f"{_n(len(self.pending), 'tenant')} not at {self.new}"
        )

    def summary(self, failures: int = 5) -> str:
        lines = [self.headline()]
        groups = self.failure_groups()
        lines += [g.describe() for g in groups[:failures]]
        if len(groups) > failures:
            lines.append(f"... and {len(groups) - failures} more kinds of failed query")
        lines += ["migration " + g.describe() for g in group_failures(list(self.migrations))]
        if not self.ok:
            lines.append("interleaving (replay it with rollout.replay(...)):")
            lines += [f"  {n}: {event!r}" for n, event in enumerate(self.interleaving)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        """Short, for ``assert result.ok, result``: the totals and the first kind of failure."""
        seed = f", seed {self.seed}" if self.seed is not None else ""
        failed = sum(o.status == "failed" for o in self.migrations)
        text = (
            f"<RolloutResult {self.mode} {self.old} -> {self.new}{seed}: {len(self.failures)} failed "
            f"queries, {failed} failed migrations"
        )
        groups = self.failure_groups()
        for group in groups:
            line = "\n" + group.headline(location=False)
            if group is groups[0] and len(text) + len(line) > REPR_SIZE:
                line = line[: max(60, REPR_SIZE - len(text) - 40)] + "..."
            if len(text) + len(line) > REPR_SIZE:
                text += f"\n(+{len(groups) - groups.index(group)} more; print(result) for all)"
                break
            text += line
        return text + ">"

    def raise_on_failure(self) -> None:
        if not self.ok:
            raise RolloutFailure(self.summary(failures=10))


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


# -- the simulation --------------------------------------------------------------------------


class Rollout:
    """A fleet about to roll out from app version ``old`` to ``new``, and the app code of both.

    The fleet's files are never changed: every run works on fresh copies of them."""

    def __init__(
        self,
        fleet: Fleet,
        workdir: Path,
        templates: TemplateCache,
        old: int,
        new: int,
        code: Mapping[int, Sequence[AppPiece]],
        *,
        timeout: float = 5.0,
    ) -> None:
        self.fleet = fleet
        self.workdir = workdir
        self.templates = templates
        self.old = old
        self.new = new
        self.code = {v: list(pieces) for v, pieces in code.items()}
        self.timeout = timeout
        self._runs = 0
        self._references: dict[tuple[str, int], Path] = {}
        behind = [t.id for t in fleet if not old <= t.version <= new]
        if behind:
            raise ConfigError(
                f"tenants {', '.join(behind[:3])} are not between app versions {old} and {new}: build "
                f"the rollout's fleet at versions from {old} to {new}, or pass old= lower"
            )
        if not any(self.code.get(v) for v in (old, new)):
            raise ConfigError(
                f"no app code for app version {old} or {new}: set `queries` (a folder of NNNN.sql), "
                "`app_modules` (functions registered with @app_code) or `recorded` in [tool.tenantdb]"
            )

    @property
    def migrations(self) -> MigrationSet:
        return self.templates.migrations

    @property
    def store(self) -> VersionStore:
        return self.templates.store

    def plan(
        self,
        mode: str = "batches",
        *,
        batch: int | None = None,
        requests: int = REQUESTS,
        new_code: str = "migrated",
    ) -> Plan:
        tenants = tuple(t.id for t in self.fleet)
        pending = tuple(t.id for t in self.fleet if t.version < self.new)
        params = {
            v: query_params([p.sql for p in self.code.get(v, []) if p.sql]) for v in (self.old, self.new)
        }
        if batch is None:
            batch = max(1, len(pending) // 3)
        plan = Plan(tenants, pending, self.old, self.new, params, mode, batch, requests, new_code)
        plan.validate()
        return plan

    def interleavings(self, mode: str = "batches", **options: Any) -> SearchStrategy[tuple[Event, ...]]:
        """The hypothesis strategy of this rollout's interleavings (options as for :meth:`plan`)."""
        plan = self.plan(mode, **options)
        return interleavings(
            plan.tenants,
            old=plan.old,
            new=plan.new,
            pending=plan.pending,
            mode=plan.mode,
            batch=plan.batch,
            requests=plan.requests,
            new_code=plan.new_code,
            params=plan.params,
        )

    def draw(self, mode: str = "batches", seed: int = 0, **options: Any) -> tuple[Event, ...]:
        """The interleaving ``seed`` gives (the same on every run and machine)."""
        return draw_interleaving(self.plan(mode, **options), _Seeded(seed))

    def run(self, mode: str = "batches", seed: int = 0, **options: Any) -> RolloutResult:
        """Simulate the rollout with the interleaving drawn from ``seed``; options: ``batch``
        (tenants per batch, default a third of them), ``requests`` (at most this many requests
        between two steps), ``new_code`` (``"migrated"`` or ``"any"``: which tenants the new app
        serves while batches run)."""
        events = self.draw(mode, seed, **options)
        return self.replay(events, mode=mode, seed=seed)

    def replay(
        self, interleaving: Sequence[Event], *, mode: str = "batches", seed: int | None = None
    ) -> RolloutResult:
        """Run ``interleaving`` (drawn, or copied from a failure's message) on fresh copies of
        the fleet."""
        if mode not in MODES:
            raise ConfigError(f"rollout mode {mode!r} is not one of {', '.join(MODES)}")
        return _Simulation(self, mode, self._fresh()).run(tuple(interleaving), seed)

    def check(self, mode: str = "batches", *, max_examples: int = 25, **options: Any) -> None:
        """Explore interleavings with hypothesis; on a failing one, raise :class:`RolloutFailure`
        for the shrunk interleaving (hypothesis prints it as its falsifying example)."""
        from hypothesis import HealthCheck, Phase, given, settings

        strategy = self.interleavings(mode, **options)

        @settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            phases=[p for p in Phase if p is not Phase.explain],
        )
        @given(interleaving=strategy)
        def rollout(interleaving: tuple[Event, ...]) -> None:
            self.replay(interleaving, mode=mode).raise_on_failure()

        try:
            rollout()
        except RolloutFailure as exc:  # raised here, so that pytest shows the test's own line
            failure = RolloutFailure(str(exc))
            for note in getattr(exc, "__notes__", []):
                failure.add_note(note)
            raise failure from None

    def _fresh(self) -> dict[str, Path]:
        """Copies of the fleet's files for one run."""
        self._runs += 1
        directory = self.workdir / f"run-{self._runs}"
        directory.mkdir(parents=True)
        copies = {}
        for tenant in self.fleet:
            copy = directory / tenant.path.name
            database.copy_file(tenant.path, copy)
            copies[tenant.id] = copy
        return copies

    def reference(self, tenant: str, app: int) -> Path:
        """The tenant's own data at schema ``app`` (its built file, migrated there), where app
        ``app``'s code is known to run; the empty template when the tenant was built past it."""
        key = (tenant, app)
        if key not in self._references:
            source = self.fleet.tenant(tenant)
            directory = self.workdir / "reference"
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{tenant}@{app}.sqlite3"
            database.copy_file(source.path, path)
            if source.version > app or (
                source.version < app
                and migrate_tenant(tenant, path, self.migrations, app, self.store, self.timeout).status
                == "failed"
            ):
                database.copy_file(self.templates.schema_template(app), path)
            self._references[key] = path
        return self._references[key]


class _Simulation:
    """One run of one interleaving on fresh copies of the fleet."""

    def __init__(self, rollout: Rollout, mode: str, paths: dict[str, Path]) -> None:
        self.rollout = rollout
        self.mode = mode
        self.paths = paths
        self.failures: list[QueryFailure] = []
        self.migrations: list[TenantOutcome] = []
        self.requests = 0
        self.ignored = 0
        self.retired = False

    def run(self, events: tuple[Event, ...], seed: int | None) -> RolloutResult:
        r = self.rollout
        for index, event in enumerate(events):
            if isinstance(event, Switch):
                self.retired = True
            elif isinstance(event, Migrate):
                self._migrate(event.tenants)
            else:
                self._request(index, event)
        directory = next(iter(self.paths.values())).parent
        return RolloutResult(
            self.mode,
            r.old,
            r.new,
            events,
            tuple(self.failures),
            tuple(self.migrations),
            {t: self._version(p) for t, p in self.paths.items()},
            self.requests,
            self.ignored,
            seed,
            directory,
        )

    def _version(self, path: Path) -> int:
        with recording.harness(), closing(database.connect(path, timeout=self.rollout.timeout)) as conn:
            return self.rollout.store.read(conn)

    def _migrate(self, tenants: Sequence[str]) -> None:
        r = self.rollout
        unknown = [t for t in tenants if t not in self.paths]
        if unknown:
            raise ConfigError(
                f"the interleaving migrates {unknown[0]!r}, which is not a tenant of this fleet"
            )
        with recording.harness():
            self.migrations += migrate_many(
                [(t, self.paths[t]) for t in tenants], r.migrations, r.new, r.store, 1, r.timeout
            )

    def _request(self, index: int, request: Request) -> None:
        r = self.rollout
        if request.tenant not in self.paths:
            raise ConfigError(
                f"the interleaving sends a request to {request.tenant!r}, not a tenant of this fleet"
            )
        if request.app not in (r.old, r.new):
            raise ConfigError(
                f"the interleaving has a request of app {request.app}; this rollout runs {r.old} and {r.new}"
            )
        if request.app == r.old and self.retired:
            raise ConfigError(f"event {index}: a request of app {r.old} after the Switch that retired it")
        path = self.paths[request.tenant]
        if self.mode == "lazy" and request.app == r.new and self._version(path) < r.new:
            self._migrate([request.tenant])  # on login: the new app migrates the tenant first
            if self.migrations[-1].status == "failed":
                return  # the tenant stays where it was; the failed migration is reported
        self.requests += 1
        pieces = r.code.get(request.app, [])
        with recording.harness(), closing(sqlite3.connect(path, timeout=r.timeout)) as conn:
            schema = r.store.read(conn)
            failed = [(p, e) for p in pieces if (e := _attempt(conn, p.runner(request.params))) is not None]
        if not failed:
            return
        with recording.harness(), closing(sqlite3.connect(r.reference(request.tenant, request.app))) as ref:
            for piece, error in failed:
                if schema != request.app and _attempt(ref, piece.runner(request.params)) is None:
                    self.failures.append(
                        QueryFailure(
                            piece, request.tenant, schema, request.app, error, index, dict(request.params)
                        )
                    )
                else:
                    self.ignored += 1


# -- the fixture's factory -------------------------------------------------------------------


class RolloutFactory:
    """What the ``tenant_rollout`` fixture gives: ``tenant_rollout(count=10, versions=...,
    old="head-1", new="head")`` builds a fleet and returns its :class:`Rollout`."""

    def __init__(self, builder: FleetBuilder, settings: Settings) -> None:
        self.builder = builder
        self.settings = settings
        self._made = 0

    def __call__(
        self,
        count: int = 10,
        versions: VersionMix | None = None,
        *,
        old: int | str | None = None,
        new: int | str = "head",
        seed: int | None = None,
        sizes: Any = None,
        queries: Path | str | None = None,
        functions: Mapping[int, Sequence[AppFunction]] | None = None,
        recorded: Mapping[int, Sequence[str]] | None = None,
    ) -> Rollout:
        """A rollout from ``old`` (default: the version before ``new``) to ``new`` (default head)
        over ``count`` tenants at ``versions`` (default: all at ``old``). App code comes from the
        settings (``queries``, ``app_modules``, ``recorded``) unless given here."""
        migrations = self.builder.migrations
        target = migrations.resolve(new)
        known = (0, *migrations.versions)
        if old is None:
            if target == known[0]:
                raise ConfigError(
                    f"new={new!r} is the empty database: there is no older app version to roll from"
                )
            start = known[known.index(target) - 1]
        else:
            start = migrations.resolve(old)
        if start >= target:
            raise ConfigError(f"old={old!r} (version {start}) must be before new={new!r} (version {target})")
        self._made += 1
        fleet = self.builder.build(
            count,
            versions if versions is not None else {start: 1.0},
            sizes=sizes,
            seed=seed,
            name=f"rollout-{self._made}",
        )
        folder = Path(queries) if queries is not None else self.settings.queries
        code_by_version = self._functions() if functions is None else functions
        recorded_by_version = self._recorded() if recorded is None else recorded
        query_folder = QueryFolder(folder) if folder else None
        code = {
            v: app_pieces(
                v, query_folder, code_by_version, recorded_by_version, str(self.settings.recorded or "")
            )
            for v in (start, target)
        }
        return Rollout(
            fleet,
            self.builder.directory / f"rollout-{self._made}-runs",
            self.builder.templates,
            start,
            target,
            code,
            timeout=self.builder.timeout,
        )

    def _functions(self) -> Mapping[int, Sequence[AppFunction]]:
        from pytest_tenantdb.checks.appcode import REGISTRY

        for module in self.settings.app_modules.replace(",", " ").split():
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ConfigError(
                    f"{self.settings.origin('app_modules')}: cannot import {module!r} ({exc})"
                ) from exc
        return REGISTRY

    def _recorded(self) -> Mapping[int, Sequence[str]]:
        return load_recorded(self.settings.recorded) if self.settings.recorded else {}


__all__ = [
    "MODES",
    "AppPiece",
    "Event",
    "Migrate",
    "QueryFailure",
    "QueryFailureGroup",
    "Request",
    "Rollout",
    "RolloutFactory",
    "RolloutResult",
    "Switch",
    "app_pieces",
    "draw_interleaving",
    "group_query_failures",
    "interleavings",
]
