"""Schema steps on databases that hold data: v5 creates the counted tables and v6 their month
tables, each filled from the stored receipts, equal to the reference recomputation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from helpers import execute_sql, receipt, reference_tables, write_lines

from coffeeshop.core.groups import GROUPS, MONTHLY_GROUPS
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store, schema

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


def test_v5_fills_the_counted_tables_of_a_v4_database_from_its_receipts(
    db_url: str, tmp_path: Path
) -> None:
    lines = history()
    path = tmp_path / "r.jsonl"
    write_lines(path, lines)
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        # as a v4 database: no counted tables
        for group in GROUPS:
            execute_sql(store, f"DROP TABLE {group.table}")
        execute_sql(store, "UPDATE cs_meta SET value = '4' WHERE name = 'schema_version'")
        assert store.upgrade() == (4, schema.SCHEMA_VERSION)
        got = store.read_tables(TODAY)
    expected = reference_tables(lines, TODAY)
    for group in GROUPS:
        assert getattr(got, group.name) == getattr(expected, group.name), group.name
        assert getattr(got, group.name), group.name


def test_v5_run_again_after_a_cut_refills_rather_than_adds(db_url: str, tmp_path: Path) -> None:
    lines = [receipt(1, items=[("Latte", 2)]), receipt(2, store=2, items=[("Tea", 1)])]
    path = tmp_path / "r.jsonl"
    write_lines(path, lines)
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        # the step ran (tables filled) but its version was never recorded
        execute_sql(store, "UPDATE cs_meta SET value = '4' WHERE name = 'schema_version'")
        store.upgrade()
        got = store.read_tables(TODAY)
    expected = reference_tables(lines, TODAY)
    assert got.store_day == expected.store_day
    assert got.product_hour == expected.product_hour


def test_v6_fills_the_month_tables_of_a_v5_database_from_its_receipts(
    db_url: str, tmp_path: Path
) -> None:
    lines = history()
    path = tmp_path / "r.jsonl"
    write_lines(path, lines)
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        # as a v5 database: the day tables, no month tables
        for group in MONTHLY:
            execute_sql(store, f"DROP TABLE {group.table}")
        execute_sql(store, "UPDATE cs_meta SET value = '5' WHERE name = 'schema_version'")
        assert store.upgrade() == (5, schema.SCHEMA_VERSION)
        got = store.read_tables(TODAY)
    expected = reference_tables(lines, TODAY)
    assert {m for m, *_ in expected.product_month} == {"2026-10", "2026-11"}
    for group in GROUPS:
        assert getattr(got, group.name) == getattr(expected, group.name), group.name


def test_v6_run_again_after_a_cut_refills_rather_than_adds(db_url: str, tmp_path: Path) -> None:
    lines = history()
    path = tmp_path / "r.jsonl"
    write_lines(path, lines)
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        # the step ran (tables filled) but its version was never recorded
        execute_sql(store, "UPDATE cs_meta SET value = '5' WHERE name = 'schema_version'")
        store.upgrade()
        got = store.read_tables(TODAY)
    expected = reference_tables(lines, TODAY)
    for group in MONTHLY:
        assert getattr(got, group.name) == getattr(expected, group.name), group.name
