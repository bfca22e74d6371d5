"""Shared fixtures: real SQLite files and a real MariaDB server (a fresh database per test).

MariaDB comes from COFFEESHOP_TEST_MYSQL_URL (default mysql+pymysql://root@127.0.0.1:3306).
When it is unreachable the MariaDB tests are skipped with the reason printed; with
CI=true they fail instead, so CI can never pass without them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from helpers import write_lines
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchModuleError

from coffeeshop.orchestration.home import STATE_DIR
from coffeeshop.store.dialects import KNOWN, Dialect


def _isolate_homes() -> None:
    """This test process (one per xdist worker) and every process it starts get a Prefect home
    and a coffeeshop state directory of their own, so parallel workers (and the developer's
    own ~/.prefect and ~/.local/state/coffeeshop) never share a Prefect database, its result
    storage or a served server's record. Set at import, before any test module imports Prefect
    (it reads PREFECT_HOME then); a test that needs another home sets its own."""
    base = Path(tempfile.mkdtemp(prefix="coffeeshop-tests-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    os.environ["PREFECT_HOME"] = str(base / "prefect")
    os.environ[STATE_DIR] = str(base / "state")


_isolate_homes()

MYSQL_URL = os.environ.get("COFFEESHOP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_mysql_problem: str | None = None
_mysql_checked = False


def mysql_problem() -> str | None:
    """None when MariaDB answers, else why not (checked once per session)."""
    global _mysql_checked, _mysql_problem
    if not _mysql_checked:
        _mysql_checked = True
        url = make_url(MYSQL_URL)
        try:
            conn = pymysql.connect(
                host=url.host or "127.0.0.1",
                port=url.port or 3306,
                user=url.username or "root",
                password=url.password or "",
                connect_timeout=5,
            )
            conn.close()
        except pymysql.MySQLError as exc:
            _mysql_problem = f"MariaDB at {url.host}:{url.port or 3306} is unreachable: {exc}"
    return _mysql_problem


def require_mysql() -> None:
    problem = mysql_problem()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"{problem} (CI=true: MariaDB is required)", pytrace=False)
    pytest.skip(f"{problem}; start it or set COFFEESHOP_TEST_MYSQL_URL")


def _admin() -> pymysql.connections.Connection:
    url = make_url(MYSQL_URL)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        autocommit=True,
        charset="utf8mb4",
    )


def create_mysql_database() -> str:
    """A fresh, empty MariaDB database; returns its SQLAlchemy URL."""
    require_mysql()
    name = f"cs_test_{uuid.uuid4().hex[:12]}"
    with _admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    # A case-insensitive default collation on purpose: the schema must not depend on it.
    return str(make_url(MYSQL_URL).set(database=name).render_as_string(hide_password=False))


def drop_mysql_database(url: str) -> None:
    name = make_url(url).database
    with _admin() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(autouse=True)
def _signal_handlers_restored() -> Iterator[None]:
    """Each test starts with Python's default SIGINT/SIGTERM handlers, and the process gets
    back what it had after: code under test may leave them changed (a served flow run
    ignores both on its way out, as its process ends with it), and with parallel workers any
    test may follow any other."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    # Python's own handlers, whatever this process inherited: a suite started in the
    # background of a script (`cmd &`) inherits SIGINT ignored, and Ctrl-C tests then fail.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)


PG_URL = os.environ.get("COFFEESHOP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin() -> Any:
    import psycopg

    url = make_url(PG_URL)
    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or "",
        dbname=url.database or "postgres",
        autocommit=True,
        connect_timeout=5,
    )


def create_pg_database() -> str:
    """A fresh PostgreSQL database. PostgreSQL support is optional: skipped when absent."""
    try:
        conn = _pg_admin()
    except Exception as exc:
        pytest.skip(
            f"PostgreSQL at {make_url(PG_URL).host} is unreachable ({exc}); optional backend"
        )
    name = f"cs_test_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The test server of each server dialect (by its first backend name): (the tests' id for it,
# create a fresh database, drop it). A database in a local file needs none.
SERVERS: dict[str, tuple[str, Callable[[], str], Callable[[str], None]]] = {
    "mysql": ("mariadb", create_mysql_database, drop_mysql_database),
    "postgresql": ("postgresql", create_pg_database, drop_pg_database),
}


def _test_id(dialect: Dialect) -> str:
    server = SERVERS.get(dialect.backends[0])
    return server[0] if server else dialect.backends[0]


@pytest.fixture(params=KNOWN, ids=_test_id)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty analysis database of each known dialect (`store.dialects.KNOWN`): a
    file in the test's directory for a database in a local file (skipped when its driver is
    not installed), else a fresh database on the test server (`SERVERS`: MariaDB; PostgreSQL
    is optional, skipped with the reason when no server answers)."""
    dialect: Dialect = request.param
    if dialect.local_file:
        url = f"{dialect.backends[0]}:///{tmp_path / 'analysis.db'}"
        try:
            make_url(url).get_dialect().import_dbapi()
        except (ImportError, NoSuchModuleError) as exc:
            pytest.skip(f"{dialect.name}: its driver is not installed ({exc})")
        yield url
        return
    if dialect.backends[0] not in SERVERS:
        pytest.fail(f"no test server for {dialect.name}: add one to SERVERS in tests/conftest.py")
    _, create, drop = SERVERS[dialect.backends[0]]
    url = create()
    try:
        yield url
    finally:
        drop(url)


@pytest.fixture
def mysql_url() -> Iterator[str]:
    url = create_mysql_database()
    try:
        yield url
    finally:
        drop_mysql_database(url)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database (skipped with the reason when no server answers)."""
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def jsonl(tmp_path: Path) -> Callable[..., Path]:
    """jsonl(objs) -> path of a file holding them, one per line (appends on repeated calls)."""
    path = tmp_path / "receipts.jsonl"

    def make(objects: list[Any]) -> Path:
        write_lines(path, objects)
        return path

    return make
