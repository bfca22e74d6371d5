"""The Host allow-list (against DNS rebinding) and redirects that never echo the Host.

Before: any Host was served, so a page whose name was rebound to 127.0.0.1 could read every
table of an API without a token (the default, and what the demo runs); and a redirect copied
the request's Host into `Location`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port, wait_for_health
from test_api_support import fill, running

pytestmark = pytest.mark.anyio


@pytest.fixture
def url(tmp_path: Path) -> str:
    database = f"sqlite:///{tmp_path / 'analysis.db'}"
    fill(database, tmp_path)
    return database


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "localhost.evil.example",
        "127.0.0.1.evil.example",
        "shop.example.evil",
        "",
    ],
)
async def test_a_host_not_on_the_list_gets_400(url: str, host: str) -> None:
    async with running(url, allowed_hosts="shop.example") as client:
        for path in ("/store_monthly", "/receipts_summary", "/", "/docs", "/openapi.json"):
            response = await client.get(path, headers={"Host": host})
            assert response.status_code == 400, (host, path, response.text[:200])
            assert "COFFEESHOP_API_ALLOWED_HOSTS" in response.text
            assert "Latte" not in response.text


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST:8000",
        "localhost.",
        "127.0.0.1",
        "127.0.0.1:8000",
        "[::1]:8000",
        "[::1]",
        "192.168.1.20:8000",
        "shop.example",
        "Shop.Example:443",
        "a.b.tills.example",
    ],
)
async def test_localhost_ip_addresses_and_configured_names_are_served(url: str, host: str) -> None:
    async with running(url, allowed_hosts="shop.example, *.tills.example") as client:
        response = await client.get("/store_monthly", headers={"Host": host})
        assert response.status_code == 200, (host, response.text[:200])
        assert response.json()


async def test_probes_answer_whatever_the_host(url: str) -> None:
    async with running(url) as client:
        for path in ("/health", "/ready"):
            response = await client.get(path, headers={"Host": "probe.internal"})
            assert response.status_code == 200, (path, response.text[:200])


async def test_a_star_allows_any_host(url: str) -> None:
    async with running(url, allowed_hosts="*") as client:
        response = await client.get("/store_monthly", headers={"Host": "anything.example"})
        assert response.status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "shop.example"])
async def test_a_redirect_never_carries_the_host(url: str, host: str) -> None:
    async with running(url, allowed_hosts="shop.example") as client:
        response = await client.get("/store_monthly/?store_id=1", headers={"Host": host})
        assert 300 <= response.status_code < 400, response.text[:200]
        assert response.headers["location"] == "/store_monthly?store_id=1"


# -- the real server: the --host name, and worker processes -------------------------------------


def ask(port: int, host: str, path: str = "/store_monthly") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.fixture
def served(tmp_path: Path, url: str) -> Iterator[int]:
    """`serve --workers 2` (worker processes build the app from the environment)."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "COFFEESHOP_API_ALLOWED_HOSTS": "shop.example"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "coffeeshop", "serve", "--db", url, "--port", str(port)),
                *("--workers", "2", "--host", "localhost"),
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_health(
            process, port, lambda: log.read_text(errors="replace"), deadline=time.monotonic() + 120
        )
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_served_api_checks_the_host_in_every_worker(served: int) -> None:
    for _ in range(6):  # new connections: the kernel spreads them over both workers
        assert ask(served, "shop.example").startswith(b"HTTP/1.1 200 ")
        assert ask(served, "localhost:1").startswith(b"HTTP/1.1 200 ")  # the --host name
        assert ask(served, "rebound.evil.example").startswith(b"HTTP/1.1 400 ")
