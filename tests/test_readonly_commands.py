"""Commands that only read never create a file, a database or a schema: `tables`,
`quarantine`, `reconcile` without `--repair`, and `serve` (one line, exit 2, instead)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import _admin
from helpers import (
    assert_one_line_error,
    execute_sql,
    free_port,
    receipt,
    run_coffeeshop,
    wait_for_health,
    write_lines,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from coffeeshop.errors import DatabaseMissing
from coffeeshop.store import Store

run = functools.partial(run_coffeeshop, log_level="DEBUG")


def read_only_commands(source: Path) -> list[list[str]]:
    return [
        ["tables"],
        ["quarantine"],
        ["quarantine", "--raw"],
        ["reconcile", "--source", str(source)],
    ]


def mysql_tables(url: str) -> list[str]:
    with _admin() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (make_url(url).database,),
        )
        return sorted(row[0] for row in cur.fetchall())


def mysql_databases() -> set[str]:
    with _admin() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        return {row[0] for row in cur.fetchall()}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "receipts.jsonl"
    write_lines(path, [receipt(1), receipt(2)])
    return path


def test_a_missing_sqlite_file_is_one_line_and_never_created(tmp_path: Path, source: Path) -> None:
    for args in read_only_commands(source):
        result = run(*args, "--db", f"sqlite:///{tmp_path / 'typo.db'}", cwd=tmp_path)
        assert_one_line_error(result, "typo.db does not exist")
        assert "creates nothing" in result.stderr
    # the default database, from a folder that has none (`coffeeshop quarantine` in the wrong
    # folder used to leave an analysis.db behind)
    for args in read_only_commands(source):
        assert_one_line_error(run(*args, cwd=tmp_path), "analysis.db does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["receipts.jsonl"]


def test_a_file_that_is_not_a_coffeeshop_database_is_left_as_it_was(
    tmp_path: Path, source: Path
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    for args in read_only_commands(source):
        result = run(*args, "--db", f"sqlite:///{empty}", cwd=tmp_path)
        assert_one_line_error(result, "has no coffeeshop tables")
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "receipts.jsonl"]


@pytest.mark.mariadb
def test_a_mariadb_database_without_the_schema_gets_none(
    tmp_path: Path, source: Path, mysql_url: str
) -> None:
    for args in read_only_commands(source):
        result = run(*args, "--db", mysql_url, cwd=tmp_path)
        assert_one_line_error(result, "has no coffeeshop tables")
    assert mysql_tables(mysql_url) == []


@pytest.mark.mariadb
def test_an_unknown_mariadb_database_is_one_line(tmp_path: Path, source: Path) -> None:
    from conftest import MYSQL_URL, require_mysql

    require_mysql()
    name = "cs_test_no_such_database"
    url = make_url(MYSQL_URL).set(database=name).render_as_string(hide_password=False)
    for args in read_only_commands(source):
        assert_one_line_error(run(*args, "--db", url, cwd=tmp_path), "Unknown database")
    assert name not in mysql_databases()


def test_reconcile_repair_still_creates_what_it_needs(tmp_path: Path, source: Path) -> None:
    """The writing commands keep creating the database: `--repair` is one of them."""
    db = f"sqlite:///{tmp_path / 'new.db'}"
    result = run("reconcile", "--repair", "--source", str(source), "--db", db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "repaired" in result.stdout
    assert run("tables", "--db", db, cwd=tmp_path).returncode == 0


def test_a_read_only_store_cannot_write(db_url: str) -> None:
    with Store(db_url) as store:
        store.upgrade()
    with Store(db_url, read_only=True) as store:
        assert store.require_schema() >= 1
        with pytest.raises(SQLAlchemyError):
            execute_sql(store, "DELETE FROM cs_receipts")
        with pytest.raises(RuntimeError):
            store.upgrade()


def test_a_read_only_store_reports_a_missing_schema(db_url: str) -> None:
    with Store(db_url, read_only=True) as store, pytest.raises(DatabaseMissing):
        store.require_schema()


# -- serve -----------------------------------------------------------------------------------------


def serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    env = {**os.environ, "COFFEESHOP_LOG_LEVEL": "INFO"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "coffeeshop", "serve", "--port", str(port), *args],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, port, log


def test_serve_refuses_a_missing_sqlite_file(tmp_path: Path) -> None:
    result = run(
        "serve",
        "--db",
        f"sqlite:///{tmp_path / 'typo.db'}",
        "--port",
        str(free_port()),
        cwd=tmp_path,
    )
    assert_one_line_error(result, "typo.db does not exist")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.mariadb
def test_serve_refuses_a_mariadb_database_without_the_schema(
    tmp_path: Path, mysql_url: str
) -> None:
    result = run("serve", "--db", mysql_url, "--port", str(free_port()), cwd=tmp_path)
    assert_one_line_error(result, "has no coffeeshop tables")
    assert mysql_tables(mysql_url) == []


def test_serve_with_wait_starts_once_a_first_sync_created_the_tables(
    tmp_path: Path, source: Path
) -> None:
    """Started together with the first sync (a unit file, a compose file), `serve --wait S`
    waits for the tables the sync creates."""
    db = f"sqlite:///{tmp_path / 'late.db'}"
    process, port, log = serve(tmp_path, "--db", db, "--wait", "60")
    try:
        deadline = time.monotonic() + 60
        while "waiting up to 60 s" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        assert not (tmp_path / "late.db").exists()  # waiting has created nothing
        synced = run("sync", "--source", str(source), "--db", db, cwd=tmp_path)
        assert synced.returncode == 0, synced.stderr
        wait_for_health(process, port, log.read_text, deadline=time.monotonic() + 60)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "the database has its tables now; starting" in log.read_text()


def test_serve_with_wait_gives_up_with_one_line(tmp_path: Path) -> None:
    result = run(
        "serve", "--db", f"sqlite:///{tmp_path / 'never.db'}", "--wait", "1",
        "--port", str(free_port()), cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(result, "never.db does not exist")
    assert list(tmp_path.iterdir()) == []
