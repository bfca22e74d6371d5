"""`coffeeshop demo` as a user runs it: a real process, a real port, Ctrl-C (SIGINT) to stop."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port, http_get, wait_for_health

from coffeeshop.demo.runner import Demo, DemoOptions, PartFailed, api_settings
from coffeeshop.demo.traffic import STORES

TABLES = ("receipts_summary", "store_monthly", "item_performance", "store_peak_hours")


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "coffeeshop", "demo", *args]


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    """A demo that is expected to refuse to start."""
    return subprocess.run(demo_command(*args), capture_output=True, text=True, timeout=30)


def get_json(port: int, path: str) -> Any:
    status, body = http_get(port, path)
    assert status == 200, (path, status, body[:200])
    return json.loads(body)


class DemoProcess:
    def __init__(
        self,
        tmp_path: Path,
        folder: Path,
        *args: str,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.log = tmp_path / f"demo-{self.port}-{time.monotonic_ns()}.log"
        env = {**os.environ, "COFFEESHOP_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
        env.update(extra_env or {})
        self.started = time.monotonic()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                demo_command("--port", str(self.port), "--dir", str(folder), *args),
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_for_health(self) -> None:
        wait_for_health(self.process, self.port, self.output, deadline=self.started + 180)

    def wait_for_data(self) -> float:
        """Seconds from the start until all four tables have rows (how fast is for the
        benchmarks: the deadline here is for a loaded machine)."""
        while time.monotonic() < self.started + 180:
            if all(get_json(self.port, f"/{table}") for table in TABLES):
                return time.monotonic() - self.started
            time.sleep(0.2)
        raise AssertionError(f"no data within 180 s of the start: {self.output()}")

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT, then the exit status."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"demo did not stop on SIGINT: {self.output()}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def applied(port: int) -> int:
    return int(get_json(port, "/pipeline")["totals"]["applied"])


def wait_for_change(port: int, seconds: float = 120.0) -> None:
    """The numbers move: new receipts keep arriving and the tables follow."""
    before_applied = applied(port)
    before_summary = get_json(port, "/receipts_summary")[-1]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.3)
        summary = get_json(port, "/receipts_summary")[-1]
        if applied(port) > before_applied and summary != before_summary:
            return
    raise AssertionError(f"the tables did not change within {seconds:.0f} s")


def test_demo_serves_live_data_stops_on_ctrl_c_and_reuses_or_resets_its_folder(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "demo"
    # A steady 25 receipts/s instead of the history's rhythm (~1,000 a day, which may add
    # nothing for a minute): this test wants to see the tables move within seconds.
    fast = ("--rate", "25")
    first = DemoProcess(tmp_path, folder, *fast)
    try:
        first.wait_for_health()
        first.wait_for_data()
        wait_for_change(first.port)
        status, page = http_get(first.port, "/")
        assert status == 200 and b"Coffeeshop Analytics" in page
        assert http_get(first.port, "/dashboard/app.js")[0] == 200
        assert http_get(first.port, "/dashboard/vendor/chart.js/chart.umd.min.js")[0] == 200

        # One demo per folder, and a port in use: one line each, exit status 2.
        rival = run_demo("--port", str(free_port()), "--dir", str(folder))
        assert rival.returncode == 2
        assert "another demo is running" in rival.stderr and "Traceback" not in rival.stderr
        taken = run_demo("--port", str(first.port), "--dir", str(tmp_path / "other"))
        assert taken.returncode == 2
        assert "cannot listen" in taken.stderr and "Traceback" not in taken.stderr
        assert first.interrupt() == 0
    finally:
        first.kill()
    out = first.output()
    assert "Traceback" not in out, out
    assert f"http://127.0.0.1:{first.port}/" in out
    source = folder / "receipts.jsonl"
    assert source.stat().st_size > 0 and (folder / "analysis.db").exists()
    inode, size = source.stat().st_ino, source.stat().st_size

    # A second run continues in the same folder: same file, grown; the counts carry on.
    second = DemoProcess(tmp_path, folder, *fast)
    try:
        second.wait_for_health()
        second.wait_for_data()
        wait_for_change(second.port)
        assert second.interrupt() == 0
    finally:
        second.kill()
    assert "reusing" in second.output() and "seeded" not in second.output()
    assert "Traceback" not in second.output()
    assert source.stat().st_ino == inode and source.stat().st_size > size

    # --fresh starts over: a new history file and database; other files are left alone.
    with source.open("a") as file:
        file.write('{"_id": "written-before-fresh", "Store_ID": "x"}\n')
    (folder / "keep.txt").write_text("not the demo's")
    third = DemoProcess(tmp_path, folder, "--fresh")
    try:
        third.wait_for_health()
        third.wait_for_data()
        assert third.interrupt() == 0
    finally:
        third.kill()
    assert "removed receipts.jsonl, analysis.db" in third.output()
    assert "seeded" in third.output() and "Traceback" not in third.output()
    assert b"written-before-fresh" not in source.read_bytes()
    assert (folder / "keep.txt").read_text() == "not the demo's"


def test_demo_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    demo = DemoProcess(tmp_path, tmp_path / "demo", "--history", "500")
    try:
        demo.wait_for_health()
        demo.process.send_signal(signal.SIGTERM)
        assert demo.process.wait(timeout=120) == 0
    finally:
        demo.kill()
    assert "Traceback" not in demo.output()
    assert "SIGTERM: stopping" in demo.output()


def test_the_demos_web_server_has_the_connection_limits_of_serve(tmp_path: Path) -> None:
    """The demo listens like `coffeeshop serve` does: a connection that sends nothing is
    closed after COFFEESHOP_API_REQUEST_TIMEOUT (the demo used plain uvicorn, which kept it
    open for ever)."""
    demo = DemoProcess(
        tmp_path,
        tmp_path / "demo",
        "--history",
        "200",
        extra_env={"COFFEESHOP_API_REQUEST_TIMEOUT": "1"},
    )
    try:
        demo.wait_for_health()
        with socket.create_connection(("127.0.0.1", demo.port), timeout=10) as idle:
            idle.settimeout(60)  # closed after ~1 s; the deadline is for a loaded machine
            try:
                assert idle.recv(65536) == b""
            except ConnectionResetError:
                pass
            except TimeoutError:
                raise AssertionError("the demo kept an idle connection open for 60 s") from None
        assert http_get(demo.port, "/health")[0] == 200
        assert demo.interrupt() == 0
    finally:
        demo.kill()
    assert "Traceback" not in demo.output()


def test_a_part_that_fails_stops_the_demo_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_generator(self: Demo) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(Demo, "_run_generator", broken_generator)
    demo = Demo(DemoOptions(directory=tmp_path / "demo", port=free_port(), history=200))
    before = threading.active_count()
    with pytest.raises(PartFailed, match="the generator failed: No space left on device"):
        demo.run(handle_signals=False)
    assert demo.stop.is_set()
    assert threading.active_count() == before  # the engine and the web server stopped too


def test_demo_help_has_an_example() -> None:
    result = subprocess.run(demo_command("--help"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "Example: coffeeshop demo" in result.stdout


def test_the_live_progress_lines_do_not_count_the_seeded_history(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first "live:" line used to count the whole seeded history as live traffic."""
    caplog.set_level(logging.INFO, logger="coffeeshop.demo.runner")
    history = 5000
    options = DemoOptions(
        directory=tmp_path / "demo",
        port=free_port(),
        history=history,
        rate=0.5,  # a receipt every 2 s: the live lines stay far below the history
        status_every=0.2,
    )
    demo = Demo(options)
    runner = threading.Thread(target=demo.run, kwargs={"handle_signals": False})
    runner.start()

    def lines(prefix: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith(prefix)]

    try:
        deadline = time.monotonic() + 120  # generous: a loaded machine
        while len(lines("live:")) < 3 and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        demo.stop.set()
        runner.join(60)
    live = lines("live:")
    assert len(live) >= 3, [r.getMessage() for r in caplog.records]
    for line in live:
        new = int(line.split()[1].replace(",", ""))
        assert new < 100, line  # live traffic only, never the history
    applied = demo.progress.history
    assert applied is not None and applied > history // 2  # the history, less invalid lines
    assert all(f"{applied:,} from the history" in line for line in live)
    stopped = lines("stopped after")
    assert len(stopped) == 1 and f"({demo.progress.live:,} live)" in stopped[0]


def test_the_demo_names_its_stores_and_shows_euros_unless_the_user_set_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's screenshot shows euros and store names; `make demo` showed plain numbers
    and "Store 3" (issue 21.4)."""
    monkeypatch.chdir(tmp_path)  # no .env of the working copy
    monkeypatch.delenv("COFFEESHOP_CURRENCY", raising=False)
    monkeypatch.delenv("COFFEESHOP_STORE_NAMES", raising=False)
    options = DemoOptions(directory=tmp_path / "demo")
    settings = api_settings(options)
    assert settings.currency == "EUR"
    names = settings.store_name_map
    assert len(names) == options.stores == 12
    assert names[1] == "Airport" and names[2] == "Central Station" and names[3] == "Office Park"
    assert [names[n] for n in range(1, 13)] == [p.name for p in STORES]

    monkeypatch.setenv("COFFEESHOP_CURRENCY", "JPY")
    monkeypatch.setenv("COFFEESHOP_STORE_NAMES", "1=Shibuya")
    settings = api_settings(options)
    assert settings.currency == "JPY" and settings.store_name_map == {1: "Shibuya"}
