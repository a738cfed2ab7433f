"""pytest hooks and fixtures. It wires; the work is in ``fleet/``, ``migrations/`` and friends.

Loading this module imports nothing heavy (no sqlglot, faker, hypothesis, not even sqlite3):
everything is imported inside the fixtures that need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_tenantdb.errors import TenantDBError
from pytest_tenantdb.settings import OPTIONS, Settings

if TYPE_CHECKING:
    from collections.abc import Generator

    from pytest_tenantdb.checks.items import ChecksRun
    from pytest_tenantdb.factory import TenantDBFactory
    from pytest_tenantdb.fleet.fleet import Fleet, FleetBuilder, Tenant
    from pytest_tenantdb.fleet.report import FleetReport
    from pytest_tenantdb.fleet.rollout import RolloutFactory
    from pytest_tenantdb.migrations import MigrationSet

REPORT_PROPERTY = "tenantdb_fleet_report"
FACTORY_KEY = pytest.StashKey["TenantDBFactory"]()
RECORDER_KEY = pytest.StashKey[Any]()
CHECKS_KEY = pytest.StashKey[Any]()  # the built-in checks of the run (checks/items.ChecksRun)
SETTINGS_KEY = pytest.StashKey[Settings]()
RUN_KEY_WANTED = pytest.StashKey[bool]()  # whether this run collects them, decided once
HTML_KEY = pytest.StashKey[Any]()  # --tenantdb-report: the run's htmlreport.collect.ReportCollector


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tenantdb", "tenant databases (pytest-tenantdb)")
    for option in (o for o in OPTIONS if o.pytest):
        if not option.flag_takes_value:
            group.addoption(
                option.flag,
                action="store_const",
                const="true",
                default=None,
                help=f"{option.help} (ini: {option.ini})",
            )
        else:
            group.addoption(option.flag, default=None, help=f"{option.help} (ini: {option.ini})")
        parser.addini(option.ini, f"{option.help} (default: {option.default!r})", default=None)
    group.addoption(
        "--tenantdb-replay",
        metavar="FILE",
        default=None,
        help="rerun the check a saved minimal failing tenant (.sql) failed",
    )
    group.addoption(
        "--tenantdb-record",
        metavar="FILE",
        default=None,
        help="record the queries your tests run on tenant databases (literals as ?), to replay them later as old code",
    )
    group.addoption(
        "--tenantdb-report",
        metavar="FILE",
        default=None,
        help="write the fleet migrations of this run as one self-contained HTML page",
    )
    group.addoption(
        "--no-tenantdb-checks",
        action="store_true",
        default=False,
        help="do not collect the built-in checks in this run, whatever tenantdb_checks says",
    )
    group.addoption(
        "--tenantdb-update-lock",
        action="store_true",
        default=False,
        help="write the checksums of all current steps to the lock file (after a release)",
    )


def pytest_configure(config: pytest.Config) -> None:
    record = config.getoption("--tenantdb-record", default=None)
    if record:
        from pytest_tenantdb.checks.appcode import Recorder

        recorder = Recorder()
        recorder.install()
        config.pluginmanager.register(recorder, "tenantdb-recorder")  # xdist: workers hand theirs over
        config.stash[RECORDER_KEY] = (recorder, Path(record))
    html = config.getoption("--tenantdb-report", default=None)
    if html:
        from pytest_tenantdb.htmlreport.collect import ReportCollector

        collector = ReportCollector(Path(config.invocation_params.dir) / html)
        config.pluginmanager.register(collector, "tenantdb-html-report")  # xdist: workers hand theirs over
        config.stash[HTML_KEY] = collector
    if config.pluginmanager.hasplugin("xdist") and _checks_on(config):
        from pytest_tenantdb.checks.xdist import StepSchedulingPlugin

        config.pluginmanager.register(StepSchedulingPlugin(), "tenantdb-xdist")
    config.addinivalue_line(
        "markers",
        "tenantdb(**settings): per-test tenantdb settings, e.g. migrations=, seed=, versioning=, "
        "workers=; and version= for the tenant_db fixture",
    )


def _settings(config: pytest.Config) -> Settings:
    """The run's settings, read once (pyproject.toml, pytest's ini file, the flags)."""
    if SETTINGS_KEY not in config.stash:
        config.stash[SETTINGS_KEY] = Settings.from_config(config)
    return config.stash[SETTINGS_KEY]


def _checks_on(config: pytest.Config) -> bool:
    try:
        return _checks_wanted(config, _settings(config))
    except TenantDBError:
        return False  # reported where the settings are used


def _checks_wanted(config: pytest.Config, settings: Settings) -> bool:
    """Whether this run collects the built-in checks: they are on (``tenantdb_checks``), not
    turned off for the run (``--no-tenantdb-checks``), and pytest was given no paths of its own,
    or one of them holds the migrations (or lies inside them): ``pytest tests/test_x.py::t``
    runs that test, not the whole history's checks; ``pytest migrations/`` runs the checks."""
    if not settings.checks or config.getoption("--no-tenantdb-checks", default=False):
        return False
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return True  # testpaths or the rootdir: everything
    origin = Path(config.invocation_params.dir)
    migrations = settings.migrations if settings.migrations.exists() else Path(config.rootpath)
    target = migrations.resolve()
    inifile = Path(config.inipath).resolve() if config.inipath else None
    for arg in config.args:
        path = (origin / arg.split("::")[0]).resolve()
        if path == target or path in target.parents or target in path.parents:
            return True
        if path == inifile and "::" in arg:  # a pasted id of a check homed in the configuration
            return True
    return False


def pytest_unconfigure(config: pytest.Config) -> None:
    entry = config.stash.get(RECORDER_KEY, None)
    if entry is None:
        return
    recorder, path = entry
    recorder.uninstall()
    if hasattr(config, "workerinput"):
        return  # an xdist worker: its controller writes the file
    from pytest_tenantdb.factory import load_migrations

    try:
        version = load_migrations(_settings(config)).head
    except TenantDBError:
        version = 0
    recorder.save(path, version)


def _factory(config: pytest.Config) -> TenantDBFactory:
    """The session's factory, made once (by the first fixture or by check collection). Its
    scratch folder is this run's own temporary folder, removed when pytest ends; templates are
    kept in pytest's cache (``cache_dir``) between runs."""
    if FACTORY_KEY not in config.stash:
        import shutil
        import tempfile

        from pytest_tenantdb.factory import TenantDBFactory

        settings = _settings(config)
        scratch = Path(tempfile.mkdtemp(prefix="tenantdb-scratch-"))
        config.add_cleanup(lambda: shutil.rmtree(scratch, ignore_errors=True))
        cache = getattr(config, "cache", None)
        cache_dir = (
            Path(cache.mkdir("tenantdb")) / "templates" if cache is not None else scratch / "templates"
        )
        config.stash[FACTORY_KEY] = TenantDBFactory(settings, cache_dir, scratch)
    return config.stash[FACTORY_KEY]


def _checks_run(config: pytest.Config) -> ChecksRun | None:
    """The run's built-in checks when this run collects them (made once), else None."""
    if RUN_KEY_WANTED in config.stash:
        return config.stash.get(CHECKS_KEY, None)
    replay = config.getoption("--tenantdb-replay", default=None)
    try:
        settings = _settings(config)
        wanted = _checks_wanted(config, settings) or bool(replay)
        config.stash[RUN_KEY_WANTED] = wanted
        if not wanted:
            return None
        from pytest_tenantdb.checks.items import RUN_KEY, ChecksRun, build_context, hypothesis_settings

        factory = _factory(config)
        run = ChecksRun(
            context_factory=lambda: build_context(factory, settings),
            lock=settings.lock,
            update_lock=bool(config.getoption("--tenantdb-update-lock", default=False)),
            hsettings=lambda: hypothesis_settings(config, settings.examples),
            fallback_file=(Path(config.inipath) if config.inipath else settings.root / "tenantdb").resolve(),
            root=Path(config.rootpath),
        )
    except TenantDBError as exc:
        raise pytest.UsageError(f"tenantdb: {type(exc).__name__}: {exc}") from None
    config.stash[CHECKS_KEY] = config.stash[RUN_KEY] = run
    return run


def _collected(config: pytest.Config, node: pytest.Collector) -> list[pytest.Item]:
    """The items under ``node``, each collector reported as pytest reports its own."""
    children: list[pytest.Item | pytest.Collector] = list(node.collect())
    config.hook.pytest_collectreport(report=pytest.CollectReport(node.nodeid, "passed", None, children))
    found: list[pytest.Item] = []
    for child in children:
        found += [child] if isinstance(child, pytest.Item) else _collected(config, child)
    return found


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A migration step's file is collected as its built-in checks (``pytest migrations/``)."""
    config = parent.config
    if file_path.suffix not in (".sql", ".py") and file_path != config.inipath:
        return None  # cheap: most files pytest walks past are neither steps nor the configuration
    run = _checks_run(config)
    if run is None or parent.config.getoption("--tenantdb-replay", default=None):
        return None
    try:
        checks = run.checks_by_file.get(file_path.resolve())
    except TenantDBError as exc:
        raise pytest.UsageError(f"tenantdb: {type(exc).__name__}: {exc}") from None
    if not checks:
        return None
    from pytest_tenantdb.checks.items import MigrationFile

    node: pytest.Collector = MigrationFile.from_parent(parent, path=file_path, checks=checks)
    return node


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the built-in checks pytest did not walk past itself (its testpaths do not hold the
    migrations), before -k / -m deselection sees the items; or only the replayed one."""
    run = _checks_run(config)
    if run is None:
        return
    from pytest_tenantdb.checks.items import CheckItem, MigrationFile, load_replay

    replay = config.getoption("--tenantdb-replay", default=None)
    try:
        if replay:
            check, text, params = load_replay(run.context, Path(replay))
            nodes = [
                MigrationFile.from_parent(
                    session, path=Path(replay).resolve(), checks=[check], replay=(text, params)
                )
            ]
            items[:] = []
        elif config.args_source is pytest.Config.ArgsSource.ARGS:
            return  # paths of its own: pytest collected the migration files it walked
        else:
            seen = {item.path for item in items if isinstance(item, CheckItem)}
            nodes = [
                MigrationFile.from_parent(session, path=path, checks=checks)
                for path, checks in run.checks_by_file.items()
                if path not in seen
            ]
        for node in nodes:
            items.extend(_collected(config, node))
    except TenantDBError as exc:
        raise pytest.UsageError(f"tenantdb: {type(exc).__name__}: {exc}") from None


def _marker_settings(request: pytest.FixtureRequest, base: Settings) -> tuple[Settings, dict[str, Any]]:
    """The test's settings after its ``tenantdb`` marker; extra keys (``version``) returned apart."""
    kwargs: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("tenantdb"))):
        kwargs.update(marker.kwargs)
    extra: dict[str, Any] = {k: kwargs.pop(k) for k in ("version", "size") if k in kwargs}
    for key in ("migrations", "tenants"):
        if kwargs.get(key) is not None and not Path(kwargs[key]).is_absolute():
            kwargs[key] = Path(request.config.rootpath) / kwargs[key]
    return base.replace_from_marker(**kwargs), extra


def _fail(exc: TenantDBError) -> BaseException:
    """A fixture error that shows the message, not our stack."""
    return pytest.fail.Exception(f"{type(exc).__name__}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def tenantdb_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> TenantDBFactory:
    """Session-wide factory of migration sets and template caches."""
    try:
        return _factory(request.config)
    except TenantDBError as exc:
        raise _fail(exc) from None


@pytest.fixture(scope="session")
def tenantdb_settings(tenantdb_factory: TenantDBFactory) -> Settings:
    """The run's settings (flags over ini over defaults)."""
    return tenantdb_factory.settings


@pytest.fixture
def tenantdb_migrations(tenantdb_factory: TenantDBFactory, request: pytest.FixtureRequest) -> MigrationSet:
    """The :class:`MigrationSet` of ``tenantdb_migrations`` (or the test's marker)."""
    try:
        settings, _ = _marker_settings(request, tenantdb_factory.settings)
        return tenantdb_factory.migrations(settings.migrations)
    except TenantDBError as exc:
        raise _fail(exc) from None


def _builder(factory: TenantDBFactory, request: pytest.FixtureRequest, directory: Path) -> FleetBuilder:
    from pytest_tenantdb.fleet.fleet import FleetBuilder
    from pytest_tenantdb.progress import for_pytest

    settings, _ = _marker_settings(request, factory.settings)
    node = request.node
    html = request.config.stash.get(HTML_KEY, None)

    def record(report: FleetReport) -> None:
        node.user_properties.append((REPORT_PROPERTY, report.summary(failures=3)))
        if html is not None:
            html.add(node.nodeid, report)

    return FleetBuilder(
        directory,
        factory.templates(settings),
        seed=settings.seed,
        variants=settings.variants,
        workers=settings.workers,
        timeout=settings.busy_timeout,
        on_report=record,
        progress=for_pytest(request.config),  # on a terminal, for builds and migrations over 2 s
    )


@pytest.fixture
def tenant_fleet(
    tenantdb_factory: TenantDBFactory, request: pytest.FixtureRequest, tmp_path: Path
) -> FleetBuilder:
    """Factory of fleets: ``tenant_fleet(count=500, versions={"head": 0.7, "head-1": 0.3})``.

    Tenant files live in the test's ``tmp_path`` (kept per pytest's tmp_path retention policy).
    """
    try:
        return _builder(tenantdb_factory, request, tmp_path / "tenantdb")
    except TenantDBError as exc:
        raise _fail(exc) from None


@pytest.fixture
def tenant_db(tenantdb_factory: TenantDBFactory, request: pytest.FixtureRequest, tmp_path: Path) -> Tenant:
    """One tenant at ``@pytest.mark.tenantdb(version=...)``, ``request.param`` or head."""
    try:
        _, extra = _marker_settings(request, tenantdb_factory.settings)
        version = getattr(request, "param", extra.get("version", "head"))
        builder = _builder(
            tenantdb_factory, request, tmp_path / "tenantdb" / "tenant_db"
        )  # apart from tenant_fleet's
        return builder.tenant(version, size=extra.get("size", "small"))
    except TenantDBError as exc:
        raise _fail(exc) from None


@pytest.fixture
def real_fleet(tenantdb_factory: TenantDBFactory, request: pytest.FixtureRequest, tmp_path: Path) -> Fleet:
    """Copies of the real tenant files in ``tenantdb_tenants`` (or ``@pytest.mark.tenantdb(tenants=...)``)
    matching ``tenantdb_tenants_pattern``, made with SQLite's backup API in the test's ``tmp_path``:
    migrate and query them freely, the originals are never written. Files that cannot be copied
    are in ``real_fleet.skipped``."""
    try:
        settings, _ = _marker_settings(request, tenantdb_factory.settings)
        if settings.tenants is None:
            from pytest_tenantdb.errors import ConfigError

            raise ConfigError(
                'real_fleet needs a folder of tenant files: set tenants = "FOLDER" in [tool.tenantdb], '
                "tenantdb_tenants in pytest's ini, --tenantdb-tenants FOLDER, or @pytest.mark.tenantdb(tenants=...)"
            )
        builder = _builder(tenantdb_factory, request, tmp_path / "tenantdb")
        return builder.from_directory(settings.tenants, settings.tenants_pattern, name="real")
    except TenantDBError as exc:
        raise _fail(exc) from None


@pytest.fixture
def tenant_rollout(
    tenantdb_factory: TenantDBFactory, request: pytest.FixtureRequest, tmp_path: Path
) -> RolloutFactory:
    """Rollout simulation: ``tenant_rollout(count=10).run(mode="batches", seed=1)`` runs the app
    code of versions N and N+1 against tenants while the fleet migrates (fleet/rollout.py)."""
    try:
        from pytest_tenantdb.fleet.rollout import RolloutFactory

        settings, _ = _marker_settings(request, tenantdb_factory.settings)
        return RolloutFactory(
            _builder(tenantdb_factory, request, tmp_path / "tenantdb" / "rollout"), settings
        )
    except TenantDBError as exc:
        raise _fail(exc) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Show a TenantDBError raised in a test as its message and the test's own line, not our stack."""
    report = yield
    excinfo = call.excinfo
    own_item = isinstance(item, pytest.Function)  # built-in check items format their own failures
    if own_item and report.failed and excinfo is not None and excinfo.errisinstance(TenantDBError):
        package = str(Path(__file__).parent)
        own = [e for e in excinfo.traceback if not str(e.path).startswith(package)]
        where = f"{own[-1].path}:{own[-1].lineno + 1}: " if own else ""
        report.longrepr = f"{where}{excinfo.typename}: {excinfo.value}"
    return report


def _step_coverage(config: pytest.Config) -> Any:
    run = config.stash.get(CHECKS_KEY, None)
    context = getattr(run, "_context", None)
    return getattr(context, "step_coverage", None)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Migration coverage under its minimum fails the run (checks/step_coverage.py)."""
    measured = _step_coverage(session.config)
    if measured is not None and measured.below_minimum() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    measured = _step_coverage(terminalreporter.config)
    found = measured.finish() if measured is not None else None
    if found is not None:
        report, total = found
        terminalreporter.write_sep("=", "tenantdb step coverage: what no drawn tenant reached")
        terminalreporter.write_line(report)
        if measured.below_minimum():
            terminalreporter.write_line(
                f"FAIL: step coverage {total:.0f} % is under tenantdb_step_coverage = {measured.minimum:g} %"
            )
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name == REPORT_PROPERTY:
                    lines.append(f"{report.nodeid}: {value}")
    if lines:
        terminalreporter.write_sep("=", "tenantdb fleet migrations")
        for line in lines:
            terminalreporter.write_line(line)
