"""The ``tenantdb`` command: thin, it parses arguments and calls ``fleet/`` and ``migrations/``.

Exit codes (``exits.Exit``): 0 done (``check``: no finding; ``scan``: no drift; ``rehearse``: no
tenant would fail), 1 findings (``check``), drifted / unreadable tenants (``scan``) or tenants that
would fail (``rehearse``), 2 usage, configuration or input error,
70 internal error, 130 interrupted, 141 stdout closed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from pytest_tenantdb.exits import DEBUG_ENV, Exit, ParserExit, debug_requested, package_version, run_guarded
from pytest_tenantdb.migrations import VERSION_SYNTAX
from pytest_tenantdb.settings import STORES

if TYPE_CHECKING:
    from rich.console import Console

    from pytest_tenantdb.fleet.rehearse import Rehearsal
    from pytest_tenantdb.fleet.report import FleetReport
    from pytest_tenantdb.fleet.templates import TemplateCache
    from pytest_tenantdb.htmlreport import ReportData
    from pytest_tenantdb.migrations import MigrationSet
    from pytest_tenantdb.progress import RichProgress
    from pytest_tenantdb.settings import Settings

DEMO_MIX: dict[int | str, float] = {
    "head": 0.45,
    "head-1": 0.25,
    "head-2": 0.15,
    "head-5": 0.1,
    "oldest": 0.05,
}


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (a fleet of -5 tenants is a typo, not a run)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 to a day."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 86400, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that ends in an exit code from main() instead of ``sys.exit`` (in-process callers
    and the fuzzer get a return value; a stray SystemExit elsewhere is an internal error)."""

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise ParserExit(Exit.OK if status == 0 else Exit.USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tenantdb", description="Test migrations of per-tenant SQLite databases.")
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {package_version()}",
        help="print the version and exit",
    )
    debug_help = f"on an internal error, show the traceback (or set {DEBUG_ENV}=1)"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    common = _Parser(add_help=False)  # so --debug also works after the command
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")  # none: the help, exit 0

    check = sub.add_parser(
        "check", parents=[common], help="lint migrations and old queries for backward compatibility"
    )
    check.add_argument(
        "path",
        type=Path,
        nargs="?",
        help="project folder (default: the nearest folder up from here whose pyproject.toml has "
        "[tool.tenantdb], else the nearest with a pyproject.toml, else .)",
    )
    check.add_argument("--format", choices=["text", "json", "github", "sarif", "junit"], default="text")
    check.add_argument("--baseline", type=Path, help="ignore the findings listed in this file")
    check.add_argument(
        "--write-baseline", type=Path, metavar="FILE", help="record the current findings and exit 0"
    )
    check.add_argument(
        "--since", metavar="VERSION", help=f"only steps newer than this version ({VERSION_SYNTAX})"
    )
    check.add_argument(
        "--base",
        metavar="REF",
        help="gate a pull request: only steps new since REF, REF's queries as old code",
    )
    check.add_argument(
        "--ignore", action="append", default=[], metavar="CODE", help="skip a rule (repeatable)"
    )

    lock = sub.add_parser(
        "lock",
        parents=[common],
        help="write the lock file: the checksums of the released steps (after a release)",
    )
    lock.add_argument(
        "path", type=Path, nargs="?", default=None, help="project folder (default: found from here up)"
    )
    lock.add_argument(
        "--base", metavar="REF", help="lock the steps as they are at git REF (the released commit)"
    )

    explain = sub.add_parser("explain", parents=[common], help="explain a rule code")
    explain.add_argument("code")

    versions = sub.add_parser("versions", parents=[common], help="list the steps of a migrations directory")
    versions.add_argument(
        "migrations",
        help="a folder of steps, an Alembic folder or alembic.ini, django:APP[,APP] or module:attribute",
    )

    folder = _Parser(add_help=False)  # what scan and rehearse read: a folder of tenant files
    folder.add_argument("folder", type=Path, metavar="DIR", help="the folder of tenant files")
    folder.add_argument(
        "--pattern", default="*.db", help='glob of the tenant files\' names in DIR (default "*.db")'
    )
    folder.add_argument(
        "--project",
        type=Path,
        help="project whose [tool.tenantdb] names the migrations (default: found from here up, as check)",
    )
    scan = sub.add_parser(
        "scan",
        parents=[common, folder],
        help="read a folder of real tenant files (never writing them): versions, drift from each "
        "version's template, unreadable files",
    )
    scan.add_argument("--format", choices=["text", "json"], default="text")
    scan.add_argument(
        "--compare",
        choices=["semantic", "exact"],
        default=None,
        help="exact: a cosmetic difference (column order, type spelling) is drift too "
        "(default: [tool.tenantdb] schema_compare)",
    )
    scan.add_argument(
        "--busy-timeout",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="wait this long for a tenant locked by a writer before reporting it locked (default 1)",
    )
    scan.add_argument(
        "--html", type=Path, metavar="FILE", help="also write the report as one self-contained HTML page"
    )

    rehearse = sub.add_parser(
        "rehearse",
        parents=[common, folder],
        help="migrate copies of a folder of real tenant files (never writing them): what would "
        "fail, grouped, the time per tenant and an estimate of the release",
    )
    rehearse.add_argument(
        "--to", metavar="VERSION", help=f"the release's target (default head; {VERSION_SYNTAX})"
    )
    rehearse.add_argument(
        "--sample", type=_at_least(1), metavar="N", help="rehearse N tenants drawn at random (default: all)"
    )
    rehearse.add_argument("--seed", type=int, default=0, help="seed of the --sample draw (default 0)")
    rehearse.add_argument(
        "--workers", type=_at_least(1), default=2, help="worker processes migrating the copies (default 2)"
    )
    rehearse.add_argument(
        "--workdir",
        type=Path,
        help="a new or empty folder for the copies, kept (default: a temp dir, removed after)",
    )
    rehearse.add_argument(
        "--busy-timeout",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="wait this long for a tenant locked by a writer before reporting it locked (default 1)",
    )
    rehearse.add_argument("--json", action="store_true", help="print the report as JSON")
    rehearse.add_argument(
        "--html", type=Path, metavar="FILE", help="also write the report as one self-contained HTML page"
    )

    demo = sub.add_parser(
        "demo", parents=[common], help="build a mixed-version fleet from a project and migrate it"
    )
    demo.add_argument("project", type=Path, help="folder with migrations/ and optionally snapshots/")
    demo.add_argument("--count", type=_at_least(1), default=1000, help="fake tenants to build (default 1000)")
    demo.add_argument("--workers", type=_at_least(1), default=2, help="worker processes (default 2)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--workdir", type=Path, help="where tenant files go (default: a temp dir, removed after)"
    )
    demo.add_argument("--versioning", choices=list(STORES), default="auto")
    demo.add_argument("--json", action="store_true", help="print the report as JSON")
    demo.add_argument(
        "--html", type=Path, metavar="FILE", help="also write the report as one self-contained HTML page"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tenantdb`` console script: every outcome is an exit code (exits.py)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    return run_guarded(lambda: _run(arguments), arguments, debug=debug_requested(arguments))


def _run(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `tenantdb`: what it can do, not a usage error
        parser.print_help(sys.stdout)
        return Exit.OK
    from pytest_tenantdb.console import make_console

    console = make_console(quiet=getattr(args, "json", False))
    if args.command == "versions":
        return _versions(console, args.migrations)
    if args.command == "check":
        return _check(args)
    if args.command == "explain":
        return _explain(args.code)
    if args.command == "lock":
        return _lock(args)
    if args.command == "scan":
        return _scan(args)
    if args.command == "rehearse":
        return _rehearse(args)
    return _demo(console, args)


def _lock(args: argparse.Namespace) -> int:
    """Write the lock file of the project: its steps now, or as they are at ``--base REF``."""
    import dataclasses

    from pytest_tenantdb.checks.lockfile import write_lock
    from pytest_tenantdb.errors import ConfigError
    from pytest_tenantdb.factory import load_migrations
    from pytest_tenantdb.lint.config import cli_settings

    root = args.path if args.path is not None else find_project(Path.cwd())
    settings = cli_settings(root)
    if settings.lock is None:
        raise ConfigError('[tool.tenantdb] lock is empty; name the lock file, e.g. lock = "tenantdb.lock"')
    with tempfile.TemporaryDirectory(prefix="tenantdb-lock-") as tmp:
        source = settings
        if args.base:
            from pytest_tenantdb.lint.gitbase import base_tree

            migrations_path = settings.migrations.resolve()
            if not migrations_path.exists() or not migrations_path.is_relative_to(settings.root.resolve()):
                raise ConfigError(
                    f"lock --base reads the migrations folder from git; {settings.origin('migrations')} "
                    "is not a folder or file in the project: write the lock on the released commit instead"
                )
            tree = base_tree(settings.root.resolve(), args.base, Path(tmp))
            source = dataclasses.replace(
                settings, root=tree, migrations=tree / migrations_path.relative_to(settings.root.resolve())
            )
            if not source.migrations.exists():
                raise ConfigError(
                    f"{args.base} has no {migrations_path.relative_to(settings.root.resolve())}"
                )
        steps = list(load_migrations(source))
    count = write_lock(settings.lock, steps)
    where = f" as at {args.base}" if args.base else ""
    span = f" ({steps[0].label} .. {steps[-1].label})" if steps else ""
    print(f"wrote {settings.lock}: {count} released step(s){where}{span}; commit it")
    return Exit.OK


def _project_templates(args: argparse.Namespace, command: str, tmp: Path) -> tuple[Settings, TemplateCache]:
    """The project ``scan`` and ``rehearse`` read (``--project``, else found from here up) and a
    cache of its templates (the project's cache, else one in ``tmp``)."""
    from pytest_tenantdb.factory import load_migrations
    from pytest_tenantdb.fleet.templates import TemplateCache
    from pytest_tenantdb.lint.config import cli_settings, project_cache, unwritable
    from pytest_tenantdb.migrations.directory import require_steps
    from pytest_tenantdb.versioning import version_store

    root = args.project if args.project is not None else find_project(Path.cwd())
    settings = cli_settings(root)
    migrations = load_migrations(settings)
    require_steps(
        migrations,
        lambda found: (
            f"{command} compares tenants with the templates of {settings.origin('migrations')}; "
            "name the project with --project"
        ),
        str(settings.migrations),
    )
    store = version_store(settings.versioning, migrations)
    cache = project_cache(settings) / "templates"
    if unwritable(cache) is not None:
        cache = tmp / "templates"
    return settings, TemplateCache(cache, migrations, store)


def _scan(args: argparse.Namespace) -> int:
    """Scan a folder of tenant files against the project's templates; exit 1 on drift or on a
    file that cannot be read (docs/reference/cli.md)."""
    from pytest_tenantdb.errors import ConfigError
    from pytest_tenantdb.fleet.scan import scan_directory

    if not args.folder.is_dir():
        raise ConfigError(f"scan {args.folder}: is not a folder; name the folder of tenant files")
    if args.html is not None:
        _check_output(args.html, "--html")  # before the folder is read, not after
    with tempfile.TemporaryDirectory(prefix="tenantdb-scan-") as tmp:
        settings, templates = _project_templates(args, "scan", Path(tmp))
        result = scan_directory(
            args.folder,
            templates,
            args.pattern,
            compare=args.compare or settings.schema_compare,
            timeout=args.busy_timeout,
        )
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.summary())
    if args.html is not None:
        from pytest_tenantdb.htmlreport import ReportData, from_scan_result, write_html

        section = from_scan_result(result, f"scan of {args.folder}", str(args.folder))
        write_html(args.html, ReportData("tenantdb scan", (section,), f"pytest-tenantdb {package_version()}"))
        print(f"HTML report: {args.html}", file=sys.stderr if args.format == "json" else sys.stdout)
    return Exit.OK if result.ok else Exit.FINDINGS


def _rehearse(args: argparse.Namespace) -> int:
    """Rehearse the release on copies of a folder of tenant files; exit 1 when any tenant would
    fail (docs/reference/cli.md)."""
    from pytest_tenantdb.errors import ConfigError

    if not args.folder.is_dir():
        raise ConfigError(f"rehearse {args.folder}: is not a folder; name the folder of tenant files")
    if args.html is not None:
        _check_output(args.html, "--html")  # before the copies are migrated, not after
    if args.workdir is not None:
        if args.workdir.resolve().is_relative_to(args.folder.resolve()):
            raise ConfigError(
                f"--workdir {args.workdir}: is inside {args.folder}, and the originals' folder is never "
                "written; name a folder elsewhere"
            )
        _fresh_workdir(args.workdir)
        return _run_rehearsal(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="tenantdb-rehearse-") as tmp:
        return _run_rehearsal(args, Path(tmp) / "work")


def _run_rehearsal(args: argparse.Namespace, workdir: Path) -> int:
    from pytest_tenantdb.fleet.rehearse import rehearse_directory
    from pytest_tenantdb.progress import for_terminal

    with tempfile.TemporaryDirectory(prefix="tenantdb-rehearse-") as tmp:
        _, templates = _project_templates(args, "rehearse", Path(tmp))
        target = None if args.to is None else templates.migrations.resolve(args.to)
        progress = for_terminal(sys.stderr)
        try:
            result = rehearse_directory(
                args.folder,
                templates,
                workdir,
                args.pattern,
                target=target,
                sample=args.sample,
                seed=args.seed,
                workers=args.workers,
                timeout=args.busy_timeout,
                progress=progress,
            )
        finally:
            if progress is not None:
                progress.close()
    if args.workdir is None:
        result = dataclasses.replace(result, workdir="")  # a temporary folder, removed on return
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.summary())
    if args.html is not None:
        from pytest_tenantdb.htmlreport import write_html

        write_html(args.html, rehearsal_html(result))
        if not args.json:
            print(f"HTML report: {args.html}")
    return Exit.OK if result.ok else Exit.FINDINGS


def _explain(code: str) -> int:
    from pytest_tenantdb.lint.engine import explain
    from pytest_tenantdb.lint.rules import RULES

    try:
        print(explain(code))
    except KeyError:
        print(f"error: no rule {code!r}; known: {', '.join(sorted(RULES))}", file=sys.stderr)
        return Exit.USAGE
    return Exit.OK


def _check(args: argparse.Namespace) -> int:
    from pytest_tenantdb.lint.baseline import check_baseline_target, without_known, write_baseline
    from pytest_tenantdb.lint.config import cli_settings, load_config, project_cache, unwritable
    from pytest_tenantdb.lint.engine import lint_project
    from pytest_tenantdb.lint.findings import FORMATS, relocated
    from pytest_tenantdb.lint.gitbase import repository_root

    if args.path is None:
        args.path = find_project(Path.cwd())
    if args.write_baseline is not None:
        check_baseline_target(args.write_baseline)
    settings = cli_settings(args.path, since=args.since, ignore=tuple(args.ignore))
    with tempfile.TemporaryDirectory(prefix="tenantdb-check-") as tmp:
        cache = project_cache(settings)
        problem = unwritable(cache)
        if problem is not None:  # a read-only checkout is still checked, only nothing is reused
            print(
                f"note: cannot write the cache in {cache} ({problem}); using a temporary cache, "
                "so nothing is reused between runs",
                file=sys.stderr,
            )
            cache = Path(tmp) / "cache"
        project = load_config(settings, cache=cache)
        queries, options = project.queries, project.options
        moved: dict[Path, Path] = {}
        if args.base:
            from dataclasses import replace

            from pytest_tenantdb.lint.gitbase import base_head, base_python, base_queries
            from pytest_tenantdb.queries import QuerySources

            root_path = args.path.resolve()
            head = base_head(root_path, args.base, Path(project.migrations.origin).resolve())
            options = replace(options, since=max(options.since, head))
            folder = queries.folder if queries is not None else None
            base_folder = (
                base_queries(root_path, args.base, folder.folder.resolve(), Path(tmp)) if folder else None
            )
            tagged = {head: base_python(root_path, args.base, tuple(p.resolve() for p in project.python))}
            based = QuerySources(base_folder, tagged if project.python else {})
            queries = based if based else None  # no old code known at REF: not "none runs"
            if base_folder is not None and folder is not None:
                moved[Path(tmp).resolve() / "queries"] = folder.folder.resolve()
        findings = lint_project(project.migrations, project.templates, queries, options)
    repository = repository_root(args.path.resolve())
    findings = relocated(findings, repository, moved)
    root = str(repository)
    if args.write_baseline is not None:
        write_baseline(args.write_baseline, findings, root)
        print(
            f"wrote {len(findings)} finding(s) to {args.write_baseline}; commit it, pass --baseline to ignore them"
        )
        return 0
    findings = without_known(findings, args.baseline or project.baseline, root)
    print(FORMATS[args.format](findings))
    # notes say what was not checked, they do not fail the gate
    return Exit.FINDINGS if any(f.severity != "note" for f in findings) else Exit.OK


def find_project(start: Path) -> Path:
    """The project ``tenantdb check`` reads when given no path: the nearest folder from ``start``
    up whose pyproject.toml has a ``[tool.tenantdb]`` table, else the nearest with a
    pyproject.toml, else ``start`` (as pytest finds its rootdir and ruff its configuration).
    ``Path(".")`` when that is ``start``; else the folder, said in a note on stderr (stdout stays
    the report, whatever its format)."""
    from pytest_tenantdb.pyproject import declares_tenantdb

    start = start.absolute()
    nearest: Path | None = None
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if not pyproject.is_file():
            continue
        if declares_tenantdb(pyproject):
            found, why = folder, "its pyproject.toml has [tool.tenantdb]"
            break
        nearest = nearest or folder
    else:
        if nearest is None:
            return Path(".")
        found, why = nearest, "the nearest pyproject.toml; none up from here has [tool.tenantdb]"
    if found == start:
        return Path(".")
    print(f"note: checking the project in {found} ({why})", file=sys.stderr)
    return found


def _versions(console: Console, spec: str) -> int:
    from rich.table import Table

    from pytest_tenantdb.migrations import MigrationSet
    from pytest_tenantdb.migrations.directory import require_steps

    migrations = MigrationSet.from_path(spec)
    require_steps(
        migrations,
        lambda found: (
            f"run tenantdb versions {found}"
            if found
            else "name a folder of 0001_name.sql steps, an alembic.ini, django:APP or module:attribute"
        ),
        spec,
    )
    table = Table(title=f"{migrations.origin}: head {migrations.head}, checksum {migrations.checksum[:12]}")
    for column in ("version", "step", "kind", "down", "transaction", "checksum"):
        table.add_column(column, overflow="fold")  # a narrow terminal folds a name, never cuts it
    for step in migrations:
        table.add_row(
            str(step.version),
            step.ident or step.name,
            type(step).__name__,
            "yes" if step.has_down else "no",
            "yes" if step.transactional else "no",
            step.checksum[:12],
        )
    console.print(table)
    if migrations.gaps:
        console.print(f"gaps in numbering (allowed): [{migrations.gaps_text()}]")
    return 0


def _demo(console: Console, args: argparse.Namespace) -> int:
    from pytest_tenantdb.migrations import MigrationSet
    from pytest_tenantdb.migrations.directory import require_steps

    migrations = MigrationSet.from_path(args.project / "migrations")
    require_steps(
        migrations,
        lambda found: "demo reads the steps from PROJECT/migrations; put 0001_name.sql steps there",
        str(args.project / "migrations"),
    )
    if args.html is not None:
        _check_output(args.html, "--html")  # before the fleet is built, not after it migrated
    if args.workdir is not None:
        _fresh_workdir(args.workdir)
        return _run_demo(console, args, migrations, args.workdir)
    with tempfile.TemporaryDirectory(prefix="tenantdb-demo-") as tmp:
        return _run_demo(console, args, migrations, Path(tmp))


def _demo_mix(migrations: MigrationSet) -> dict[int | str, float]:
    """DEMO_MIX on this history: the share of a version before the empty database (head-5 of a
    two-step history) goes to the oldest step."""
    from pytest_tenantdb.errors import ConfigError

    mix: dict[int | str, float] = {}
    for label, share in DEMO_MIX.items():
        try:
            key: int | str = migrations.resolve(label)
        except ConfigError:
            key = migrations.resolve("oldest")
        mix[key] = mix.get(key, 0) + share
    return mix


def _fresh_workdir(workdir: Path) -> None:
    """Make ``workdir``, which must be new or empty: a fleet is never built over another one."""
    from pytest_tenantdb.errors import ConfigError

    if workdir.exists() and not workdir.is_dir():
        raise ConfigError(f"--workdir {workdir}: is not a folder; name a new or empty folder")
    if workdir.is_dir() and any(workdir.iterdir()):
        raise ConfigError(
            f"--workdir {workdir}: is not empty (the fleet of an earlier run?); name a new or empty "
            f"folder, or remove {workdir} first"
        )
    workdir.mkdir(parents=True, exist_ok=True)


def _check_output(path: Path, flag: str) -> None:
    """Refuse an output file that cannot be one: a folder, or under a file."""
    from pytest_tenantdb.errors import ConfigError

    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; name a file to write")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {path}: {parent} is a file, not a folder; name a file in a folder")
            break


def _busy(console: Console, progress: RichProgress | None, text: str) -> AbstractContextManager[object]:
    """A spinner, unless a progress bar already shows what is going on."""
    return nullcontext() if progress is not None else console.status(text)


def _run_demo(console: Console, args: argparse.Namespace, migrations: MigrationSet, workdir: Path) -> int:
    from pytest_tenantdb.fleet.fleet import FleetBuilder
    from pytest_tenantdb.fleet.templates import TemplateCache
    from pytest_tenantdb.progress import for_terminal
    from pytest_tenantdb.versioning import version_store

    templates = TemplateCache(
        workdir / "templates", migrations, version_store(args.versioning, migrations, "--versioning")
    )
    progress = for_terminal(sys.stderr)  # counts and time left on stderr, when it is a terminal
    builder = FleetBuilder(
        workdir / "tenants", templates, seed=args.seed, workers=args.workers, progress=progress
    )
    try:
        with _busy(console, progress, f"building {args.count} tenants from templates..."):
            fleet = builder.build(args.count, _demo_mix(migrations))
        console.print(
            f"built {len(fleet)} fake tenants in {workdir / 'tenants'}: versions {dict(sorted(fleet.created_versions().items()))}"
        )
        fleets = [fleet]
        snapshots = args.project / "snapshots"
        if snapshots.is_dir():
            copied = builder.from_snapshots(snapshots)
            console.print(
                f"copied {len(copied)} real tenant snapshots from {snapshots} (originals untouched)"
            )
            fleets.append(copied)
        reports = []
        with _busy(
            console, progress, f"migrating to version {migrations.head} with {args.workers} workers..."
        ):
            for one in fleets:
                reports.append(one.migrate())
    finally:
        if progress is not None:
            progress.close()
    titles = ("fake tenants", "snapshots")
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        for report, title in zip(reports, titles, strict=False):
            _print_report(console, report, title)
    if args.html is not None:
        _write_demo_html(args, reports, titles)
        console.print(f"HTML report: {args.html}")
    return 0


def _write_demo_html(args: argparse.Namespace, reports: list[FleetReport], titles: Sequence[str]) -> None:
    from pytest_tenantdb.htmlreport import ReportData, from_fleet_report, write_html

    sections = tuple(
        from_fleet_report(report, f"{title}: {len(report)} tenants -> version {report.target}")
        for report, title in zip(reports, titles, strict=False)
    )
    subtitle = (
        f"tenantdb demo {args.project}: {args.count} fake tenants, seed {args.seed}, {args.workers} workers"
    )
    write_html(args.html, ReportData("tenantdb demo", sections, subtitle))


def rehearsal_html(result: Rehearsal) -> ReportData:
    """The HTML page of a rehearsal: the fleet report's section, with the rehearsal's timings."""
    from pytest_tenantdb.htmlreport import ReportData, from_fleet_report

    section = from_fleet_report(
        result.report, f"rehearsal: {result.rehearsed} of {result.total} tenants -> version {result.target}"
    )
    timing, guess = result.timings(), result.estimate()
    rows = (
        ("time per migrated tenant: median", f"{timing['median_seconds'] * 1000:.1f} ms"),
        ("time per migrated tenant: 95th percentile", f"{timing['p95_seconds'] * 1000:.1f} ms"),
        (
            f"estimate of the release at {result.workers} worker(s)",
            f"{guess['seconds']:.2f} s for {round(guess['tenants_to_migrate'])} tenants to migrate "
            "(an estimate: mean time per tenant x tenants / workers)",
        ),
    )
    notes = (
        f"{result.fast} tenants already at version {result.target} with their template's schema were "
        "reported current without a copy.",
        *(f"{p.tenant}: {p.status}: {p.detail}" for p in result.problems[:50]),
    )
    section = dataclasses.replace(section, timings=section.timings + rows, notes=section.notes + notes)
    sampled = (
        f"a sample of {result.rehearsed}, seed {result.seed}" if result.sample is not None else "every tenant"
    )
    subtitle = (
        f"tenantdb rehearse {result.folder}: {sampled}, {result.workers} worker(s); originals only read"
    )
    return ReportData("tenantdb rehearse", (section,), subtitle)


def _print_report(console: Console, report: FleetReport, title: str) -> None:
    from rich.table import Table

    table = Table(title=f"{title}: {len(report)} tenants -> version {report.target} in {report.seconds:.2f}s")
    for column in ("from version", "tenants", "migrated", "already current", "failed"):
        table.add_column(column, justify="right")
    for version, counts in report.by_start_version().items():
        table.add_row(
            str(version),
            str(sum(counts.values())),
            str(counts["migrated"]),
            str(counts["current"]),
            str(counts["failed"]),
        )
    totals = report.totals()
    table.add_row(
        "all",
        str(len(report)),
        str(totals["migrated"]),
        str(totals["current"]),
        str(totals["failed"]),
        style="bold",
    )
    console.print(table)
    if report.failed:  # each kind of failure once: step, error, how many tenants and which
        console.print(report.failures_text(failures=10), style="red")
        console.print("Each failed tenant was restored byte-identical from its backup; the others went on.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
