"""Migration coverage: which lines and branches of the Python steps the drawn tenants reached.

A backfill's ``if count:`` branch that only empty tenants took, an ``except`` no tenant hit: the
property checks pass, and nothing says the data never went there. With ``tenantdb_step_coverage``
on, coverage.py measures the Python steps (SQL-free steps, Alembic revisions, Django migrations,
``module:attribute`` callables) and the registered app code while the built-in checks run, and
the terminal summary lists what no drawn tenant reached. A number is a minimum percentage that
fails the run below it. coverage.py nests: a suite that is itself measured (``coverage run -m
pytest``) pauses while the steps are measured and resumes after.
"""

from __future__ import annotations

import ast
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_tenantdb.errors import ConfigError
from pytest_tenantdb.migrations import MigrationSet, SqlStep

if TYPE_CHECKING:
    import coverage


def parse_setting(raw: str) -> float | None:
    """``off`` -> None; ``on`` -> 0 (report only); ``80`` -> fail under 80 %."""
    text = raw.strip().lower()
    if text in ("", "off", "false", "no", "0"):
        return None
    if text in ("on", "true", "yes", "report"):
        return 0.0
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        value = -1.0
    if not 0 < value <= 100:
        raise ConfigError(f"step_coverage must be off, on, or a minimum percentage (1-100), not {raw!r}")
    return value


def measured_files(migrations: MigrationSet, app_code: Iterable[object]) -> list[str]:
    """The Python-driven steps' files and the files of registered app code functions."""
    files = {str(Path(step.path).resolve()) for step in migrations if not isinstance(step, SqlStep)}
    for fn in app_code:
        code = getattr(fn, "__code__", None)
        if code is not None:
            files.add(str(Path(code.co_filename).resolve()))
    return sorted(f for f in files if f.endswith(".py") and Path(f).is_file())


@dataclass
class StepCoverage:
    """One measurement over the whole run of the built-in checks."""

    files: list[str]
    minimum: float
    _coverage: coverage.Coverage | None = None
    _report: tuple[str, float] | None = field(default=None)

    def start(self) -> None:
        if self._coverage is not None or not self.files:
            return
        import coverage

        self._coverage = coverage.Coverage(
            data_file=None, branch=True, include=self.files, config_file=False, messages=False
        )
        self._coverage.start()

    def finish(self) -> tuple[str, float] | None:
        """Stop measuring; the report (lines and branches not reached per file) and the total."""
        if self._coverage is None:
            return None
        if self._report is None:
            self._coverage.stop()
            self._report = _report(self._coverage, self.files)
        return self._report

    def below_minimum(self) -> bool:
        found = self.finish()
        return bool(self.minimum) and found is not None and found[1] < self.minimum


def _loaded_lines(path: str) -> set[int]:
    """Lines that run when a step's module is loaded (imports, ``def``, constants): they ran at
    collection, before the measurement started, and are no news about the drawn data."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return set()
    lines: set[int] = set()
    for node in tree.body:
        lines.add(node.lineno)
        for decorator in getattr(node, "decorator_list", []):
            lines.add(decorator.lineno)
        if isinstance(node, ast.ClassDef):  # a Django Migration class: its body runs at load too
            lines |= {n.lineno for n in ast.walk(node) if isinstance(n, ast.stmt)}
    return lines


def _report(measured: coverage.Coverage, files: list[str]) -> tuple[str, float]:
    """Per step file, the lines and branches no drawn tenant reached, and the total percentage
    (from coverage.py's JSON report, load-time lines taken out)."""
    from coverage.exceptions import CoverageException

    with tempfile.TemporaryDirectory(prefix="tenantdb-cov-") as folder:
        target = Path(folder) / "coverage.json"
        try:
            measured.json_report(outfile=str(target), include=files)
        except CoverageException as exc:  # nothing measured: no Python step ran
            return f"no Python step ran under the checks ({exc})", 100.0
        data = json.loads(target.read_text(encoding="utf-8"))
    lines, reached, total = [], 0, 0
    for path, found in sorted(data.get("files", {}).items()):
        loaded = _loaded_lines(path)
        executed = set(found.get("executed_lines", [])) | (loaded & set(found.get("missing_lines", [])))
        missing = sorted(set(found.get("missing_lines", [])) - loaded)
        branches = [tuple(b) for b in found.get("missing_branches", []) if b[0] not in loaded]
        done = len(found.get("executed_branches", []))
        reached += len(executed) + done
        total += len(executed) + len(missing) + done + len(branches)
        gaps = [f"line {n}" for n in missing] + [f"branch {a}->{b if b > 0 else 'exit'}" for a, b in branches]
        lines.append(f"{path}: " + (", ".join(gaps) if gaps else "every line and branch reached"))
    percent = 100.0 * reached / total if total else 100.0
    return "\n".join(
        [*lines, f"total: {percent:.0f} % of the lines and branches of Python steps reached"]
    ), percent
