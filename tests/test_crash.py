"""SIGKILL at random moments: nothing lost, nothing counted twice.

A real `coffeeshop sync` process (and its reader process) is killed with SIGKILL at
random moments — between batches and inside a transaction — and restarted, over and
over, then the tables are compared with a from-scratch recomputation.

CI runs a few rounds; the full run is
    COFFEESHOP_CRASH_ROUNDS=25 .venv/bin/pytest tests/test_crash.py -s
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import current_receipts, reference_tables

from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.demo.writer import write_jsonl
from coffeeshop.store import Store, schema

ROUNDS = int(os.environ.get("COFFEESHOP_CRASH_ROUNDS", "4"))


def start(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "coffeeshop", *args],
        cwd=cwd,
        env={**os.environ, "COFFEESHOP_LOG_LEVEL": "WARNING", "COFFEESHOP_POLL_INTERVAL": "0.05"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: SIGKILL takes the reader too
    )


def kill(process: subprocess.Popen[bytes]) -> bool:
    """SIGKILL the whole process group; True if it was still running."""
    alive = process.poll() is None
    if alive:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return alive


def check_exact(url: str, lines: list[str]) -> None:
    today = dt.date.today()
    receipts = current_receipts(lines)
    with Store(url) as store:
        assert store.read_tables(today) == reference_tables(lines, today)
        # one stored contribution per current valid receipt: none lost, none twice
        assert store.count(schema.receipts) == len(receipts)


def generated(path: Path, count: int, seed: int) -> list[str]:
    generator = ReceiptGenerator(
        seed=seed, stores=8, days=60, update_share=0.1, delete_share=0.05, invalid_share=0.02
    )
    write_jsonl(path, count, generator=generator, append=False)
    return path.read_text().splitlines()


def test_sigkill_during_sync_once_loses_and_doubles_nothing(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    # Enough input that every round is still applying when its kill comes: a round applies
    # up to ~15,000 receipts here before its kill, and a finished sync is no crash test.
    lines = generated(path, max(40_000, ROUNDS * 20_000), seed=5)
    rng = random.Random(11)
    kills = 0
    for _ in range(ROUNDS):
        process = start(
            "sync",
            "--once",
            "--batch-size",
            "200",
            "--source",
            str(path),
            "--db",
            db_url,
            cwd=tmp_path,
        )
        time.sleep(rng.uniform(0.5, 1.1))  # start-up takes ~0.5 s; then small batches
        kills += kill(process)
    final = start("sync", "--once", "--source", str(path), "--db", db_url, cwd=tmp_path)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    check_exact(db_url, lines)
    print(
        f"\ncrash test ({db_url.split(':')[0]}): {kills} SIGKILLs in {ROUNDS} rounds, tables exact"
    )


def test_sigkill_while_following_a_growing_file(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.touch()
    generator = start(
        "generate",
        "--count",
        "6000",
        "--rate",
        "2000",
        "--out",
        str(path),
        "--seed",
        "3",
        "--updates",
        "0.1",
        "--deletes",
        "0.05",
        "--invalid",
        "0.02",
        cwd=tmp_path,
    )
    rng = random.Random(13)
    kills = 0
    try:
        for _ in range(ROUNDS):
            follower = start(
                "sync",
                "--follow",
                "--batch-size",
                "300",
                "--source",
                str(path),
                "--db",
                db_url,
                cwd=tmp_path,
            )
            time.sleep(rng.uniform(0.6, 1.6))
            kills += kill(follower)
    finally:
        _, err = generator.communicate(timeout=120)
    assert generator.returncode == 0, err.decode()
    final = start("sync", "--once", "--source", str(path), "--db", db_url, cwd=tmp_path)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    check_exact(db_url, path.read_text().splitlines())
    print(f"\nfollow crash test: {kills} SIGKILLs while the file grew, tables exact")
