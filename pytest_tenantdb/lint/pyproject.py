"""Reading ``[tool.tenantdb]`` out of pyproject.toml and checking its shape: each key known, each
value of the type it needs. A mistake here is a ConfigError that names the key, shows the value as
it is written in TOML and says what is expected, before any migration is loaded."""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Callable
from pathlib import Path

from pytest_tenantdb.errors import ConfigError

_FOLDER = "a folder relative to the project"
# key -> (the kind of value, what it means); kinds are checked by _KINDS below
SCHEMA: dict[str, tuple[str, str]] = {
    "migrations": ("string", 'a folder, alembic.ini, django:APP or module:attribute, e.g. "migrations"'),
    "queries": ("string", f'{_FOLDER}, e.g. "queries"'),
    "python": ("strings", 'files or folders of app code, e.g. ["app"]'),
    "recorded": ("string", 'a file written by pytest --tenantdb-record, e.g. "queries.jsonl"'),
    "ignore": ("strings", 'rule codes, e.g. ["TDB107"]'),
    "select": ("strings", 'rule codes, e.g. ["TDB101", "TDB102"]'),
    "since": ("version", 'a version number, "head-N" or a step\'s name'),
    "versioning": ("string", '"auto", "user_version", "table", "alembic" or "django"'),
    "baseline": (
        "string",
        'a file written by tenantdb check --write-baseline, e.g. "tenantdb-baseline.json"',
    ),
    "dialect": ("string", '"sqlite" or "postgres"'),
    "severity": ("table", 'rule codes mapped to "error", "warning", "note" or "off"'),
    "window": ("count", "a number of app versions >= 1"),
    "base": ("string", 'module:function or an .sql file run before the first step, e.g. "app.db:create_all"'),
    "django_settings": ("string", 'a settings module, e.g. "mysite.settings"'),
}


def read_table(root: Path) -> dict[str, object]:
    """``[tool.tenantdb]`` of ``root/pyproject.toml`` (empty when there is none), validated."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{pyproject}: cannot read it ({exc}); fix the file or remove it") from exc
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(
            f"{pyproject}: tool = {toml(tool)} must be a table; write [tool.tenantdb] and the settings under it"
        )
    table = tool.get("tenantdb", {})
    if isinstance(table, list) and table and all(isinstance(item, dict) for item in table):
        raise ConfigError(
            f"{pyproject}: [[tool.tenantdb]] is an array of tables; write [tool.tenantdb] (single brackets), once"
        )
    if not isinstance(table, dict):
        raise ConfigError(
            f"{pyproject}: [tool.tenantdb] must be a table, got {toml(table)}; write [tool.tenantdb] "
            "and the settings under it"
        )
    _check_keys(pyproject, table)
    for key, value in table.items():
        kind, meaning = SCHEMA[key]
        problem = _KINDS[kind](value)
        if problem is not None:
            raise ConfigError(
                f"{pyproject}: [tool.tenantdb] {key} = {toml(value)} {problem}; expected "
                f"{_EXPECTED[kind]}: {meaning}"
            )
    return table


def _check_keys(pyproject: Path, table: dict[str, object]) -> None:
    unknown = sorted(set(table) - set(SCHEMA))
    if not unknown:
        return
    described = []
    for key in unknown:
        close = difflib.get_close_matches(key, SCHEMA, n=1)
        described.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(
        f"{pyproject}: [tool.tenantdb] has {', '.join(described)}; known keys: {', '.join(sorted(SCHEMA))}"
    )


def toml(value: object) -> str:
    """``value`` as it is written in pyproject.toml (``true``, ``"abc"``, ``{}``), for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {toml(item)}" for key, item in value.items()) + "}"
    return str(value)


def _kind(value: object) -> str:
    """What a TOML value is, in words."""
    for python_type, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a table"),
    ):
        if isinstance(value, python_type):
            return name
    return "a date or time"


def _string(value: object) -> str | None:
    return None if isinstance(value, str) else f"is {_kind(value)}"


def _strings(value: object) -> str | None:
    if not isinstance(value, list):
        return f"is {_kind(value)}"
    wrong = next((item for item in value if not isinstance(item, str)), None)
    return None if wrong is None else f"has {_kind(wrong)} item"


def _version(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return "is a negative number"
    return None if isinstance(value, str | int) and not isinstance(value, bool) else f"is {_kind(value)}"


def _count(value: object) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) else f"is {_kind(value)}"


def _table(value: object) -> str | None:
    return None if isinstance(value, dict) else f"is {_kind(value)}"


_KINDS: dict[str, Callable[[object], str | None]] = {
    "string": _string,
    "strings": _strings,
    "version": _version,
    "count": _count,
    "table": _table,
}
_EXPECTED = {
    "string": "a string",
    "strings": "a list of strings",
    "version": "a version",
    "count": "an integer",
    "table": "a table",
}
