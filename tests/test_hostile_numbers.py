"""Numbers outside Decimal's range (issue 18.1) through every path that reads a file.

A JSON number whose exponent is past what an exact decimal holds (`1e9999999999999999999`,
`1e-99999999999999999999`, `0e99999…`), anywhere in a line — a field validation ignores
included — used to raise `decimal.InvalidOperation` out of the reader: `sync` exited 1 with a
traceback and applied none of the batch, on every restart, and `--follow`, `reconcile` and the
partitioned path died alike. Each such line is now quarantined with a reason naming the number,
and its neighbours are applied: checked with the real `coffeeshop` command (`sync --once`,
`reconcile`, `reconcile --repair`), the engine following the file, and the partitioned reader,
on SQLite and MariaDB.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import current_receipts, receipt, reference_tables, run_coffeeshop

from coffeeshop.pipeline.engine import Syncer, SyncReport
from coffeeshop.pipeline.partitioned import finish, gather_in_process
from coffeeshop.pipeline.reconcile import reconcile
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

TODAY = dt.date(2026, 12, 7)
ISSUE_LINE = (
    '{"_id":"evil","Store_ID":1,"transactionDate":"2026-12-01","transactionTime":"08:00",'
    '"total_price":10,"items":[{"product_name":"Latte","product_quantity":1,'
    '"product_price":1e9999999999999999999}]}'
)


def _doc(rid: str, **raw: str) -> str:
    """A valid receipt line with some fields replaced by raw JSON tokens."""
    fields = {
        "_id": json.dumps(rid),
        "Store_ID": "2",
        "transactionDate": '"2026-12-02"',
        "transactionTime": '"09:30"',
        "total_price": "4.50",
        "items": '[{"product_name": "Mocha", "product_quantity": 1, "product_price": 4.5}]',
        **raw,
    }
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields.items()) + "}"


# (line, the number the reason must name)
EVIL: list[tuple[str, str]] = [
    (ISSUE_LINE, "1e9999999999999999999"),
    (
        _doc(
            "e2",
            items='[{"product_name": "Tea", "product_quantity": 1, '
            '"product_price": 1e-99999999999999999999}]',
        ),
        "1e-99999999999999999999",
    ),
    (_doc("e3", total_price="1E+1000000000000000000"), "1E+1000000000000000000"),
    (_doc("e4", note="-1e-99999999999999999999"), "-1e-99999999999999999999"),
    (_doc("e5", Store_ID="0e99999999999999999999"), "0e99999999999999999999"),
    (_doc("1e99999999999999999999", _id="1e99999999999999999999"), "1e99999999999999999999"),
    (
        json.dumps({"operationType": "replace", "documentKey": {"_id": "e7"}})[:-1]
        + ', "fullDocument": '
        + _doc("e7", total_price="12.5e-10000000000000000000")
        + "}",
        "12.5e-10000000000000000000",
    ),
]
NEIGHBOURS: list[dict[str, Any]] = [
    receipt(f"n{i}", store=1 + i % 3, date=f"2026-12-0{1 + i % 5}", total=f"{i}.25")
    for i in range(1, 9)
]


def file_lines() -> list[str]:
    """A neighbour before and after every evil line."""
    lines = [json.dumps(NEIGHBOURS[0])]
    for index, (line, _number) in enumerate(EVIL):
        lines.append(line)
        lines.append(json.dumps(NEIGHBOURS[1 + index % (len(NEIGHBOURS) - 1)]))
    return lines


def write_source(tmp_path: Path, *, last_newline: bool = True) -> Path:
    path = tmp_path / "receipts.jsonl"
    text = "\n".join(file_lines()) + "\n"
    if not last_newline:  # the file ends in an evil line without its newline
        text += EVIL[0][0]
    path.write_text(text, encoding="utf-8")
    return path


def evil_positions(path: Path) -> dict[str, str]:
    """Each evil line's "line N (byte B)", by the number it holds."""
    positions: dict[str, str] = {}
    offset = 0
    data = path.read_bytes()
    for number, line in enumerate(data.split(b"\n"), start=1):
        for evil, token in EVIL:
            if line == evil.encode():
                positions.setdefault(token, f"line {number} (byte {offset})")
        offset += len(line) + 1
    return positions


def check_store(url: str, path: Path, *, quarantined: int = len(EVIL)) -> None:
    """The neighbours applied exactly; each evil line quarantined with the number named."""
    with Store(url) as store:
        stored = set(store.iter_receipts())
        rows = store.quarantine_rows(limit=1000)
        tables = store.read_tables(TODAY)
    assert stored == set(current_receipts(NEIGHBOURS))
    reference = reference_tables(NEIGHBOURS, TODAY)
    assert tables.store_monthly == reference.store_monthly
    assert tables.item_performance == reference.item_performance
    assert tables.store_peak_hours == reference.store_peak_hours
    assert len(rows) == quarantined
    positions = evil_positions(path)
    by_position = {row["position"]: row for row in rows}
    for evil, number in EVIL:
        row = by_position[positions[number]]
        assert row["receipt_id"] is None  # unreadable: no _id can be trusted from the line
        assert re.fullmatch(
            rf"invalid JSON: the number {re.escape(number)} is out of range: exact decimals "
            r"take exponents from -999999999999999999 to 999999999999999999",
            row["reason"],
        ), row["reason"]
        assert row["raw"] == evil


coffeeshop = run_coffeeshop


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'analysis.db'}"
        return
    yield request.getfixturevalue("mysql_url")


# -- the real command -----------------------------------------------------------------------------


def test_sync_once_quarantines_each_out_of_range_number_and_applies_its_neighbours(
    url: str, tmp_path: Path
) -> None:
    path = write_source(tmp_path)
    first = coffeeshop("sync", "--once", "--source", str(path), "--db", url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr and "InvalidOperation" not in first.stderr
    check_store(url, path)
    # The checkpoint moved past the evil lines: a restart reads nothing again.
    again = coffeeshop("sync", "--once", "--source", str(path), "--db", url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    check_store(url, path)
    # reconcile reads the same file with the same decoder: no difference, exit 0.
    checked = coffeeshop("reconcile", "--source", str(path), "--db", url, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Traceback" not in checked.stderr
    assert re.search(r"\b0 difference", checked.stdout + checked.stderr)


def test_reconcile_repair_rebuilds_past_out_of_range_numbers(url: str, tmp_path: Path) -> None:
    path = write_source(tmp_path)
    result = coffeeshop("reconcile", "--repair", "--source", str(path), "--db", url, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    check_store(url, path)


def test_a_last_line_without_newline_holding_an_out_of_range_number_is_quarantined(
    tmp_path: Path,
) -> None:
    """`--once` counts a last line without its newline only when it is whole: a number out of
    range makes it unreadable, not incomplete, so it is quarantined rather than left pending
    (and the partitioned reader agrees)."""
    path = write_source(tmp_path, last_newline=False)
    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    with Store(url) as store:
        report = Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
    assert report.quarantined == len(EVIL) + 1
    with Store(url) as store:
        rows = store.quarantine_rows(limit=1000)
    last = len(file_lines()) + 1
    assert any(row["position"].startswith(f"line {last} ") for row in rows)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with Store(other) as store:
        gathered = gather_in_process(str(path), 3)
        done = finish(store, JsonlSource(path), gathered, today=TODAY, repair=True)
    assert done.quarantined == len(EVIL) + 1


# -- the engine following the file, and the partitioned reader -----------------------------------


def _wait(condition: Callable[[], bool], failure: list[BaseException]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert not failure, failure
        assert time.monotonic() < deadline, "the follower did not get there in time"
        time.sleep(0.02)


def test_follow_quarantines_out_of_range_numbers_as_they_arrive(url: str, tmp_path: Path) -> None:
    """`sync --follow` with its read-ahead process: the evil lines arrive one write at a time,
    each between neighbours; the follower keeps going and applies every neighbour."""
    path = tmp_path / "receipts.jsonl"
    path.write_bytes(b"")
    reports: list[SyncReport] = []
    failure: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        try:
            with Store(url) as store:
                Syncer(
                    store,
                    JsonlSource(path),
                    limits=BatchLimits(max_wait=0.05, poll_interval=0.02),
                    today=lambda: TODAY,
                    on_batch=lambda report: reports.append(report),
                ).run(follow=True, stop=stop)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        lines = file_lines()
        for line in lines:
            with open(path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        _wait(
            lambda: bool(reports) and reports[-1].applied + reports[-1].quarantined >= len(lines),
            failure,
        )
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert not failure, failure
    assert reports[-1].quarantined == len(EVIL)
    check_store(url, path)


@pytest.mark.parametrize("parts", [1, 2, 4])
def test_the_partitioned_reader_quarantines_out_of_range_numbers(
    url: str, tmp_path: Path, parts: int
) -> None:
    """The ranges of `sync --backfill-workers` / `reconcile --workers`: read, compared with the
    single-process reconcile, and repaired into the database."""
    path = write_source(tmp_path)
    single_url = f"sqlite:///{tmp_path / 'single.db'}"
    with Store(single_url) as store:
        single = reconcile(store, JsonlSource(path), today=TODAY, repair=True)
    with Store(url, bulk_load=True) as store:
        gathered = gather_in_process(str(path), parts)
        report = finish(store, JsonlSource(path), gathered, today=TODAY, repair=True)
    assert report.quarantined == single.quarantined == len(EVIL)
    assert report.receipts == single.receipts == len(NEIGHBOURS)
    check_store(url, path)
    check_store(single_url, path)
