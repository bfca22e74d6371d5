"""The original specification's three variables, exactly as it wrote them: `MONGO_URI`,
`SQL_DSN` and `ASYNC_SQL_DSN=mysql+aiomysql://...`, against real MariaDB. Before, `serve`
refused the async DSN (`no async driver ... No module named 'aiomysql'`); it is served through
the installed async MySQL driver (asyncmy), with the same figures as the sync URL gives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import free_port, http_get, wait_for_health
from sqlalchemy.engine import make_url
from test_api_support import empty_database, fill

from coffeeshop.api.database import async_url
from coffeeshop.config import Settings

SPEC_VARIABLES = ("MONGO_URI", "SQL_DSN", "ASYNC_SQL_DSN")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    with empty_database("mariadb", tmp_path) as url:
        fill(url, tmp_path)
        yield url


def spec_environment(sync_url: str) -> dict[str, str]:
    """The process environment with only the specification's variables naming the databases."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("COFFEESHOP_") and key not in SPEC_VARIABLES
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    aiomysql = make_url(sync_url).set(drivername="mysql+aiomysql")
    env.update(
        MONGO_URI="mongodb://127.0.0.1:27017/coffeeshop",  # serve never connects to it
        SQL_DSN=sync_url,
        ASYNC_SQL_DSN=aiomysql.render_as_string(hide_password=False),
        COFFEESHOP_LOG_LEVEL="INFO",
    )
    return env


def test_the_aiomysql_scheme_is_served_through_asyncmy() -> None:
    url = async_url(Settings(db="sqlite:///unused.db", async_db="mysql+aiomysql://u@h:3306/shop"))
    assert url.drivername == "mysql+asyncmy"
    assert (url.host, url.port, url.database) == ("h", 3306, "shop")


@pytest.mark.mariadb
def test_serve_with_the_specifications_three_variables_serves_real_figures(
    tmp_path: Path, database: str
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "coffeeshop", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=spec_environment(database),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_health(
            process, port, lambda: log.read_text(errors="replace"), deadline=time.monotonic() + 120
        )
        status, body = http_get(port, "/store_monthly?store_id=3")
        assert status == 200, body
        rows = json.loads(body, parse_float=Decimal)
        assert rows == [{"month": "2026-01", "store_id": 3, "sales": Decimal("1000000.00")}]
        status, body = http_get(port, "/ready")
        assert status == 200 and json.loads(body)["status"] == "ready", body
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = log.read_text(errors="replace")
    assert "mysql+asyncmy://" in output, output
    assert "Traceback" not in output
