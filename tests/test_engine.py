"""The sync engine end to end over real JSONL files, on SQLite and on MariaDB."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import receipt, reference_tables, write_lines
from sqlalchemy.exc import OperationalError

from coffeeshop.errors import CheckpointMoved, SourceChanged
from coffeeshop.pipeline.engine import RetryPolicy, Syncer
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store, schema

TODAY = dt.date(2026, 11, 25)  # a Wednesday: this week is 23–29 Nov, last week 16–22 Nov


def sync(url: str, path: Path, *, max_events: int = 1000, fault: Any = None) -> Any:
    with Store(url, fault=fault) as store:
        return Syncer(
            store, JsonlSource(path), limits=BatchLimits(max_events=max_events), today=lambda: TODAY
        ).run()


def tables(url: str) -> Any:
    with Store(url) as store:
        return store.read_tables(TODAY)


def assert_exact(url: str, lines: list[Any]) -> None:
    assert tables(url) == reference_tables(lines, TODAY)


def test_inserts_fill_all_four_tables(db_url: str, tmp_path: Path) -> None:
    lines = [
        receipt(1, store=1, date="2026-11-23", time="08:00", total=10, items=[("Latte", 2)]),
        receipt(
            2, store=1, date="2026-11-24", time="08:30:00", total="2.50", items=[("Espresso", 1)]
        ),
        receipt(
            3,
            store=2,
            date="2026-11-17",
            time="12:00:00",
            total=7.25,
            items=[("Latte", 1), ("Bagel", 3)],
        ),
        receipt(4, store=2, date="2026-10-31", time="13:00:00", total=0, items=[]),
    ]
    path = tmp_path / "r.jsonl"
    write_lines(path, lines)
    report = sync(db_url, path)
    assert report.applied == 4 and report.quarantined == 0
    got = tables(db_url)
    assert got.store_monthly == {
        ("2026-11", 1): Decimal("12.50"),
        ("2026-11", 2): Decimal("7.25"),
        ("2026-10", 2): Decimal("0.00"),
    }
    assert got.item_performance == {"Latte": 3, "Espresso": 1, "Bagel": 3}
    # store 2 has one receipt at 12h and one at 13h: the tie goes to the earlier hour
    assert got.store_peak_hours == {1: (8, 2), 2: (12, 1)}
    assert got.summary.as_of == TODAY
    assert got.summary.spend_per_rcpt == Decimal("4.94")  # 19.75 / 4 = 4.9375, half-up
    assert got.summary.items_per_rcpt == Decimal("1.75")  # 7 units / 4
    assert got.summary.this_week_sales == Decimal("12.50")
    assert got.summary.last_week_sales == Decimal("7.25")
    assert_exact(db_url, lines)


def test_replace_update_and_delete_subtract_the_old_version(db_url: str, tmp_path: Path) -> None:
    first = receipt(1, store=1, date="2026-11-20", time="09:00", total=5, items=[("Latte", 1)])
    second = receipt(2, store=1, date="2026-11-20", time="10:00", total=3, items=[("Tea", 1)])
    replaced = receipt(1, store=2, date="2026-12-01", time="11:00", total=8, items=[("Mocha", 2)])
    path = tmp_path / "r.jsonl"
    lines: list[Any] = [
        first,
        second,
        {"operationType": "replace", "documentKey": {"_id": 1}, "fullDocument": replaced},
        {"operationType": "update", "documentKey": {"_id": 2}, "fullDocument": None},
        {"operationType": "delete", "documentKey": {"_id": 2}},
    ]
    write_lines(path, lines)
    report = sync(db_url, path, max_events=2)
    assert report.skipped == 1
    got = tables(db_url)
    # every group touched only by the old versions is gone
    assert got.store_monthly == {("2026-12", 2): Decimal("8.00")}
    assert got.item_performance == {"Mocha": 2}
    assert got.store_peak_hours == {2: (11, 1)}
    assert_exact(db_url, lines)


def test_delete_of_every_receipt_leaves_no_rows_and_zero_summary(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "r.jsonl"
    lines: list[Any] = [receipt(i, total=i) for i in range(1, 4)]
    lines += [{"operationType": "delete", "documentKey": {"_id": i}} for i in range(1, 4)]
    write_lines(path, lines)
    sync(db_url, path)
    got = tables(db_url)
    assert got.store_monthly == {} and got.item_performance == {} and got.store_peak_hours == {}
    assert got.summary.spend_per_rcpt == 0 and got.summary.items_per_rcpt == 0
    assert got.summary.this_week_sales == 0 and got.summary.last_week_sales == 0


def test_product_names_compare_exactly_whatever_the_collation(db_url: str, tmp_path: Path) -> None:
    # (Latte + U+0331, a combining mark without a precomposed form, is NFC and not `Latte`.)
    names = ["Latte", "latte", "Latté", "Latte\u0331", "☕ Mocha", "قهوة", "Ｌａｔｔｅ", "Latte 🥐"]
    path = tmp_path / "r.jsonl"
    lines = [receipt(i, items=[(name, i + 1)]) for i, name in enumerate(names)]
    write_lines(path, lines)
    sync(db_url, path)
    assert tables(db_url).item_performance == {name: i + 1 for i, name in enumerate(names)}


def test_a_name_in_nfc_and_in_nfd_is_one_product(db_url: str, tmp_path: Path) -> None:
    """Issue 18.15: `Café Crème` in NFC and in NFD were two identical-looking rows of
    `item_performance`; both are the NFC name now, in the tables and the stored receipts."""
    nfc, nfd = "Caf\u00e9 Cr\u00e8me", "Cafe\u0301 Cre\u0300me"
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1, items=[(nfc, 1)]), receipt(2, items=[(nfd, 2), (nfc, 4)])])
    sync(db_url, path)
    assert tables(db_url).item_performance == {nfc: 7}
    with Store(db_url) as store:
        assert {r.items for r in store.iter_receipts()} == {((nfc, 1),), ((nfc, 6),)}


def test_duplicates_and_replays_change_nothing(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    doc = receipt({"$oid": "6650c7e2a1b2c3d4e5f60718"}, total=4.2)
    same_doc_native_key = dict(doc, _id={"$oid": "6650C7E2A1B2C3D4E5F60718"})
    write_lines(
        path, [doc, doc, {"operationType": "insert", "fullDocument": doc}, same_doc_native_key]
    )
    sync(db_url, path, max_events=1)
    got = tables(db_url)
    assert got.store_monthly == {("2026-11", 1): Decimal("4.20")}
    assert got.item_performance == {"Latte": 2}


def test_restart_resumes_after_the_last_committed_line(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines: list[Any] = [receipt(i, total=1) for i in range(10)]
    write_lines(path, lines)
    assert sync(db_url, path).applied == 10
    assert sync(db_url, path).applied == 0  # nothing new
    more = [receipt(i, total=2) for i in range(10, 15)]
    write_lines(path, more)
    assert sync(db_url, path).applied == 5
    assert_exact(db_url, lines + more)


class Crash(Exception):
    pass


@pytest.mark.parametrize("stage", ["begin", "receipts", "aggregates", "quarantine", "checkpoint"])
def test_a_crash_inside_the_transaction_commits_nothing(
    db_url: str, tmp_path: Path, stage: str
) -> None:
    path = tmp_path / "r.jsonl"
    lines: list[Any] = [receipt(i, total=i, store=i % 3) for i in range(20)]
    lines += ["not json", receipt(99, total=-1)]
    lines += [{"operationType": "delete", "documentKey": {"_id": i}} for i in range(0, 20, 4)]
    write_lines(path, lines)
    calls = {"n": 0}

    def fault(at: str) -> None:
        if at == stage:
            calls["n"] += 1
            if calls["n"] == 2:  # the second batch dies at this point
                raise Crash(at)

    with pytest.raises(Crash):
        sync(db_url, path, max_events=8, fault=fault)
    with Store(db_url) as store:
        checkpoint = store.load_checkpoint(JsonlSource(path).name)
        assert checkpoint is not None and checkpoint.batches == 1  # only the first batch landed
        assert store.count(schema.receipts) == 8
    sync(db_url, path, max_events=8)
    assert_exact(db_url, lines)
    with Store(db_url) as store:
        assert len(store.quarantine_rows()) == 2


def test_quarantine_keeps_reason_position_and_raw_input(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    bad = receipt(7, total="12,50")
    write_lines(path, [receipt(1), "{oops", bad, {"no": "id"}, [1, 2]])
    report = sync(db_url, path)
    assert report.applied == 1 and report.quarantined == 4
    with Store(db_url) as store:
        rows = store.quarantine_rows()
    by_line = {row["position"].split(" (")[0]: row for row in rows}
    assert set(by_line) == {"line 2", "line 3", "line 4", "line 5"}
    assert by_line["line 2"]["reason"].startswith("invalid JSON")
    assert by_line["line 2"]["raw"] == "{oops"
    assert by_line["line 3"]["reason"].startswith("total_price:")
    assert by_line["line 3"]["receipt_id"] == "7"
    assert '"12,50"' in by_line["line 3"]["raw"]
    assert by_line["line 4"]["reason"] == "document has no _id"
    assert by_line["line 5"]["reason"] == "expected a JSON object, got an array"


def test_a_receipt_leaves_quarantine_when_fixed_or_deleted(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1, total=-5), receipt(2, time="24:00"), receipt(3, store=-1)])
    sync(db_url, path)
    with Store(db_url) as store:
        assert {row["receipt_id"] for row in store.quarantine_rows()} == {"1", "2", "3"}
    write_lines(path, [receipt(1, total=5), {"operationType": "delete", "documentKey": {"_id": 2}}])
    sync(db_url, path)
    with Store(db_url) as store:
        assert [row["receipt_id"] for row in store.quarantine_rows()] == ["3"]
    assert tables(db_url).store_monthly == {("2026-11", 1): Decimal("5.00")}


def test_a_valid_receipt_replaced_by_an_invalid_version_stops_counting(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "r.jsonl"
    lines = [receipt(1, total=5), receipt(2, total=3), receipt(1, total="abc")]
    write_lines(path, lines)
    sync(db_url, path, max_events=1)
    assert tables(db_url).store_monthly == {("2026-11", 1): Decimal("3.00")}
    with Store(db_url) as store:
        assert [row["receipt_id"] for row in store.quarantine_rows()] == ["1"]


def test_earlier_summary_rows_are_kept_as_snapshots(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1, total=10, date="2026-11-24")])
    days = iter([dt.date(2026, 11, 24)] * 3 + [TODAY] * 10)
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: next(days)).run()
    write_lines(path, [receipt(2, total=20, date="2026-11-25")])
    sync(db_url, path)
    with Store(db_url) as store:
        rows = {row.as_of: row for row in store.summary_rows()}
    assert rows[dt.date(2026, 11, 24)].spend_per_rcpt == Decimal("10.00")
    assert rows[TODAY].spend_per_rcpt == Decimal("15.00")
    assert rows[TODAY].this_week_sales == Decimal("30.00")


def test_a_truncated_source_is_reported_not_misread(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(i) for i in range(5)])
    sync(db_url, path)
    write_lines(path, [receipt(9)], mode="w")
    with pytest.raises(SourceChanged, match="shorter than the committed position"):
        sync(db_url, path)


def test_a_stale_writer_cannot_move_the_checkpoint(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1)])
    sync(db_url, path)
    with Store(db_url) as store:
        store.upgrade()
        with pytest.raises(CheckpointMoved):
            store.apply_batch(
                JsonlSource(path).name, [], position="{}", expected_version=0, today=TODAY
            )


def test_a_batch_whose_commit_acknowledgement_was_lost_is_not_applied_twice(
    db_url: str, tmp_path: Path
) -> None:
    name = JsonlSource(tmp_path / "r.jsonl").name
    with Store(db_url) as store:
        store.upgrade()
        first = store.apply_batch(name, [], position="p1", expected_version=0, today=TODAY)
        assert not first.recovered
        # the same call again, as a retry after a lost acknowledgement would make it
        again = store.apply_batch(name, [], position="p1", expected_version=0, today=TODAY)
        assert again.recovered and again.version == first.version == 1
        # a different position at that version is a real move, not our own commit
        with pytest.raises(CheckpointMoved) as moved:
            store.apply_batch(name, [], position="p2", expected_version=0, today=TODAY)
        assert (moved.value.version, moved.value.position) == (1, "p1")


@pytest.mark.parametrize("lost_at_batch", [1, 2])
def test_the_engine_counts_a_recovered_batch_once_and_the_tables_stay_exact(
    db_url: str, tmp_path: Path, lost_at_batch: int, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    lines: list[Any] = [receipt(i, total=i, items=[("Latte", 1)]) for i in range(1, 31)]
    lines.append("{not json")

    write_lines(path, lines)
    with Store(db_url) as store:
        real_apply = store.apply_batch
        calls = {"n": 0}

        def apply_then_lose_the_acknowledgement(*args: Any, **kwargs: Any) -> Any:
            result = real_apply(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] == lost_at_batch:  # committed, but the client never hears so
                raise OperationalError(
                    "COMMIT", {}, Exception("(2013) Lost connection"), connection_invalidated=True
                )
            return result

        store.apply_batch = apply_then_lose_the_acknowledgement  # type: ignore[method-assign]
        report = Syncer(
            store,
            JsonlSource(path),
            limits=BatchLimits(max_events=10),
            today=lambda: TODAY,
            retry=RetryPolicy(attempts=3, first_delay=0.0),
        ).run()
    assert report.recovered == 1 and report.retries == 1
    assert (report.applied, report.quarantined) == (30, 1)
    assert not [r for r in caplog.records if "moved under this writer" in r.getMessage()]
    assert any(
        "had committed before its connection was lost" in r.getMessage() for r in caplog.records
    )
    assert_exact(db_url, lines)


def test_follow_applies_lines_as_they_are_appended(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1)])
    stop = threading.Event()
    seen: list[int] = []

    def on_batch(report: Any) -> None:
        seen.append(report.applied)
        if report.applied == 1:
            write_lines(path, [receipt(2), receipt(3)])
        if report.applied >= 3:
            stop.set()

    with Store(db_url) as store:
        syncer = Syncer(
            store,
            JsonlSource(path),
            limits=BatchLimits(poll_interval=0.02),
            today=lambda: TODAY,
            on_batch=on_batch,
        )
        thread = threading.Thread(target=syncer.run, kwargs={"follow": True, "stop": stop})
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert seen[-1] == 3
    assert tables(db_url).item_performance == {"Latte": 6}


def test_an_idle_follower_starts_the_new_days_summary_row_at_midnight(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1, total=10, date="2026-11-25")])
    clock = {"today": TODAY}
    stop = threading.Event()

    def on_batch(_: Any) -> None:  # after the first batch, midnight passes; nothing else comes
        clock["today"] = TODAY + dt.timedelta(days=1)

    with Store(db_url) as store:
        store.upgrade()  # the tables exist before this test starts reading them
        syncer = Syncer(store, JsonlSource(path), today=lambda: clock["today"], on_batch=on_batch)
        thread = threading.Thread(target=syncer.run, kwargs={"follow": True, "stop": stop})
        thread.start()
        deadline = time.monotonic() + 120
        rows: list[Any] = []
        while time.monotonic() < deadline:
            rows = [row.as_of for row in store.summary_rows()]
            if TODAY + dt.timedelta(days=1) in rows:
                break
            time.sleep(0.1)
        stop.set()
        thread.join(timeout=60)
    assert TODAY + dt.timedelta(days=1) in rows
