"""Reading ``[tool.tenantdb]`` and pytest's own settings out of a project's files.

``[tool.tenantdb]`` is the one place a project's settings live (``settings.py`` declares its keys
and reads them); this module only finds the table, checks its shape and says what is wrong in
TOML's words. It also finds pytest's ``cache_dir``, so the CLI and the plugin share one cache.
"""

from __future__ import annotations

import configparser
import difflib
import json
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

from pytest_tenantdb.errors import ConfigError


def read_table(root: Path) -> dict[str, object]:
    """``[tool.tenantdb]`` of ``root/pyproject.toml`` (empty when there is none); its shape checked,
    its keys and values are checked by ``settings.Settings.load``."""
    pyproject = root / "pyproject.toml"
    document = _document(pyproject)
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
    return table


def _document(pyproject: Path) -> dict[str, object]:
    if not pyproject.is_file():
        return {}
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{pyproject}: cannot read it ({exc}); fix the file or remove it") from exc


def declares_tenantdb(pyproject: Path) -> bool:
    """Whether ``pyproject`` has ``[tool.tenantdb]``, or cannot be read (then it is the project,
    and reading it says what is wrong with it, not a folder further up)."""
    try:
        tool = _document(pyproject).get("tool", {})
    except ConfigError:
        return True
    return not isinstance(tool, dict) or "tenantdb" in tool  # tool = 5: the project's own mistake


def unknown_keys(where: str, keys: Iterable[str], known: Iterable[str]) -> None:
    """A ConfigError naming each unknown key with the closest known one ("did you mean")."""
    names = sorted(known)
    unknown = sorted(set(keys) - set(names))
    if not unknown:
        return
    described = []
    for key in unknown:
        close = difflib.get_close_matches(key, names, n=1)
        described.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(f"{where} has {', '.join(described)}; known keys: {', '.join(names)}")


def pytest_cache_dir(root: Path) -> Path:
    """pytest's cache folder of the project at ``root``: its ``cache_dir`` ini setting (in
    pytest.ini, pyproject.toml, tox.ini or setup.cfg, found as pytest finds them) or
    ``.pytest_cache``; ``$VARS`` and ``~`` expanded, relative to ``root`` as pytest does."""
    value = _pytest_ini(root).get("cache_dir")
    if not value:
        return root / ".pytest_cache"
    expanded = Path(os.path.expanduser(os.path.expandvars(str(value))))
    return expanded if expanded.is_absolute() else root / expanded


def _pytest_ini(root: Path) -> dict[str, object]:
    """pytest's ini values of ``root`` from the first file pytest would use there."""
    for name in ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"):
        values = pytest_ini_values(root / name)
        if values is not None:
            return values
    return {}


def pytest_ini_values(path: Path) -> dict[str, object] | None:
    """The pytest settings written in ``path`` (pytest.ini's ``[pytest]``, pyproject.toml's
    ``[tool.pytest.ini_options]``, tox.ini's ``[pytest]``, setup.cfg's ``[tool:pytest]``); None
    when the file has none, so pytest would not use it."""
    if path.suffix == ".toml":
        tool = _document(path).get("tool", {})
        pytest_table = tool.get("pytest", {}) if isinstance(tool, dict) else {}
        options = pytest_table.get("ini_options") if isinstance(pytest_table, dict) else None
        return options if isinstance(options, dict) else None
    if not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError, OSError):
        return None  # pytest reports its own ini file's errors
    section = "tool:pytest" if path.name == "setup.cfg" else "pytest"
    if not parser.has_section(section):
        return {} if path.name in ("pytest.ini", ".pytest.ini") else None
    return dict(parser.items(section))


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


def kind_of(value: object) -> str:
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
