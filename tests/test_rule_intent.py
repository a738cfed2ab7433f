"""The rules judge what a step means to do: intent read from its statements (and, for Python
steps, from its own source), one finding per cause, each citing the statement that causes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_tenantdb.cli import main


def _check(tmp_path: Path, capsys: pytest.CaptureFixture[str], **steps: str) -> list[tuple[str, int, str]]:
    (tmp_path / "migrations").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text('[tool.tenantdb]\nmigrations = "migrations"\nsince = 1\n')
    for name, text in steps.items():
        (tmp_path / "migrations" / name.replace("__", ".")).write_text(text)
    main(["check", str(tmp_path), "--format", "json"])
    return [(f["code"], f["line"], f["subject"]) for f in json.loads(capsys.readouterr().out)]


BASE = "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);\nCREATE INDEX ix_t_a ON t (a);\n"
REBUILD = (
    "    conn.execute('CREATE TABLE t_tmp (id INTEGER PRIMARY KEY, a TEXT, b TEXT)')\n"
    "    conn.execute('INSERT INTO t_tmp SELECT id, a, b FROM t')\n"
    "    conn.execute('DROP TABLE t')\n"
    "    conn.execute('ALTER TABLE t_tmp RENAME TO t')\n"
)


def test_a_python_step_that_names_the_index_it_drops_loses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _check(
        tmp_path,
        capsys,
        **{"0001_t__sql": BASE, "0002_rebuild__py": "def up(conn):\n    # drop_index('ix_t_a')\n" + REBUILD},
    )
    assert found == []


def test_a_python_step_that_silently_loses_an_index_is_flagged_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _check(tmp_path, capsys, **{"0001_t__sql": BASE, "0002_rebuild__py": "def up(conn):\n" + REBUILD})
    assert found == [("TDB114", 4, "index ix_t_a")]  # the DROP TABLE that took the index with it


def test_a_unique_constraint_does_the_job_of_a_unique_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _check(
        tmp_path,
        capsys,
        **{
            "0001_t__sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);\nCREATE UNIQUE INDEX uq_t_a ON t (a);\n",
            "0002_rebuild__sql": "CREATE TABLE t_tmp (id INTEGER PRIMARY KEY, a TEXT, UNIQUE (a));\n"
            "INSERT INTO t_tmp SELECT id, a FROM t;\nDROP TABLE t;\nALTER TABLE t_tmp RENAME TO t;\n",
        },
    )
    assert found == []


def test_a_foreign_key_follows_the_table_it_references_when_renamed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _check(
        tmp_path,
        capsys,
        **{
            "0001_t__sql": "CREATE TABLE p (id INTEGER PRIMARY KEY);\n"
            "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p (id));\n",
            "0002_rename__sql": "ALTER TABLE p RENAME TO parent;\n",
        },
    )
    assert found == [("TDB103", 1, "table p")]  # not also a lost and an added foreign key on c


def test_a_rebuild_that_forgets_a_check_or_foreign_key_by_hand_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _check(
        tmp_path,
        capsys,
        **{
            "0001_t__sql": "CREATE TABLE p (id INTEGER PRIMARY KEY);\n"
            "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p (id), n INT CHECK (n > 0));\n",
            "0002_rebuild__sql": "CREATE TABLE c_tmp (id INTEGER PRIMARY KEY, p_id INTEGER, n INT);\n"
            "INSERT INTO c_tmp SELECT id, p_id, n FROM c;\nDROP TABLE c;\nALTER TABLE c_tmp RENAME TO c;\n",
        },
    )
    assert sorted(found) == [("TDB114", 1, "check c: n > 0"), ("TDB114", 1, "foreign key c(p_id)")]


def test_widening_a_unique_key_and_a_check_is_safe_narrowing_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = "CREATE TABLE e (a INT, b INT, n INT CHECK (n BETWEEN 1 AND 10), UNIQUE (a));\n"
    wider = (
        "CREATE TABLE e_tmp (a INT, b INT, n INT CHECK (n BETWEEN 0 AND 100), UNIQUE (a, b));\n"
        "INSERT INTO e_tmp SELECT a, b, n FROM e;\nDROP TABLE e;\nALTER TABLE e_tmp RENAME TO e;\n"
    )
    assert _check(tmp_path / "wider", capsys, **{"0001_e__sql": before, "0002_w__sql": wider}) == []
    narrower = wider.replace("BETWEEN 0 AND 100", "BETWEEN 2 AND 5").replace("UNIQUE (a, b)", "UNIQUE (b)")
    found = _check(tmp_path / "narrower", capsys, **{"0001_e__sql": before, "0002_n__sql": narrower})
    assert sorted(found) == [("TDB108", 1, "unique e(b)"), ("TDB109", 1, "check e: n between 2 and 5")]


def test_a_broken_query_is_reported_once_whatever_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "queries").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.tenantdb]\nmigrations = "migrations"\nqueries = "queries"\nwindow = 3\n'
    )
    for n in range(1, 5):
        (tmp_path / "migrations" / f"000{n}_s.sql").write_text(
            f"CREATE TABLE t{n} (id INTEGER PRIMARY KEY);\n"
        )
    (tmp_path / "queries" / "0001.sql").write_text("-- name: typo\nSELECT id FROM t1_typo;\n")
    main(["check", str(tmp_path), "--format", "json"])
    found = json.loads(capsys.readouterr().out)
    assert [(f["code"], f["subject"]) for f in found] == [("TDB205", "query typo")]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        # a backfill of the column the step adds is not an unbounded write; of an old one it is
        ("ALTER TABLE t ADD COLUMN c TEXT;\nUPDATE t SET c = '';\n", []),
        ("UPDATE t SET a = '';\n", [("TDB112", 1, "statement UPDATE t SET a = ''")]),
        # a move: the rows are copied elsewhere, then deleted
        (
            "CREATE TABLE t_old (id INTEGER, a TEXT);\nINSERT INTO t_old SELECT id, a FROM t;\nDELETE FROM t;\n",
            [],
        ),
        # a UNIQUE on a column the step fills itself can be violated; after a DELETE it is the safe way
        (
            "ALTER TABLE t ADD COLUMN c TEXT;\nUPDATE t SET c = lower(a) WHERE a IS NOT NULL;\n"
            "CREATE UNIQUE INDEX uq_t_c ON t (c);\n",
            [("TDB108", 3, "unique t(c)")],
        ),
        ("DELETE FROM t WHERE id > 1;\nCREATE UNIQUE INDEX uq_t_a ON t (a);\n", []),
        # a table dropped and created again has no rows left to violate anything (it lost its index)
        (
            "DROP TABLE t;\nCREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT UNIQUE CHECK (a <> ''), b TEXT);\n",
            [("TDB114", 1, "index ix_t_a")],
        ),
    ],
    ids=["backfill", "rewrite", "move", "fill-then-unique", "dedupe-then-unique", "emptied"],
)
def test_what_a_step_does_to_the_data_decides(
    step: str, expected: list[tuple[str, int, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _check(tmp_path, capsys, **{"0001_t__sql": BASE, "0002_s__sql": step}) == expected
