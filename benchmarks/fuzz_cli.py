"""``python -m benchmarks.fuzz_cli --size full``: thousands of ``tenantdb`` invocations on random
projects, asserting the command's promise (docs/reference/cli.md): no Python traceback, an exit
code from the documented set, never 70 (an internal error is a bug), exit 2 always with a
message, exit 1 only for findings of ``check``.

A case is random argv (built from the real subcommands and options, their right and wrong values,
and garbage), a random pyproject.toml (valid-ish TOML with wrong types and unknown keys, broken
TOML, non-UTF-8 bytes) and a random migrations folder (bad names, duplicate versions, non-UTF-8,
binary, empty files, symlinks). Cases run in-process through ``main(argv)`` after a chdir into
the project (fast); every ``SUBPROCESS_EVERY``-th also through the real console script.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pytest_tenantdb.cli import main
from pytest_tenantdb.exits import Exit
from pytest_tenantdb.lint.rules import RULES
from pytest_tenantdb.settings import BY_NAME as SCHEMA

SIZES = {"smoke": 50, "full": 5000}
SUBPROCESS_EVERY = 50
DOCUMENTED = {int(code) for code in Exit}
OS_ERROR_TAIL = "; check that path and try again"  # exits.py's words for an OSError it did not expect
CONSOLE_SCRIPT = Path(sys.executable).parent / "tenantdb"


@dataclass(frozen=True)
class Case:
    """One invocation: its argv and the project folder it runs in."""

    argv: tuple[str, ...]
    pyproject: bytes | None = None
    files: tuple[tuple[str, bytes], ...] = ()  # path inside the project -> content
    links: tuple[tuple[str, str], ...] = ()  # symlink inside the project -> its target, as written

    def describe(self) -> str:
        return json.dumps(
            {
                "argv": list(self.argv),
                "pyproject": None if self.pyproject is None else self.pyproject.decode("utf-8", "replace"),
                "files": {name: content.decode("utf-8", "replace")[:80] for name, content in self.files},
                "links": dict(self.links),
            },
            ensure_ascii=False,
            indent=1,
        )


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: int | None  # None: an exception escaped main()
    out: str
    err: str
    how: str  # "in-process" or "subprocess"


def problems(outcome: Outcome) -> list[str]:
    """What breaks the command's promise in ``outcome`` (empty when it kept it)."""
    found = []
    code, text = outcome.code, outcome.out + outcome.err
    debug = "--debug" in outcome.case.argv
    if code is None:
        found.append(f"an exception escaped main(): {outcome.err.strip().splitlines()[-1:]}")
    elif code not in DOCUMENTED:
        found.append(f"exit code {code} is not documented")
    if code == Exit.INTERNAL:
        found.append("internal error (exit 70)")
    if ("Traceback" in text and not (debug and code == Exit.INTERNAL)) or "Exception ignored" in text:
        found.append("a Python traceback in the output")
    if code == Exit.USAGE and not outcome.err.strip():
        found.append("exit 2 without a message on stderr")
    argv = outcome.case.argv
    gates = ("check", "scan", "rehearse")
    if code == Exit.FINDINGS and (not any(g in argv for g in gates) or not outcome.out.strip()):
        found.append("exit 1 that is not findings of check")  # or of scan, or a failure of rehearse
    return found


# --- running one case -----------------------------------------------------------------------


@contextlib.contextmanager
def _project(case: Case) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="tenantdb-fuzz-"))
    try:
        if case.pyproject is not None:
            (root / "pyproject.toml").write_bytes(case.pyproject)
        for name, content in case.files:  # a file where a folder should be wins over that folder
            target = root / name
            with contextlib.suppress(OSError):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
        for name, goal in case.links:
            with contextlib.suppress(OSError):
                (root / name).symlink_to(goal)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_in_process(case: Case) -> Outcome:
    """``main(argv)`` in the project folder, with stdout / stderr captured and the process's
    working directory, environment and sys.path put back afterwards."""
    out, err = io.StringIO(), io.StringIO()
    cwd, environ, path = os.getcwd(), dict(os.environ), list(sys.path)
    code: int | None
    with _project(case) as root:
        os.chdir(root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = int(main(list(case.argv)))
        except BaseException as exc:
            code, err = None, io.StringIO(err.getvalue() + f"\n{type(exc).__name__}: {exc}")
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(environ)
            sys.path[:] = path
    return Outcome(case, code, out.getvalue(), err.getvalue(), "in-process")


def run_subprocess(case: Case) -> Outcome:
    """The installed console script (``python -m pytest_tenantdb`` when there is none)."""
    command = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "pytest_tenantdb"]
    with _project(case) as root:
        run = subprocess.run(
            [*command, *case.argv], cwd=root, capture_output=True, text=True, errors="replace", check=False
        )
    return Outcome(case, run.returncode, run.stdout, run.stderr, "subprocess")


# --- random cases ---------------------------------------------------------------------------
# Plain functions of a random.Random: uniform and seedable for the full run, and hypothesis drives
# the same functions in the suite through st.randoms(), so it can replay and shrink a failure.

# Step versions up to 20 digits (MigrationSet.gaps reports ranges, so a huge version costs nothing).
MAX_VERSION = 10**20 - 1
SQL = [
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);",
    "ALTER TABLE users ADD COLUMN name TEXT;",
    "ALTER TABLE users DROP COLUMN name;",
    "DROP TABLE users;",
    "CREATE INDEX ix ON users (email);",
    "-- migrate:up\nCREATE TABLE t (x);\n-- migrate:down\nDROP TABLE t;\n",
    "-- migrate:down\nDROP TABLE t;\n",
    "SELECT 1 FROM nowhere;",
    "CREATE TABLE t (x",
    "BEGIN; CREATE TABLE u (y); COMMIT;",
    "PRAGMA foreign_key_check;",
    "VACUUM;",
]
PYTHON = [
    "def up(conn):\n    conn.execute('CREATE TABLE p (x)')\n",
    "def up(conn):\n    pass\n\ndef down(conn):\n    pass\n",
    "def down(conn):\n    pass\n",
    "up = 5\n",
    "x = (\n",
    "raise RuntimeError('boom at import')\n",
    "import a_module_that_does_not_exist\n",
    "raise SystemExit(3)\n",
    "def up(conn):\n    raise ValueError('boom in up')\n",
    "def up(conn):\n    raise SystemExit(4)\n",
]
ODD_BYTES = [
    b"",
    b"\xff\xfe\x00",
    b"\xef\xbb\xbfCREATE TABLE bom (x);",
    b"CREATE TABLE n (x);\x00",
    b"\x00" * 64,
]
WORDS = ["users", "add_name", "x", "a-b", "with space", "\u00fcn\u00ef", ""]
EXTENSIONS = [".sql", ".sql", ".py", ".up.sql", ".down.sql", ".txt", ".SQL", ""]
ODD_NAMES = ["abc.sql", "0001.sql", "_helper.py", ".hidden.sql", "README.md", "__init__.py", "1_a.sql"]
FOLDERS = ["migrations", "migrations", "migrations", "migrations/sub", "queries", "m"]
IN_PLACE_OF_FOLDERS = [".pytest_cache", "migrations", "queries", "b.json", "w"]
LINK_TARGETS = ["missing.sql", "0001_users.sql", ".", "../pyproject.toml", "/nonexistent/x.sql", "loop"]
BASE = (
    ("migrations/0001_users.sql", SQL[0].encode()),
    ("migrations/0002_name.sql", SQL[1].encode()),
    ("queries/0001.sql", b"-- name: one\nSELECT id, email FROM users WHERE id = ?;\n"),
    ("queries/0002.sql", b"-- name: two\nSELECT name FROM users;\n"),
)
GOOD_PYPROJECTS = [None, b'[tool.tenantdb]\nmigrations = "migrations"\nqueries = "queries"\n']
ODD_PYPROJECTS = [
    b"tool = 5\n",
    b"[tool]\ntenantdb = 5\n",
    b"[[tool.tenantdb]]\nsince = 1\n",
    b"[tool.tenantdb\n",
    b'[tool.tenantdb]\nmigrations = "migrations/sub"\n',
    b"\xff\xfe[tool.tenantdb]\n",
    b"",
]
PATHS = ["migrations", "migrations/sub", "queries", "missing", "", ".", "pyproject.toml", "m"]
STRINGS = [
    *PATHS,
    *("os:path", "json:dumps", "django:auth", "alembic.ini", "x.sql", "app.db:create_all"),
    *("head", "head-1", "head-99", "oldest", "abc", "TDB101", "tdb107", "sqlite", "postgres"),
    *("auto", "table", "alembic", "error", "off", "b.json", "a_settings_module_that_does_not_exist"),
]
TYPOS = ["sinse", "migration", "Since", "tool", "", "x y", "dialects"]
RULE_CODES = sorted(RULES)
FILE_ARGS = ["b.json", "missing/b.json", ".", "migrations", "pyproject.toml", "out/"]
CHECK_OPTIONS: dict[str, list[str]] = {
    "--format": ["text", "json", "github", "sarif", "junit", "xml"],
    "--baseline": FILE_ARGS,
    "--write-baseline": FILE_ARGS,
    "--since": ["0", "1", "head", "head-1", "HEAD-1", "head~1", "head-99", "abc", "-1", "", "users"],
    "--ignore": [*RULE_CODES[:3], "TDB999", "tdb102", ""],
    "--base": ["HEAD", "main", "", "-x"],
    "--debug": [],
}
DEMO_OPTIONS: dict[str, list[str]] = {
    "--count": ["1", "2", "3", "0", "-1", "x"],  # small: the fuzzer tests the command line, not seeding
    "--workers": ["1", "1", "0", "x"],
    "--seed": ["0", "7", "-1", "x", "99999999999999999999"],
    "--workdir": ["w", "w/deep", "pyproject.toml", "migrations", "."],
    "--versioning": ["auto", "user_version", "table", "alembic", "x"],
    "--json": [],
    "--html": ["r.html", "deep/r.html", "migrations", "", "pyproject.toml/r.html"],
}
SCAN_OPTIONS: dict[str, list[str]] = {
    "--pattern": ["*.db", "*", "*.sql", "[", ""],
    "--format": ["text", "json", "x"],
    "--compare": ["semantic", "exact", "x"],
    "--busy-timeout": ["0", "1", "-1", "x", "nan"],
    "--project": [".", "missing", "pyproject.toml"],
    "--debug": [],
}
REHEARSE_OPTIONS: dict[str, list[str]] = {
    "--pattern": ["*.db", "*", "*.sql", "[", ""],
    "--project": [".", "missing", "pyproject.toml"],
    "--to": ["head", "head-1", "oldest", "empty", "1", "99", "x", ""],
    "--sample": ["1", "2", "0", "-1", "x"],
    "--seed": ["0", "7", "-1", "x"],
    "--workers": ["1", "2", "0", "x"],
    "--workdir": ["w", "w/deep", "pyproject.toml", "migrations", ".", "missing/w"],
    "--busy-timeout": ["0", "1", "-1", "x", "nan"],
    "--json": [],
    "--html": ["r.html", "deep/r.html", "migrations", "", "pyproject.toml/r.html"],
    "--debug": [],
}
WORDS_OF_ARGV = [
    "check",
    "scan",
    "rehearse",
    "versions",
    "explain",
    "demo",
    "--help",
    "-h",
    "--version",
    "--debug",
    "--",
    *CHECK_OPTIONS,
]


def garbage(rng: random.Random) -> str:
    """A word as an OS hands it over: bytes decoded with surrogateescape, never a NUL."""
    raw = bytes(rng.choice([rng.randrange(1, 256), rng.randrange(32, 127)]) for _ in range(rng.randrange(9)))
    return os.fsdecode(raw)


def _options(rng: random.Random, table: dict[str, list[str]], most: int) -> list[str]:
    words: list[str] = []
    for _ in range(rng.randrange(most + 1)):
        flag = rng.choice(list(table))
        words += [flag, rng.choice(table[flag])] if table[flag] else [flag]
    return words


def draw_argv(rng: random.Random) -> tuple[str, ...]:
    kind = rng.choice(["check", "check", "check", "versions", "explain", "demo", "scan", "rehearse", "words"])
    if kind == "check":
        path = rng.choice([[], ["."], ["."], ["missing"], ["pyproject.toml"], ["migrations"]])
        return ("check", *path, *_options(rng, CHECK_OPTIONS, 3))
    if kind == "versions":
        return ("versions", rng.choice([*PATHS, "os:path", "django:auth"]))
    if kind == "explain":
        return ("explain", rng.choice([rng.choice(RULE_CODES), rng.choice(RULE_CODES).lower(), garbage(rng)]))
    if kind == "scan":
        folder = rng.choice([".", "migrations", "queries", "missing", "pyproject.toml"])
        return ("scan", folder, *_options(rng, SCAN_OPTIONS, 3))
    if kind == "rehearse":
        folder = rng.choice([".", "migrations", "queries", "missing", "pyproject.toml"])
        return ("rehearse", folder, "--workers", "1", *_options(rng, REHEARSE_OPTIONS, 3))
    if kind == "demo":
        project = rng.choice([".", ".", "missing", "pyproject.toml"])
        return ("demo", project, "--count", "2", "--workers", "1", *_options(rng, DEMO_OPTIONS, 3))
    return tuple(rng.choice([rng.choice(WORDS_OF_ARGV), garbage(rng)]) for _ in range(rng.randrange(5)))


def draw_content(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(SQL).encode()
    if kind == 1:
        return rng.choice(PYTHON).encode()
    if kind == 2:
        return rng.choice(ODD_BYTES)
    if kind == 3:
        return rng.randbytes(rng.randrange(48))
    text = "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x110000)])) for _ in range(24))
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate makes it invalid UTF-8


def draw_step_name(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return rng.choice(ODD_NAMES)
    version = rng.choice([rng.randrange(10), rng.randrange(MAX_VERSION + 1)])
    return f"{version:0{rng.randrange(1, 7)}d}_{rng.choice(WORDS)}{rng.choice(EXTENSIONS)}"


def draw_files(rng: random.Random) -> list[tuple[str, bytes]]:
    files = []
    for _ in range(rng.randrange(1, 5)):
        if rng.random() < 0.15:  # a file where the command expects a folder
            files.append((rng.choice(IN_PLACE_OF_FOLDERS), draw_content(rng)))
        else:
            files.append((f"{rng.choice(FOLDERS)}/{draw_step_name(rng)}", draw_content(rng)))
    return files


def draw_links(rng: random.Random) -> list[tuple[str, str]]:
    links = []
    for _ in range(rng.randrange(1, 3)):
        name = f"migrations/{draw_step_name(rng)}"
        target = rng.choice(LINK_TARGETS)
        links.append((name, name.rsplit("/", 1)[1] if target == "loop" else target))
    return links


def draw_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind <= 1:
        return rng.choice(STRINGS)
    if kind == 2:
        return rng.choice([rng.randrange(-3, 12), rng.randrange(MAX_VERSION + 1)])
    if kind == 3:
        return rng.choice([0.5, -1.0, 1e308, float("inf")])
    if kind == 4:
        return rng.random() < 0.5
    if kind == 5:
        return date(2020, 1, rng.randrange(1, 29))
    if kind == 6:
        return [draw_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(["TDB101", "TDB107", "x", "a b"]): draw_value(rng, depth + 1) for _ in range(2)}


def draw_pyproject(rng: random.Random) -> bytes | None:
    kind = rng.randrange(6)
    if kind <= 2:
        keys = [rng.choice(sorted(SCHEMA)) if rng.random() < 0.8 else rng.choice(TYPOS) for _ in range(3)]
        table = {key: draw_value(rng) for key in keys[: rng.randrange(1, 4)]}
        return (
            "[tool.tenantdb]\n" + "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in table.items())
        ).encode()
    if kind == 3:
        return rng.choice(ODD_PYPROJECTS)
    if kind == 4:
        return rng.randbytes(rng.randrange(40))
    return rng.choice(GOOD_PYPROJECTS)


def draw_sane(rng: random.Random) -> Case:
    """What a user runs on a working project: it reaches the rules, the fleet and every format."""
    files = [*BASE]
    for _ in range(rng.randrange(3)):
        version, name = rng.randrange(3, 10), rng.choice(["a", "b_c", "d-e"])
        files.append((f"migrations/{version:04d}_{name}.sql", rng.choice(SQL).encode()))
    argv = rng.choice(
        [
            ("check", ".", *rng.choice([(), ("--format", rng.choice(CHECK_OPTIONS["--format"][:5]))])),
            ("check", ".", "--since", rng.choice(["0", "1", "head-1", "users"]), "--ignore", "TDB102"),
            ("check", ".", "--write-baseline", "b.json"),
            ("versions", "migrations"),
            ("demo", ".", "--count", "2", "--workers", "1"),
            ("rehearse", "migrations", "--pattern", "*", "--workers", "1", "--html", "r.html"),
        ]
    )
    return Case(argv, rng.choice(GOOD_PYPROJECTS), tuple(files))


def draw_case(rng: random.Random) -> Case:
    """A sane case, or one with one or two of its parts replaced by random ones (a fault on its own
    reaches deep, where a case random in every part mostly stops at its first bad input)."""
    sane = draw_sane(rng)
    if rng.random() < 0.25:
        return sane
    faults = set(rng.sample(["argv", "pyproject", "files", "links", "no base"], rng.choice([1, 1, 2])))
    return Case(
        draw_argv(rng) if "argv" in faults else sane.argv,
        draw_pyproject(rng) if "pyproject" in faults else sane.pyproject,
        (
            *(() if "no base" in faults else sane.files),
            *(draw_files(rng) if faults & {"files", "no base"} else ()),
        ),
        tuple(draw_links(rng)) if "links" in faults else (),
    )


def toml_value(value: object) -> str:
    """``value`` written as TOML (tomllib only reads)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(value, repr(value))
    return str(value)


# --- the run --------------------------------------------------------------------------------


@dataclass
class Tally:
    """Figures of a fuzz run, and the first outcomes that broke the promise."""

    runs: Counter[str] = field(default_factory=Counter)
    codes: Counter[int | None] = field(default_factory=Counter)
    tracebacks: int = 0
    broken: list[tuple[Outcome, list[str]]] = field(default_factory=list)
    os_errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def add(self, outcome: Outcome) -> None:
        self.runs[outcome.how] += 1
        self.codes[outcome.code] += 1
        self.tracebacks += "Traceback" in outcome.out + outcome.err
        if OS_ERROR_TAIL in outcome.err:
            self.os_errors.append(outcome.err.strip().splitlines()[-1])
        found = problems(outcome)
        if found:
            self.broken.append((outcome, found))

    def report(self) -> str:
        seconds = time.perf_counter() - self.started
        total = sum(self.runs.values())
        histogram = ", ".join(f"{code}: {n}" for code, n in sorted(self.codes.items(), key=str))
        lines = [
            f"runs: {total} ({self.runs['in-process']} in-process, {self.runs['subprocess']} "
            f"through the console script) in {seconds:.0f}s, {total / max(seconds, 1e-9):.1f} runs/s",
            f"tracebacks: {self.tracebacks} (must be 0)",
            f"broken promises: {len(self.broken)} (must be 0)",
            f"exit codes: {histogram}",
            f"exit 2 from an OSError the command did not foresee (message fit, but worth a test): "
            f"{len(self.os_errors)}",
            *(f"  {message}" for message in sorted(set(self.os_errors))[:5]),
        ]
        for outcome, found in self.broken[:5]:
            lines.append(f"- {found} {outcome.how} exit {outcome.code}\n{outcome.case.describe()}")
            lines.append(f"  stdout: {outcome.out[-500:]!r}\n  stderr: {outcome.err[-1500:]!r}")
        return "\n".join(lines)


def fuzz(runs: int, seed: int = 0, subprocess_every: int = SUBPROCESS_EVERY) -> Tally:
    """``runs`` random cases in-process, every ``subprocess_every``-th also through the console
    script. Nothing stops the run: every outcome is counted."""
    tally = Tally()
    rng = random.Random(seed)
    for number in range(1, runs + 1):
        case = draw_case(rng)
        tally.add(run_in_process(case))
        if number % subprocess_every == 0:
            tally.add(run_subprocess(case))
    return tally


def main_fuzz() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tally = fuzz(SIZES[args.size], args.seed)
    print(tally.report())
    return 1 if tally.broken or tally.tracebacks else 0


if __name__ == "__main__":
    raise SystemExit(main_fuzz())
