"""Schema steps on databases that hold data: v5 creates the counted tables and v6 their month
tables, each filled from the stored receipts, equal to the reference recomputation; v7 drops
two of v6's tables again (each its hourly table summed over the hours) and, on SQLite, keeps
the counted rows in their primary key (no rowid)."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from helpers import execute_sql, receipt, reference_tables, write_lines

from coffeeshop.core.groups import GROUPS, MONTHLY_GROUPS, PRODUCT_HOUR, RETIRED_GROUPS, Group
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store, schema
from coffeeshop.store.migrations import SCHEMA_VERSION

TODAY = dt.date(2026, 11, 25)


MONTHLY = MONTHLY_GROUPS


def history() -> list[Any]:
    """Receipts over two months, a delete and a replacement into another store, day and hour."""
    lines: list[Any] = [
        receipt(
            i,
            store=i % 3 + 1,
            date=f"2026-11-{i % 20 + 1:02d}",
            time=f"{6 + i % 12}:05",
            total=f"{i}.{i % 100:02d}",
            items=[("Latte", i % 4 + 1), ("Bun", 1)],
        )
        for i in range(1, 60)
    ]
    lines.append({"operationType": "delete", "documentKey": {"_id": 7}})
    lines.append(receipt(8, store=2, date="2026-11-24", time="23:59", total=1, items=[("Tea", 5)]))
    lines.append(receipt(9, store=3, date="2026-10-31", time="07:10", total=3, items=[("Bun", 2)]))
    return lines


@pytest.mark.parametrize(
    ("version", "missing"),
    [(4, GROUPS), (5, MONTHLY)],
    ids=["v5 on a v4 database", "v6 on a v5 database"],
)
def test_a_step_fills_its_counted_tables_from_the_receipts(
    version: int, missing: tuple[Group, ...], db_url: str, tmp_path: Path
) -> None:
    """A database at `version` (the tables of the later steps dropped) is upgraded: every
    counted table equals the reference recomputation of its receipts."""
    lines = history()
    path = tmp_path / "r.jsonl"
    write_lines(path, lines)
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        for group in missing:
            execute_sql(store, f"DROP TABLE IF EXISTS {group.table}")
        execute_sql(store, f"UPDATE cs_meta SET value = '{version}' WHERE name = 'schema_version'")
        assert store.upgrade() == (version, SCHEMA_VERSION)
        got = store.read_tables(TODAY)
        left = set(sqlalchemy.inspect(store.engine).get_table_names())
    assert not left & {group.table for group in RETIRED_GROUPS}  # v6 made them, v7 dropped them
    expected = reference_tables(lines, TODAY)
    assert {m for m, *_ in expected.product_month_hour} == {"2026-10", "2026-11"}
    for group in GROUPS:
        assert getattr(got, group.name) == getattr(expected, group.name), group.name
        assert getattr(got, group.name), group.name


@pytest.mark.parametrize("version", [4, 5], ids=["v5 again", "v6 again"])
def test_a_step_run_again_after_a_cut_refills_rather_than_adds(
    version: int, db_url: str, tmp_path: Path
) -> None:
    """The step ran (its tables filled) but its version was never recorded: run again, it
    fills its tables afresh instead of adding the receipts a second time."""
    lines = history()
    path = tmp_path / "r.jsonl"
    write_lines(path, lines)
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        execute_sql(store, f"UPDATE cs_meta SET value = '{version}' WHERE name = 'schema_version'")
        assert store.upgrade() == (version, SCHEMA_VERSION)
        got = store.read_tables(TODAY)
    expected = reference_tables(lines, TODAY)
    for group in GROUPS:
        assert getattr(got, group.name) == getattr(expected, group.name), group.name


def test_v7_keeps_sqlite_counted_rows_in_their_key_without_a_rowid(tmp_path: Path) -> None:
    """A SQLite database of schema 6 (counted tables, and the daily, store-month and
    store-hour sums, with a rowid and a key index beside it): v7 makes each again without a
    rowid, every row kept (none recomputed), as a new database has them."""
    summed = (*schema.COUNTED.values(), schema.daily, schema.store_month, schema.store_hour)
    lines = history()
    path, db = tmp_path / "r.jsonl", tmp_path / "c.db"
    write_lines(path, lines)
    with Store(f"sqlite:///{db}") as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE cs_meta SET value = '6' WHERE name = 'schema_version'")
        for table in summed:
            (ddl,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table.name,))
            conn.execute(f"ALTER TABLE {table.name} RENAME TO old")
            conn.execute(ddl[0].replace("WITHOUT ROWID", ""))
            conn.execute(f"INSERT INTO {table.name} SELECT * FROM old")
            conn.execute("DROP TABLE old")
        conn.execute("UPDATE cs_product_hour SET units = units + 1")  # kept, not recomputed
        with_rowid = conn.execute("SELECT name FROM sqlite_master WHERE sql LIKE '%ROWID%'")
        assert not with_rowid.fetchall()
    with Store(f"sqlite:///{db}") as store:
        assert store.upgrade() == (6, SCHEMA_VERSION)
        got = store.read_tables(TODAY)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        ddls = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
    assert all("WITHOUT ROWID" in ddls[t.name] for t in summed)

    expected = reference_tables(lines, TODAY)
    assert got.product_hour == {key: units + 1 for key, units in expected.product_hour.items()}
    for group in GROUPS:
        if group is not PRODUCT_HOUR:
            assert getattr(got, group.name) == getattr(expected, group.name), group.name
