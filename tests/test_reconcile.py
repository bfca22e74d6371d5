"""Reconcile: recompute from the whole source, report differences, repair under the lock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from helpers import execute_sql, receipt, reference_tables, write_lines

from coffeeshop.pipeline.engine import Syncer
from coffeeshop.pipeline.reconcile import reconcile
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store, schema

TODAY = dt.date(2026, 11, 25)


def lines() -> list[object]:
    out: list[object] = [
        receipt(i, store=i % 3, total=f"{i}.25", items=[("Latte", 1 + i % 2)]) for i in range(30)
    ]
    out += [{"operationType": "delete", "documentKey": {"_id": i}} for i in range(0, 30, 5)]
    out += [receipt(100, total="oops"), "not json"]
    return out


def sync(url: str, path: Path) -> None:
    with Store(url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()


def test_a_correct_database_has_no_differences(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, lines())
    sync(db_url, path)
    with Store(db_url) as store:
        report = reconcile(store, JsonlSource(path), today=TODAY)
    assert report.total_differences == 0
    assert report.receipts == 24 and report.quarantined == 2


def test_differences_in_tables_and_in_engine_state_are_all_reported(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, lines())
    sync(db_url, path)
    with Store(db_url) as store:
        execute_sql(store, "UPDATE store_peak_hours SET tx_count = tx_count + 1")
        execute_sql(store, "DELETE FROM store_monthly")
        execute_sql(store, "UPDATE cs_receipts SET cents = cents + 1 WHERE receipt_id = '7'")
        report = reconcile(store, JsonlSource(path), today=TODAY)
    assert report.counts == {
        "store_peak_hours": 3,
        "store_monthly": 3,
        "receipts (engine state)": 1,
    }
    assert any(d.table == "store_monthly" and d.actual == "no row" for d in report.differences)


def test_repair_makes_the_tables_exact_and_sync_continues_without_double_counting(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "r.jsonl"
    everything = lines()
    write_lines(path, everything)
    sync(db_url, path)
    with Store(db_url) as store:
        execute_sql(store, "DELETE FROM cs_receipts WHERE receipt_id IN ('1', '2')")
        execute_sql(store, "UPDATE item_performance SET total_sold = 0")
        execute_sql(store, "DELETE FROM cs_quarantine")
        report = reconcile(store, JsonlSource(path), today=TODAY, repair=True)
        assert report.repaired and report.total_differences > 0
        assert reconcile(store, JsonlSource(path), today=TODAY).total_differences == 0
        assert store.count(schema.quarantine) == 2  # the quarantine is rebuilt from the source too
    more = [receipt(200, total=3), {"operationType": "delete", "documentKey": {"_id": 1}}]
    write_lines(path, more)
    sync(db_url, path)
    with Store(db_url) as store:
        assert store.read_tables(TODAY) == reference_tables(everything + more, TODAY)
