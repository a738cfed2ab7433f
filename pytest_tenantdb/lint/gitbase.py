"""``tenantdb check --base REF``: the gate for a pull request.

Only steps that are new since REF are linted, and the app queries of REF are the old code
(the version still serving tenants when the new steps are released). Everything is read through
``git``; the working tree is never touched.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pytest_tenantdb.errors import ConfigError
from pytest_tenantdb.queries import Query, QueryFolder, python_queries

_VERSION = re.compile(r"^(\d+)_")


def _git(root: Path, *args: str) -> str:
    try:
        run = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ConfigError(f"--base needs git ({exc})") from exc
    if run.returncode != 0:
        raise ConfigError(f"git {' '.join(args)}: {run.stderr.strip() or 'failed'}")
    return run.stdout


def repository_root(path: Path) -> Path:
    """The top folder of the git repository holding ``path`` (``path`` itself outside git):
    what paths in reports are relative to, as GitHub and SARIF viewers expect."""
    try:
        run = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return path
    return Path(run.stdout.strip()).resolve() if run.returncode == 0 and run.stdout.strip() else path


def base_head(root: Path, ref: str, migrations: Path) -> int:
    """The newest migration version at ``ref`` (0 when the folder did not exist there)."""
    _git(root, "rev-parse", "--verify", f"{ref}^{{commit}}")
    prefix = _git(root, "rev-parse", "--show-prefix").strip()
    folder = (prefix + str(migrations.relative_to(root))).rstrip("/") + "/"
    names = (
        _git(root, "ls-tree", "--full-tree", "--name-only", f"{ref}:{folder}")
        if _exists(root, ref, folder)
        else ""
    )
    versions = [int(m[1]) for name in names.splitlines() if (m := _VERSION.match(name))]
    return max(versions, default=0)


def _exists(root: Path, ref: str, path: str) -> bool:
    return (
        subprocess.run(
            ["git", "-C", str(root), "cat-file", "-e", f"{ref}:{path}"], capture_output=True, check=False
        ).returncode
        == 0
    )


def base_python(root: Path, ref: str, paths: tuple[Path, ...]) -> list[Query]:
    """SQL literals of the Python files under ``paths`` as they are at ``ref``."""
    prefix = _git(root, "rev-parse", "--show-prefix").strip()
    found: list[Query] = []
    for path in paths:
        spec = prefix + str(path.relative_to(root))
        for name in _git(root, "ls-tree", "--full-tree", "-r", "--name-only", ref, "--", spec).splitlines():
            if name.endswith(".py"):
                found += python_queries(root / name[len(prefix) :], _git(root, "show", f"{ref}:{name}"))
    return found


def base_queries(root: Path, ref: str, queries: Path, workdir: Path) -> QueryFolder | None:
    """The queries folder as it is at ``ref``, copied out of git into ``workdir``."""
    prefix = _git(root, "rev-parse", "--show-prefix").strip()
    folder = (prefix + str(queries.relative_to(root))).rstrip("/") + "/"
    if not _exists(root, ref, folder):
        return None
    target = workdir / "queries"
    target.mkdir()
    for name in _git(root, "ls-tree", "--full-tree", "--name-only", f"{ref}:{folder}").splitlines():
        if name.endswith(".sql"):
            (target / name).write_text(_git(root, "show", f"{ref}:{folder}{name}"), encoding="utf-8")
    return QueryFolder(target)


def base_tree(root: Path, ref: str, workdir: Path) -> Path:
    """The project folder ``root`` as it is at ``ref``, copied out of git into ``workdir``
    (``git archive``; the working tree is never touched)."""
    import io
    import tarfile

    _git(root, "rev-parse", "--verify", f"{ref}^{{commit}}")
    prefix = _git(root, "rev-parse", "--show-prefix").strip()
    try:
        run = subprocess.run(
            # from the top: git refuses `REF:sub/` from inside sub/ ("cwd is untracked")
            [
                "git",
                "-C",
                str(repository_root(root)),
                "archive",
                "--format=tar",
                f"{ref}:{prefix}" if prefix else ref,
            ],
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise ConfigError(f"--base needs git ({exc})") from exc
    if run.returncode != 0:
        raise ConfigError(f"git archive {ref}: {run.stderr.decode(errors='replace').strip() or 'failed'}")
    with tarfile.open(fileobj=io.BytesIO(run.stdout)) as archive:
        archive.extractall(workdir, filter="data")
    return workdir
