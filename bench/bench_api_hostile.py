"""Hostile-client figures of the API (prints numbers, asserts nothing; docs/reliability.md).

1. An SQLite database with the test data set plus 30 quarantine entries of 16 MB raw text each
   (as a database written before raw text was capped holds them); `--reuse` keeps it.
2. `coffeeshop serve` (one worker) over it: `/quarantine?limit=1000` (body size, time, the
   server's RSS and peak RSS from /proc), then `/quarantine/{id}/raw` of one entry.
3. A client streams a 48 MiB header in 64 KiB writes while another requests `/health` in a
   loop: the first client's answer and when it came, and the slowest `/health`.

Run: PYTHONPATH=src:tests .venv/bin/python bench/bench_api_hostile.py [--dir DIR] [--reuse]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from helpers import free_port, wait_for_health
from test_api_support import fill

from coffeeshop.store import schema

ENTRIES = 30
RAW_SIZE = 16_000_000
HEADER = 48 << 20


def prepare(directory: Path, reuse: bool) -> str:
    database = directory / "analysis.db"
    url = f"sqlite:///{database}"
    if reuse and database.exists():
        return url
    database.unlink(missing_ok=True)
    fill(url, directory)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for n in range(ENTRIES):
            conn.execute(
                schema.quarantine.insert().values(
                    receipt_id=None,
                    reason="too long",
                    source="big",
                    position=f"line {n}",
                    raw="x" * RAW_SIZE,
                    received_at=dt.datetime(2026, 11, 30),
                )
            )
    engine.dispose()
    return url


def memory(pid: int) -> str:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return f"RSS {fields['VmRSS']:.1f} MiB, peak {fields['VmHWM']:.1f} MiB"


def get(port: int, path: str) -> tuple[int, int, float]:
    began = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("GET", path)
    response = connection.getresponse()
    size = len(response.read())
    return response.status, size, time.monotonic() - began


def huge_header(port: int, result: dict[str, object]) -> None:
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: ")
            chunk = b"a" * 65536
            for _ in range(HEADER // len(chunk)):
                sock.sendall(chunk)
            sock.sendall(b"\r\n\r\n")
        except OSError as exc:
            result["send"] = type(exc).__name__
        sock.settimeout(120)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except OSError as exc:
            result["receive"] = type(exc).__name__
    result["status line"] = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    result["seconds"] = round(time.monotonic() - began, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "cs-hostile")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    url = prepare(args.dir, args.reuse)
    port = free_port()
    log_path = args.dir / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "coffeeshop", "serve", "--db", url, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=args.dir,
        )
    try:
        wait_for_health(server, port, log_path.read_text, deadline=time.monotonic() + 60)
        print(f"started: {memory(server.pid)}")
        status, size, seconds = get(port, "/quarantine?limit=1000")
        print(
            f"/quarantine?limit=1000: {status}, {size:,} B in {seconds:.2f} s; {memory(server.pid)}"
        )
        status, size, seconds = get(port, "/quarantine/5/raw")
        print(f"/quarantine/5/raw: {status}, {size:,} B in {seconds:.2f} s; {memory(server.pid)}")
        result: dict[str, object] = {}
        sender = threading.Thread(target=huge_header, args=(port, result))
        sender.start()
        waits = []
        while sender.is_alive():
            waits.append(get(port, "/health")[2])
        sender.join()
        print(f"48 MiB header: {result}; /health x{len(waits)}, slowest {max(waits) * 1000:.1f} ms")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
