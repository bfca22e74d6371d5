"""A Dask cluster that fails under `coffeeshop reconcile --repair --dask-address`: real scheduler
and worker processes, started here as an operator starts them (`dask scheduler`, `dask worker`).

A worker whose Python cannot import the package, and a scheduler killed mid-run, each end the
command with one line naming the cause and exit 2, and nothing written (they hung, or ended in
tracebacks with exit 1)."""

from __future__ import annotations

# ruff: noqa: E402 (Prefect is configured before it is first imported)
from coffeeshop.orchestration.settings import configure

configure()

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client
from helpers import free_port, write_lines
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness
from test_dask import history, sync, today

from coffeeshop.store import Store

DEADLINE = 180.0
# A worker's Python without the package, as on a machine where it was not installed.
WITHOUT_PACKAGE = (
    "import sys; sys.modules['coffeeshop'] = None; "
    "from distributed.cli.dask_worker import main; sys.argv[0] = 'dask-worker'; main()"
)


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[str]:
    """The API the scheduler's workers and the command report to (its start-up is slow on a
    busy machine: a generous deadline)."""
    with prefect_test_harness(server_startup_timeout=600):
        url = PREFECT_API_URL.value()
        assert url
        yield url


def _started(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"no scheduler on port {port} after {DEADLINE:.0f} s")


@pytest.fixture
def scheduler(prefect_api: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A scheduler process; its address and the environment its workers and commands get."""
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "COFFEESHOP_TIMEZONE": "UTC"}
    port = free_port()
    command = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", str(port)]
    process = _started([*command, "--dashboard-address", ":0"], env, tmp_path / "scheduler.log")
    try:
        _wait_for_port(port)
        yield f"tcp://127.0.0.1:{port}", env
    finally:
        process.kill()
        process.wait()


def _worker(address: str, env: dict[str, str], log: Path, *, package: bool) -> subprocess.Popen:
    code = (
        WITHOUT_PACKAGE if not package else "from distributed.cli.dask_worker import main; main()"
    )
    args = [address, "--nthreads", "1", "--no-dashboard", "--no-nanny"]
    process = _started([sys.executable, "-c", code, *args], env, log)
    with Client(address, timeout=DEADLINE) as client:
        client.wait_for_workers(1, timeout=DEADLINE)
    return process


def _stopped(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


def _command(address: str, path: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "coffeeshop", "reconcile", "--repair", "--source", str(path),
            "--db", f"sqlite:///{db}", "--dask-address", address]  # fmt: skip


def _error_line(stderr: str) -> str:
    """The command's verdict: its last line; no traceback before it."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return stderr.strip().splitlines()[-1]


def test_a_worker_without_the_package_is_one_line_exit_2_and_nothing_written(
    scheduler: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = scheduler
    worker = _worker(address, env, tmp_path / "worker.log", package=False)
    try:
        path, db = tmp_path / "r.jsonl", tmp_path / "a.db"
        write_lines(path, history(200))
        got = subprocess.run(
            _command(address, path, db),
            env={**env, "COFFEESHOP_LOG_LEVEL": "WARNING"},
            capture_output=True,
            text=True,
            timeout=900,  # a hang fails here (it never ended before)
        )
    finally:
        _stopped(worker)
    assert got.returncode == 2, got.stderr[-3000:]
    line = _error_line(got.stderr)
    assert line.startswith("error: Dask worker tcp://"), line
    assert "cannot import coffeeshop.orchestration.scaleout" in line
    assert line.endswith("nothing was written")
    assert not db.exists()  # refused before the database was opened


def test_a_scheduler_killed_mid_run_is_one_line_exit_2_and_nothing_written(
    scheduler: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = scheduler
    url = f"sqlite:///{tmp_path / 'a.db'}"
    path = tmp_path / "r.jsonl"
    write_lines(path, history(40_000))
    write_lines(tmp_path / "first.jsonl", history(2000)[:100])
    sync(url, tmp_path / "first.jsonl")  # another state: a repair would rewrite it
    with Store(url) as store:
        before = (store.read_tables(today()), list(store.iter_receipts()))
    worker = _worker(address, env, tmp_path / "worker.log", package=True)
    run = subprocess.Popen(
        _command(address, path, tmp_path / "a.db"),
        env={**env, "COFFEESHOP_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Client(address, timeout=DEADLINE) as client:
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline and not any(client.processing().values()):
                time.sleep(0.05)
            assert any(client.processing().values()), "the run never reached the cluster"
            pid = client.run_on_scheduler(os.getpid)
        os.kill(pid, signal.SIGKILL)
        _, stderr = run.communicate(timeout=900)  # a hang fails here
    finally:
        run.kill()
        _stopped(worker)
    assert run.returncode == 2, stderr[-3000:]
    line = _error_line(stderr)
    assert line.startswith(f"error: the Dask scheduler {address} stopped answering mid-run")
    assert line.endswith("nothing was written")
    with Store(url) as store:
        assert (store.read_tables(today()), list(store.iter_receipts())) == before
