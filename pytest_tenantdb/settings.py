"""Settings: every option of pytest-tenantdb, declared once, read in one place, one meaning each.

``[tool.tenantdb]`` in the project's pyproject.toml is where a project's settings live; the
``tenantdb`` command reads it, and so does the plugin. A pytest run may override a key with the
ini key of the same name (``tenantdb_<key>``) and the flag (``--tenantdb-<key>``); ``tenantdb
check`` has its own flags for a few (``--since``, ``--ignore``, ``--baseline``). Later wins:
default < ``[tool.tenantdb]`` < pytest ini < flag < a test's ``@pytest.mark.tenantdb(...)``.
An unknown key anywhere is an error that names the closest known one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_tenantdb.errors import ConfigError
from pytest_tenantdb.pyproject import kind_of, pytest_ini_values, read_table, toml, unknown_keys

if TYPE_CHECKING:
    import pytest


STORES = ("auto", "user_version", "table", "alembic", "django")  # versioning.py implements them
COMPARE = ("semantic", "exact")  # how strict round_trip / no_drift are (schema.SchemaDiff)
DIALECTS = ("sqlite", "postgres")
LEVELS = ("error", "warning", "note", "off")


class _Wrong(Exception):
    """A value a kind does not take; the text completes "``key = value`` ...": "is a boolean"."""


@dataclass(frozen=True)
class Kind:
    """What values an option takes: ``expected`` in words, ``parse`` from a TOML value (typed)
    or from the text of an ini key or a flag (``typed=False``)."""

    expected: str
    parse: Callable[[object, bool], object]


def _text(raw: object, typed: bool) -> object:
    if typed and not isinstance(raw, str):
        raise _Wrong(f"is {kind_of(raw)}")
    return str(raw)


def _text_or_number(raw: object, typed: bool) -> object:
    if typed and (isinstance(raw, bool) or not isinstance(raw, str | int | float)):
        raise _Wrong(f"is {kind_of(raw)}")
    return str(raw)


def _choice(*choices: str) -> Kind:
    def parse(raw: object, typed: bool) -> object:
        text = str(_text(raw, typed)).strip().lower()
        if text not in choices:
            raise _Wrong(f"is not one of {', '.join(choices)}")
        return text

    return Kind(" or ".join(f'"{c}"' for c in choices), parse)


def _integer(minimum: int | None) -> Kind:
    def parse(raw: object, typed: bool) -> object:
        if isinstance(raw, bool) or (typed and not isinstance(raw, int)):
            raise _Wrong(f"is {kind_of(raw)}")
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise _Wrong("is not an integer") from None
        if minimum is not None and value < minimum:
            raise _Wrong(f"is below {minimum}")
        return value

    return Kind("an integer" + (f" >= {minimum}" if minimum is not None else ""), parse)


def _seconds(raw: object, typed: bool) -> object:
    if isinstance(raw, bool) or (typed and not isinstance(raw, int | float)):
        raise _Wrong(f"is {kind_of(raw)}")
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise _Wrong("is not a number") from None
    if value < 0:
        raise _Wrong("is negative")
    return value


def _boolean(raw: object, typed: bool) -> object:
    if isinstance(raw, bool):
        return raw
    if typed:
        raise _Wrong(f"is {kind_of(raw)}")
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise _Wrong("is not true or false")


def _words(raw: object, typed: bool) -> object:
    """A TOML list of strings, or (ini, flag) words separated by spaces or commas."""
    if isinstance(raw, list | tuple):
        wrong = next((item for item in raw if not isinstance(item, str)), None)
        if wrong is not None:
            raise _Wrong(f"has {kind_of(wrong)} item")
        return tuple(raw)
    if typed:
        raise _Wrong(f"is {kind_of(raw)}")
    return tuple(re.split(r"[\s,]+", str(raw).strip())) if str(raw).strip() else ()


def _version(raw: object, typed: bool) -> object:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _Wrong(f"is {kind_of(raw)}")
    if isinstance(raw, int) and raw < 0:
        raise _Wrong("is a negative number")
    return str(raw).strip()


def _window(raw: object, typed: bool) -> object:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _Wrong(f"is {kind_of(raw)}")
    text = str(raw).strip().lower()
    if text != "all" and not text.isdigit():
        raise _Wrong("is neither a number of versions nor 'all'")
    return text


def _table(raw: object, typed: bool) -> object:
    if not isinstance(raw, dict):
        raise _Wrong(f"is {kind_of(raw)}")
    bad = {k: v for k, v in raw.items() if v not in LEVELS}
    if bad:
        raise _Wrong("has " + ", ".join(f"{k} = {toml(v)}" for k, v in bad.items()))
    return tuple(sorted((str(code).upper(), str(level)) for code, level in raw.items()))


TEXT = Kind("a string", _text)
PATH = Kind("a string (a path relative to the project)", _text)
PATHS = Kind("a list of strings (paths relative to the project)", _words)
WORDS = Kind("a list of strings", _words)


@dataclass(frozen=True)
class Option:
    """One setting: its key in ``[tool.tenantdb]``, its pytest ini key (``tenantdb_<name>``) and
    flag (``--tenantdb-<name>``), what it means and what it takes."""

    name: str
    help: str
    default: object
    kind: Kind = TEXT
    pytest: bool = True  # also an ini key and a flag of pytest (not for tables)
    flag_takes_value: bool = True

    @property
    def ini(self) -> str:
        return f"tenantdb_{self.name}"

    @property
    def flag(self) -> str:
        return "--tenantdb-" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option(
        "migrations",
        "the migrations: a folder of steps, an Alembic folder or alembic.ini, django:APP[,APP] or "
        "module:attribute (paths relative to the project)",
        "migrations",
        PATH,
    ),
    Option(
        "versioning",
        "where tenants record their version: auto (the source's own), user_version, table, alembic or django",
        "auto",
        _choice(*STORES),
    ),
    Option("base", "code run before step 1: module:function(conn) or an .sql file (e.g. create_all)", ""),
    Option(
        "django_settings", "Django settings module for django: migrations (else DJANGO_SETTINGS_MODULE)", ""
    ),
    Option(
        "window",
        "how many versions before head are still live: tenants may be at them and their app code still "
        "serves (every_path and no_drift start there; old code of each must run on the next schemas); "
        "a number, or all",
        "1",
        Kind('an integer >= 0 or "all"', _window),
    ),
    Option("queries", "folder of app queries per app version (old code)", "", PATH),
    Option("python", "files or folders of Python app code whose SQL literals are old code", (), PATHS),
    Option("recorded", "file of queries recorded with --tenantdb-record, replayed as old code", "", PATH),
    Option("app_modules", "modules to import that register app code with @app_code(version)", ""),
    Option("lock", "lock file with the checksums of released steps", "tenantdb.lock", PATH),
    Option(
        "checks",
        "collect the built-in property checks as test items",
        False,
        Kind("true or false", _boolean),
        flag_takes_value=False,
    ),
    Option("workers", "worker processes for fleet.migrate()", 1, _integer(1)),
    Option("seed", "seed for fake tenant data", 0, _integer(None)),
    Option("variants", "distinct seeded templates per version and size class", 2, _integer(1)),
    Option(
        "busy_timeout", "seconds to wait for a locked tenant database", 5.0, Kind("a number >= 0", _seconds)
    ),
    Option(
        "tenants",
        "a folder of real tenant files (copies from production): the real_fleet fixture copies them "
        "again and never writes the originals",
        "",
        PATH,
    ),
    Option("tenants_pattern", "glob of the tenant files' names in the tenants folder", "*.db"),
    Option("schema", "how new tenants are created: a schema.sql file or module:function(conn)", ""),
    Option("failures", "where minimal failing tenants are saved as SQL", ".tenantdb/failures", PATH),
    Option("examples", "hypothesis examples per check (0: the tenantdb profile's)", 0, _integer(0)),
    Option("max_rows", "at most this many rows per table in a drawn tenant", 5, _integer(0)),
    Option(
        "schema_compare",
        "how round_trip and no_drift compare schemas: semantic (differences SQLite acts on fail; "
        "column order and same-affinity type spellings are a warning) or exact (those fail too)",
        "semantic",
        _choice(*COMPARE),
    ),
    Option(
        "step_coverage",
        "measure which lines and branches of Python steps and app code the drawn tenants reach: "
        "off, on, or a minimum percentage that fails the run below it",
        "off",
        Kind('"off", "on" or a percentage', _text_or_number),
    ),
    Option("ignore", "rule codes the checker skips, e.g. TDB107", (), WORDS),
    Option("select", "rule codes the checker runs (default: all)", (), WORDS),
    Option(
        "since",
        "the checker looks at steps newer than this: a number, head-N or a step's name",
        "0",
        Kind("a version (a number, head-N or a step's name)", _version),
    ),
    Option("baseline", "file of known findings to ignore (tenantdb check --write-baseline)", "", PATH),
    Option("dialect", "the SQL the migrations are written in", "sqlite", _choice(*DIALECTS)),
    Option(
        "severity",
        'rule codes mapped to "error", "warning", "note" or "off"',
        {},
        Kind("a table", _table),
        pytest=False,
    ),
)
BY_NAME = {option.name: option for option in OPTIONS}
PATH_OPTIONS = ("migrations", "queries", "lock", "failures", "recorded", "baseline", "tenants")


@dataclass(frozen=True)
class Layer:
    """Values from one source over the ones before it; ``where(option, raw)`` names the source in
    an error (``--tenantdb-workers 0``, ``tenantdb_workers = 0 (pytest ini)``)."""

    values: Mapping[str, object]
    where: Callable[[Option, object], str]
    typed: bool = False


@dataclass(frozen=True)
class Settings:
    """The resolved settings of a project (a pytest run, or one test after its marker)."""

    migrations: Path
    versioning: str = "auto"
    workers: int = 1
    seed: int = 0
    variants: int = 2
    busy_timeout: float = 5.0
    tenants: Path | None = None
    tenants_pattern: str = "*.db"
    checks: bool = False
    window: str = "1"
    queries: Path | None = None
    schema: str = ""
    lock: Path | None = Path("tenantdb.lock")
    failures: Path = Path(".tenantdb/failures")
    examples: int = 0
    max_rows: int = 5
    app_modules: str = ""
    recorded: Path | None = None
    base: str = ""
    django_settings: str = ""
    schema_compare: str = "semantic"
    step_coverage: str = "off"
    python: tuple[Path, ...] = ()
    ignore: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    since: str = "0"
    baseline: Path | None = None
    dialect: str = "sqlite"
    severity: tuple[tuple[str, str], ...] = ()
    root: Path = Path(".")
    origins: tuple[tuple[str, str], ...] = ()  # option -> the source that set it, for messages

    def __post_init__(self) -> None:
        from pytest_tenantdb.checks.step_coverage import parse_setting

        parse_setting(self.step_coverage)  # a clear error now, not at the end of a long run

    @property
    def window_size(self) -> int | None:
        """``window`` as a number of versions; None for ``all``."""
        return None if self.window == "all" else int(self.window)

    @classmethod
    def load(cls, root: Path, *layers: Layer) -> Settings:
        """The settings of the project at ``root``: defaults, then ``[tool.tenantdb]`` of its
        pyproject.toml, then each of ``layers`` (ini keys, flags) in order."""
        pyproject = root / "pyproject.toml"
        table = read_table(root)
        unknown_keys(f"{pyproject}: [tool.tenantdb]", table, BY_NAME)

        def in_toml(option: Option, raw: object) -> str:
            return f"{pyproject}: [tool.tenantdb] {option.name} = {toml(raw)}"

        values: dict[str, object] = {o.name: _parse(o, o.default, True, in_toml) for o in OPTIONS}
        origins: dict[str, str] = {}
        for layer in (Layer(table, in_toml, typed=True), *layers):
            for name, raw in layer.values.items():
                if raw is not None:
                    values[name] = _parse(BY_NAME[name], raw, layer.typed, layer.where)
                    origins[name] = layer.where(BY_NAME[name], raw)
        for name in PATH_OPTIONS:
            text = str(values[name])
            values[name] = None if text == "" else _under(root, text)
        values["python"] = tuple(_under(root, str(p)) for p in values["python"])  # type: ignore[attr-defined]
        values["ignore"] = tuple(str(c).upper() for c in values["ignore"])  # type: ignore[attr-defined]
        values["select"] = tuple(str(c).upper() for c in values["select"])  # type: ignore[attr-defined]
        return cls(root=root, origins=tuple(origins.items()), **values)  # type: ignore[arg-type]

    def origin(self, name: str) -> str:
        """Where option ``name`` was set, as an error message names it (``--since abc``,
        ``pyproject.toml: [tool.tenantdb] since = "abc"``); ``since = 0 (default)`` if nowhere."""
        return dict(self.origins).get(name) or f"{name} = {getattr(self, name)!r} (default)"

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """A pytest run's settings: ``[tool.tenantdb]`` of the rootdir, then ini keys, then flags."""
        written = [*(pytest_ini_values(config.inipath) or {})] if config.inipath else []
        written += [o.split("=", 1)[0].strip() for o in config.getoption("override_ini", default=None) or []]
        where = f"pytest's configuration ({config.inipath})" if config.inipath else "pytest's configuration"
        unknown_keys(where, [k for k in written if str(k).startswith("tenantdb")], ini_keys())
        # a key written empty (-o tenantdb_queries=) clears the table's value
        ini = {o.name: config.getini(o.ini) or "" for o in OPTIONS if o.pytest and o.ini in written}
        flags = {o.name: config.getoption(o.flag, default=None) for o in OPTIONS if o.pytest}
        return cls.load(
            Path(config.rootpath),
            Layer(ini, lambda o, raw: f"{o.ini} = {raw} (pytest ini)"),
            Layer(flags, lambda o, raw: f"{o.flag} {raw}"),
        )

    def replace_from_marker(self, **overrides: Any) -> Settings:
        """A copy with a marker's keyword arguments applied (unknown names are an error)."""
        known = {f.name for f in dataclasses.fields(self)} - {"root", "origins"}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(
                f"@pytest.mark.tenantdb got unknown argument(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        for name in PATH_OPTIONS:
            if overrides.get(name) is not None:
                overrides[name] = Path(overrides[name])
        return dataclasses.replace(self, **overrides)


def ini_keys() -> list[str]:
    """Every pytest ini key of the plugin."""
    return [option.ini for option in OPTIONS if option.pytest]


def _under(root: Path, text: str) -> Path:
    path = Path(text)
    return path if path.is_absolute() else root / path


def _parse(option: Option, raw: object, typed: bool, where: Callable[[Option, object], str]) -> object:
    try:
        return option.kind.parse(raw, typed)
    except _Wrong as wrong:
        raise ConfigError(
            f"{where(option, raw)} {wrong}; expected {option.kind.expected}: {option.help}"
        ) from None
