"""The incremental cost: one batch of 1,000 new receipts applied on 300,000 of history (issue
24.3, goal ≤ 60 ms), per database, for two checkouts alternating. Prints numbers, asserts
nothing.

    git archive BASE src | tar -x -C /tmp/base
    .venv/bin/python bench/bench_batch.py --base /tmp/base/src --rounds 3

Each database is loaded once with the history (`sync --once`, this checkout); then rounds of
`--batches` batches alternate between the checkouts (base/new, then new/base), each in a
subprocess with that checkout's `src` first on the path, each applying receipts none applied
before (the history grows by a few thousand: under 2 %). Per batch: wall seconds (parse + one
transaction, as `bench_sync.batch_cost`) and the CPU seconds of the applying process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import bench_sync
import compare_checkouts

HERE = Path(__file__).resolve().parent


def measure(src: str, db: str, batch_file: Path, batches: int, skip: int) -> list[list[float]]:
    """`bench_sync.batch_times` in a subprocess that imports coffeeshop from `src`."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_sync; "
        "print(json.dumps(bench_sync.batch_times(sys.argv[2], __import__('pathlib').Path("
        "sys.argv[3]), batches=int(sys.argv[4]), skip=int(sys.argv[5]))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(HERE), db, str(batch_file), str(batches), str(skip)],
        env={**os.environ, "PYTHONPATH": src, "COFFEESHOP_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        check=True,
    )
    result: list[list[float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", help="the base checkout's src directory (none: new alone)")
    parser.add_argument("--new", default=str(HERE.parent / "src"))
    parser.add_argument("--history", type=int, default=300_000)
    parser.add_argument("--batches", type=int, default=5, help="batches per checkout per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--databases", default="SQLite,MariaDB,PostgreSQL")
    parser.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    history = bench_sync.DATA / f"receipts-{args.history}.jsonl"
    bench_sync.generate(history, args.history, seed=42)
    checkouts = {"new": args.new, **({"base": args.base} if args.base else {})}
    per_db = len(checkouts) * args.rounds * args.batches
    extra = bench_sync.DATA / f"new-batches-{per_db * 1000}.jsonl"
    start = bench_sync.HISTORY_START + dt.timedelta(days=bench_sync.HISTORY_DAYS)
    bench_sync.generate(extra, per_db * 1000, seed=7, start=start, days=1)
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()}")
    for label in args.databases.split(","):
        # A database name per process: two benchmarks at once must not share one.
        db = compare_checkouts.fresh(label, args.mysql, args.pg, f"cs_bench_batch_{os.getpid()}")
        compare_checkouts.sync_once(history, db, args.new)
        wall: dict[str, list[float]] = {code: [] for code in checkouts}
        cpu: dict[str, list[float]] = {code: [] for code in checkouts}
        skip = 0
        for r in range(args.rounds):
            for code in sorted(checkouts, reverse=r % 2 == 1):
                for seconds, used in measure(checkouts[code], db, extra, args.batches, skip):
                    wall[code].append(seconds * 1000)
                    cpu[code].append(used * 1000)
                skip += args.batches
            print(f"  {label} round {r}: load {os.getloadavg()[0]:.1f}", flush=True)
        for code in checkouts:
            print(
                f"{label} {code}: one 1,000-receipt batch on {args.history:,}: "
                f"{statistics.median(wall[code]):.0f} ms wall "
                f"({min(wall[code]):.0f}–{max(wall[code]):.0f}), "
                f"{statistics.median(cpu[code]):.0f} ms CPU "
                f"({min(cpu[code]):.0f}–{max(cpu[code]):.0f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
