"""The one mapping of database errors (`store.errors`): each dialect says, from its driver's
real errors, whether a failure may pass (retried) or not (fails at once). The errors here
are produced against real servers: MariaDB, PostgreSQL (optional, as in `db_url`) and
SQLite files."""

from __future__ import annotations

import logging
import pickle
import sqlite3
import uuid
from pathlib import Path

import pytest
from conftest import MYSQL_URL, PG_URL, require_mysql
from helpers import execute_sql, free_port, mysql_connect
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from coffeeshop.errors import (
    CheckpointMoved,
    ConfigError,
    DatabaseMissing,
    SourceUnavailable,
    StoreError,
    is_transient,
)
from coffeeshop.store import Store
from coffeeshop.store.dialects import dialect_of
from coffeeshop.store.errors import store_error
from coffeeshop.store.migrations import SCHEMA_VERSION
from coffeeshop.store.readiness import check_readable
from coffeeshop.store.url import describe_error


def one_line(exc: BaseException) -> str:
    return describe_error(exc, "the test database")


def mapped(url: str, action: str, *, timeout: float = 10) -> StoreError:
    """The `StoreError` the store's mapping makes of the error `action` raises on `url`."""
    engine = create_engine(url, connect_args={"connect_timeout": 5} if "sqlite" not in url else {})
    try:
        with engine.connect() as conn:
            conn.execute(text(action))
    except SQLAlchemyError as exc:
        return store_error(exc, dialect_of(make_url(url)), one_line)
    finally:
        engine.dispose()
    raise AssertionError(f"{action!r} did not fail on {url}")


def mysql_server(database: str = "") -> str:
    require_mysql()
    return make_url(MYSQL_URL).set(database=database or None).render_as_string(False)


def pg_server(database: str) -> str:
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


# -- MariaDB ------------------------------------------------------------------------------------


def test_mariadb_unknown_database_is_permanent() -> None:
    error = mapped(mysql_server(f"cs_missing_{uuid.uuid4().hex[:8]}"), "SELECT 1")
    assert "(1049)" in str(error)
    assert isinstance(error, DatabaseMissing) and not is_transient(error)


def test_mariadb_refused_credentials_are_permanent() -> None:
    url = make_url(mysql_server()).set(username="cs_nobody", password="wrong")
    error = mapped(url.render_as_string(False), "SELECT 1")
    assert "(1045)" in str(error) and not is_transient(error)


def test_mariadb_unreachable_server_is_transient() -> None:
    url = make_url(mysql_server()).set(port=free_port())  # nothing listens there
    error = mapped(url.render_as_string(False), "SELECT 1")
    assert "(2003)" in str(error) and is_transient(error)


def test_mariadb_killed_connection_is_transient(mysql_url: str) -> None:
    engine = create_engine(mysql_url)
    try:
        with engine.connect() as conn:
            own = conn.execute(text("SELECT CONNECTION_ID()")).scalar_one()
            with mysql_connect(mysql_url, autocommit=True) as admin, admin.cursor() as cur:
                cur.execute(f"KILL {int(own)}")
            with pytest.raises(SQLAlchemyError) as caught:
                conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    error = store_error(caught.value, dialect_of(make_url(mysql_url)), one_line)
    assert any(code in str(error) for code in ("(2013)", "(2006)", "(4031)")), str(error)
    assert is_transient(error)


def test_mariadb_lock_wait_timeout_is_transient(mysql_url: str) -> None:
    with mysql_connect(mysql_url, autocommit=True) as setup, setup.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT) ENGINE=InnoDB")
        cur.execute("INSERT INTO t VALUES (1, 0)")
    with mysql_connect(mysql_url) as holder, holder.cursor() as cur:
        cur.execute("SELECT n FROM t WHERE id = 1 FOR UPDATE")  # holds the row lock
        error = mapped(
            mysql_url,
            "SET STATEMENT innodb_lock_wait_timeout=1 FOR UPDATE t SET n = 1 WHERE id = 1",
        )
        holder.rollback()
    assert "(1205)" in str(error) and is_transient(error)


# -- PostgreSQL (optional, as the `db_url` fixture) ---------------------------------------------


def test_postgresql_unknown_database_is_permanent(pg_url: str) -> None:
    error = mapped(pg_server(f"cs_missing_{uuid.uuid4().hex[:8]}"), "SELECT 1")
    assert "does not exist" in str(error)
    assert isinstance(error, DatabaseMissing) and not is_transient(error)


def test_postgresql_unreachable_server_is_transient(pg_url: str) -> None:
    url = make_url(pg_url).set(port=free_port())
    error = mapped(url.render_as_string(hide_password=False), "SELECT 1")
    assert is_transient(error) and not isinstance(error, DatabaseMissing)


def test_postgresql_terminated_connection_is_transient(pg_url: str) -> None:
    error = mapped(pg_url, "SELECT pg_terminate_backend(pg_backend_pid())")
    assert is_transient(error), str(error)


def test_postgresql_syntax_error_is_permanent(pg_url: str) -> None:
    assert not is_transient(mapped(pg_url, "SELEC 1"))


# -- SQLite -------------------------------------------------------------------------------------


def test_sqlite_locked_database_is_transient(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    holder = sqlite3.connect(path)
    holder.execute("CREATE TABLE t (n INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        error = mapped(f"sqlite:///{path}?timeout=0", "INSERT INTO t VALUES (1)")
    finally:
        holder.rollback()
        holder.close()
    assert "database is locked" in str(error) and is_transient(error)


def test_sqlite_unopenable_file_is_permanent(tmp_path: Path) -> None:
    error = mapped(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}", "SELECT 1")
    assert "unable to open" in str(error) and not is_transient(error)


# -- through the store ------------------------------------------------------------------------


def test_a_writing_store_on_a_missing_mariadb_database_fails_permanently() -> None:
    url = mysql_server(f"cs_missing_{uuid.uuid4().hex[:8]}")
    with Store(url) as store, pytest.raises(DatabaseMissing, match="1049") as caught:
        store.upgrade()
    assert not is_transient(caught.value)


def test_a_too_new_schema_is_permanent(db_url: str) -> None:
    with Store(db_url) as store:
        store.upgrade()
        execute_sql(
            store,
            f"UPDATE cs_meta SET value = '{SCHEMA_VERSION + 1}' WHERE name = 'schema_version'",
        )
        with pytest.raises(StoreError, match="newer than this coffeeshop") as caught:
            store.upgrade()
    assert not is_transient(caught.value)


def test_the_flag_survives_pickling_as_dask_moves_errors() -> None:
    error = pickle.loads(pickle.dumps(StoreError("gone away", transient=True)))
    assert is_transient(error) and str(error) == "gone away"
    assert not is_transient(pickle.loads(pickle.dumps(StoreError("too new"))))


def test_project_errors_say_whether_they_may_pass() -> None:
    assert is_transient(SourceUnavailable("MongoDB down"))
    assert is_transient(CheckpointMoved("moved"))
    assert not is_transient(ConfigError("bad"))
    assert not is_transient(ValueError("a bug"))


def test_serve_waiting_for_the_tables_waits_out_the_first_sync_holding_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`serve --wait`: the first sync holds the new SQLite file locked while it creates the
    tables; that transient "database is locked" is waited out, not taken for a database that
    is down (the server used to start at once, before the tables, answering 503)."""
    path = tmp_path / "late.db"
    url = f"sqlite:///{path}"  # a locked attempt fails after the store's busy timeout (10 s)
    holder: list[sqlite3.Connection] = []

    def first_sync(_seconds: float) -> None:
        if not holder:  # the sync starts: it creates the file and locks it for its DDL
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            holder.append(conn)
        elif len(holder) == 1:  # it committed its tables
            holder[0].rollback()
            holder[0].close()
            with Store(f"sqlite:///{path}") as store:
                store.upgrade()
            holder.append(holder[0])

    caplog.set_level(logging.INFO, logger="coffeeshop.api")
    check_readable(url, wait=60, sleep=first_sync)
    assert len(holder) == 2
    assert "database is locked" not in caplog.text
    assert "the database has its tables now; starting" in caplog.text
