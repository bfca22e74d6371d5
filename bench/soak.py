"""Soak: live traffic for a long time, with the API under load; memory must stay flat.

Runs, all on this machine (loopback only, bounded in time):
- `coffeeshop generate --rate R` appending live receipts (with updates, deletes, invalid ones),
- `coffeeshop sync --follow` applying them into the database,
- `coffeeshop serve` answering the dashboard's requests, driven by `wrk` (if installed),
samples each process's RSS every few seconds, then stops everything, runs `sync --once`
to the end and `reconcile` (exit 0 = tables exact), and prints the figures.

    .venv/bin/python bench/soak.py --minutes 30 --rate 2000 --db mysql+pymysql://root@127.0.0.1/soak
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COFFEESHOP = [sys.executable, "-m", "coffeeshop"]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the reader process), in MB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--db", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="coffeeshop-soak-"))
    source = work / "receipts.jsonl"
    source.touch()
    db = args.db or f"sqlite:///{work / 'soak.db'}"
    env = {**os.environ, "COFFEESHOP_LOG_LEVEL": "WARNING"}
    seconds = args.minutes * 60
    count = int(args.rate * seconds)
    logs = {name: open(work / f"{name}.log", "w") for name in ("generate", "sync", "serve")}  # noqa: SIM115
    generator = subprocess.Popen(
        [
            *COFFEESHOP,
            "generate",
            "--count",
            str(count),
            "--rate",
            str(args.rate),
            "--out",
            str(source),
            "--seed",
            "7",
            "--stores",
            "50",
            "--updates",
            "0.05",
            "--deletes",
            "0.02",
            "--invalid",
            "0.01",
        ],
        env=env,
        stderr=logs["generate"],
    )
    sync = subprocess.Popen(
        [*COFFEESHOP, "sync", "--follow", "--source", str(source), "--db", db],
        env=env,
        stderr=logs["sync"],
    )
    serve = subprocess.Popen(
        [*COFFEESHOP, "serve", "--db", db, "--port", str(args.port)], env=env, stderr=logs["serve"]
    )
    wrk = None
    if shutil.which("wrk"):
        time.sleep(5)
        wrk = subprocess.Popen(
            [
                "wrk",
                "-t2",
                "-c64",
                f"-d{int(seconds)}s",
                "--latency",
                f"http://127.0.0.1:{args.port}/store_peak_hours",
            ],
            stdout=open(work / "wrk.txt", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
    samples: dict[str, list[float]] = {"sync": [], "serve": []}
    started = time.monotonic()
    while time.monotonic() - started < seconds and generator.poll() is None:
        time.sleep(10)
        samples["sync"].append(rss_mb(sync.pid))
        samples["serve"].append(rss_mb(serve.pid))
        print(
            f"{time.monotonic() - started:6.0f} s  sync {samples['sync'][-1]:.0f} MB  "
            f"serve {samples['serve'][-1]:.0f} MB",
            flush=True,
        )
    for process in (generator, wrk):
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    time.sleep(3)
    for process in (sync, serve):
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    subprocess.run(
        [*COFFEESHOP, "sync", "--once", "--source", str(source), "--db", db], env=env, check=True
    )
    reconcile = subprocess.run(
        [*COFFEESHOP, "reconcile", "--source", str(source), "--db", db], env=env
    )
    for name, values in samples.items():
        if len(values) >= 4:
            warm = values[len(values) // 4]
            growth = (max(values[len(values) // 4 :]) - warm) / warm * 100
            print(
                f"{name}: RSS after warm-up {warm:.0f} MB, peak {max(values):.0f} MB, "
                f"growth {growth:.1f}%"
            )
    errors = sum(
        1
        for name in logs
        for line in (work / f"{name}.log").read_text().splitlines()
        if " ERROR " in line or "Traceback" in line
    )
    print(
        f"error lines in logs: {errors}; reconcile exit status {reconcile.returncode} (0 = exact)"
    )
    if wrk is not None:
        print((work / "wrk.txt").read_text())
    print(f"logs in {work}")


if __name__ == "__main__":
    main()
