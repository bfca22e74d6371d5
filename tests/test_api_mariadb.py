"""The API under a MariaDB user that may only SELECT, and a password that never shows:
not in responses (/pipeline names the database), errors, metrics, docs or logs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import _admin
from sqlalchemy.engine import make_url
from test_api_support import empty_database, every_get_path, fill, running, wait_for

pytestmark = pytest.mark.anyio

PASSWORD = f"Pw-{uuid.uuid4().hex[:10]}-s3cr3t"
# Every endpoint (derived from the app's routes) and its documentation: a SELECT-only user
# answers each with 200.
SERVED = (*every_get_path(), "/openapi.json", "/docs")
# ...and, where a password could show, requests with parameters and a refused one as well.
ENDPOINTS = (
    *SERVED,
    "/receipts_summary?as_of_from=2026-11-21",
    "/store_monthly?store_id=1&month_from=2026-01&month_to=2026-12",
    "/item_performance?limit=20",
    "/item_sales?store_id=1&day_from=2026-11-01&hour_from=7&hour_to=10",
    "/store_monthly?store_id=nope",
)


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(URL of a SELECT-only user with a password, admin URL) of a filled database."""
    with empty_database("mariadb", tmp_path) as admin_url:
        fill(admin_url, tmp_path)
        database = make_url(admin_url).database
        user = f"cs_ro_{uuid.uuid4().hex[:8]}"
        with _admin() as conn, conn.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, PASSWORD))
                cur.execute(f"GRANT SELECT ON `{database}`.* TO %s@%s", (user, host))
        url = make_url(admin_url).set(username=user, password=PASSWORD)
        try:
            yield url.render_as_string(hide_password=False), admin_url
        finally:
            with _admin() as conn, conn.cursor() as cur:
                for host in ("%", "localhost"):
                    cur.execute("DROP USER IF EXISTS %s@%s", (user, host))


def drop_database(admin_url: str) -> None:
    with _admin() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE `{make_url(admin_url).database}`")


async def test_a_select_only_user_serves_every_endpoint(reader: tuple[str, str]) -> None:
    url, _ = reader
    async with running(url) as client:
        assert (await client.get("/ready")).json()["status"] == "ready"
        for path in SERVED:
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)

        assert (await client.get("/store_monthly")).json()


async def test_the_password_never_shows(
    reader: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, admin_url = reader
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    async with running(url) as client:
        for path in ENDPOINTS:
            response = await client.get(path)
            seen.append(f"{response.headers}\n{response.text}")
        assert "***" in (await client.get("/pipeline")).json()["database"]
        # now the database goes: errors, 503s and warnings must not carry it either
        await asyncio.to_thread(drop_database, admin_url)

        async def failing() -> bool:
            return (await client.get("/ready")).status_code == 503

        await wait_for(failing)
        for path in ENDPOINTS:
            response = await client.get(path)
            seen.append(f"{response.headers}\n{response.text}")
    wrong = make_url(url).set(password=PASSWORD + "-wrong").render_as_string(hide_password=False)
    async with running(wrong) as client:
        for path in ENDPOINTS:
            response = await client.get(path)
            seen.append(f"{response.headers}\n{response.text}")
    seen.append(caplog.text)
    assert any("Access denied" in text for text in seen)  # the refusal was logged...
    assert not [text for text in seen if PASSWORD in text]  # ...without the password


async def test_connections_the_server_closed_are_replaced_without_an_error(
    reader: tuple[str, str],
) -> None:
    """No pre-ping: a dead pooled connection fails its first statement, the pool is dropped
    and the read retried once on a fresh connection, so no request sees the failure."""
    url, _ = reader
    user = make_url(url).username
    async with running(url, api_refresh=30) as client:  # the watcher stays out of the way
        assert (await client.get("/store_monthly?store_id=1")).status_code == 200
        with _admin() as conn, conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE user = %s", (user,))
            ids = [row[0] for row in cur.fetchall()]
            assert ids  # the pool kept its connections
            for connection_id in ids:
                cur.execute(f"KILL CONNECTION {int(connection_id)}")
        assert (await client.get("/store_monthly?store_id=2")).status_code == 200
        assert (await client.get("/ready")).status_code == 200
