"""`coffeeshop serve` as a user runs it: a real process on a real port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import free_port, http_get, wait_for_health
from prometheus_client.parser import text_string_to_metric_families
from test_api_support import fill


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "coffeeshop", *args]


class Server:
    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = tmp_path / f"serve-{self.port}.log"
        env = {**os.environ, "COFFEESHOP_LOG_LEVEL": "INFO", **(env or {})}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command("serve", "--port", str(self.port), *args),
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_until_up(self) -> None:
        wait_for_health(self.process, self.port, self.output, deadline=time.monotonic() + 120)

    def stop(self) -> bool:
        """SIGTERM; True when it shut down gracefully (uvicorn then re-raises the signal, so
        the status is that of a SIGTERM, or 0 from the multi-worker supervisor)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=60)
        return status in (0, -signal.SIGTERM) and "Application shutdown complete" in self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def wait_until(condition: Callable[[], bool], server: Server) -> None:
    """Until `condition()` holds (a generous deadline, for a loaded machine); the server's
    output in the failure."""
    deadline = time.monotonic() + 120
    while not condition():
        assert server.process.poll() is None, server.output()
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Callable[..., Server], str]]:
    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    fill(url, tmp_path)
    servers: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Server:
        server = Server(tmp_path, "--db", url, *args, env=env)
        servers.append(server)
        server.wait_until_up()
        return server

    yield start, url

    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def test_serve_has_help_with_an_example(tmp_path: Path) -> None:
    result = subprocess.run(
        command("serve", "--help"), capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0
    assert "Example: coffeeshop serve" in result.stdout
    for option in ("--db", "--host", "--port", "--workers"):
        assert option in result.stdout


def test_serve_answers_and_stops_cleanly_on_sigterm(
    served: tuple[Callable[..., Server], str],
) -> None:
    start, _ = served
    server = start()
    status, body = http_get(server.port, "/store_peak_hours")
    assert status == 200 and body.startswith(b'[{"store_id":1,')
    assert http_get(server.port, "/ready")[0] == 200
    assert server.stop()
    assert "Traceback" not in server.output()


def test_two_workers_share_the_port_and_their_metrics(
    served: tuple[Callable[..., Server], str], tmp_path: Path
) -> None:
    # A temporary directory of its own: other tests' servers may share the machine's.
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    start, _ = served
    server = start("--workers", "2", env={"TMPDIR": str(tmpdir)})
    # /health answers once one worker is up; the kernel spreads connections over the workers
    # that listen, so wait for both (a loaded machine starts the second one late).
    wait_until(lambda: server.output().count("Application startup complete") == 2, server)
    assert len(list(tmpdir.glob("coffeeshop-metrics-*"))) == 1  # one directory, shared
    for _ in range(40):  # new connections each: the kernel spreads them over both workers
        assert http_get(server.port, "/store_monthly?store_id=1")[0] == 200
    families = text_string_to_metric_families(http_get(server.port, "/metrics")[1].decode())
    counts = {
        sample.labels["route"]: sample.value
        for family in families
        if family.name == "coffeeshop_api_requests"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["status"] == "200"
    }
    assert counts["/store_monthly"] == 40  # summed over both worker processes
    assert server.stop()
    assert server.output().count("Application shutdown complete") == 2
    assert "Traceback" not in server.output()
    assert list(tmpdir.iterdir()) == []  # the shared metrics directory is removed


def test_a_bad_database_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        command("serve", "--db", "oracle://scott:tiger@db/x"),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "tiger" not in result.stderr


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            command("serve", "--db", f"sqlite:///{tmp_path / 'a.db'}", "--port", str(port)),
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


@pytest.mark.mariadb
def test_serve_never_logs_the_password(tmp_path: Path) -> None:
    from conftest import require_mysql

    require_mysql()
    secret = "Sup3r-S3cret-pw"
    server = Server(tmp_path, "--db", f"mysql+pymysql://root:{secret}@127.0.0.1:3306/nope")
    try:
        server.wait_until_up()
        assert http_get(server.port, "/ready")[0] == 503
        status, body = http_get(server.port, "/store_monthly")
        assert status == 503 and secret.encode() not in body
    finally:
        server.stop()
    output = server.output()
    assert "Access denied" in output or "cannot use database" in output
    assert secret not in output
