"""PostgreSQL's bulk path: prints numbers, asserts nothing.

`python bench/bench_bulk_pg.py [--receipts N] [--repeat R]` generates N receipts (or reuses
`bench/data/pg-bulk-N.jsonl`), reads them once in partitions in this process (no Dask), and
times the write of a partitioned repair into a fresh, empty PostgreSQL database
(`--pg`, default postgresql://postgres@127.0.0.1:5432/postgres): with `COPY … FROM STDIN`
(`Store(bulk_load=True)`) and with the INSERT path, alternating, each database dropped after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from coffeeshop.pipeline.partitioned import finish, gather_in_process
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

DATA = Path(__file__).resolve().parent / "data"


def admin(server: str) -> psycopg.Connection:
    url = make_url(server)
    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or "",
        dbname=url.database or "postgres",
        autocommit=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    path = DATA / f"pg-bulk-{args.receipts}.jsonl"
    if not path.exists():
        coffeeshop = Path(sys.executable).with_name("coffeeshop")
        subprocess.run(
            [
                *(str(coffeeshop), "generate", "--out", str(path)),
                *("--count", str(args.receipts), "--stores", "50", "--days", "1095", "--seed", "5"),
            ],
            check=True,
            capture_output=True,
        )
    gathered = gather_in_process(str(path), 4)
    with admin(args.pg) as conn:
        print("server", conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    for _ in range(args.repeat):
        for bulk_load in (True, False):
            name = f"cs_bench_{uuid.uuid4().hex[:8]}"
            with admin(args.pg) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
            try:
                with Store(url, bulk_load=bulk_load) as store:
                    store.upgrade()
                    started = time.perf_counter()
                    finish(store, JsonlSource(path), gathered, today=dt.date.today(), repair=True)
                    took = time.perf_counter() - started
            finally:
                with admin(args.pg) as conn:
                    conn.execute(f'DROP DATABASE "{name}"')
            path_name = "COPY" if bulk_load else "INSERT"
            rate = gathered.partial.receipts / took
            print(
                f"{path_name:6} {gathered.partial.receipts:,} receipts: {took:.2f} s, {rate:,.0f}/s"
            )


if __name__ == "__main__":
    main()
