"""Partitioned reconcile (the code the Dask tasks run, here in one process): for any history
of the property test's generator and any number of partitions from 1 to 8, the report and the
repair equal the single-process reconcile's, on SQLite and MariaDB; partition boundaries
inside a multi-byte character or a CRLF; partial aggregates merge exactly and associatively."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import execute_sql, receipt, write_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from test_properties import lines as histories

from coffeeshop.core.events import Upsert
from coffeeshop.core.groups import PRODUCT_MONTH_HOUR
from coffeeshop.core.partials import Partial, fold, merge_all, resolve, split
from coffeeshop.core.plan import Delta, parse_events
from coffeeshop.core.receipt_codec import row_to_receipt
from coffeeshop.core.receipts import parse_receipt, receipt_key
from coffeeshop.core.recompute import recompute
from coffeeshop.core.replay import MergedReplay, ReceiptReplay
from coffeeshop.errors import ConfigError, SourceChanged
from coffeeshop.pipeline import windows
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.pipeline.partitioned import finish, gather_in_process
from coffeeshop.pipeline.reconcile import ReconcileReport, reconcile
from coffeeshop.sources import partitions as partitions_module
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.sources.partitions import (
    FileRange,
    _line_start,
    plan_file,
    ranges_from,
    read_range,
)
from coffeeshop.store import Store, schema

TODAY = dt.date(2026, 11, 25)


def report_of(report: ReconcileReport) -> tuple[Any, ...]:
    return (
        report.receipts,
        report.quarantined,
        report.position,
        report.counts,
        [str(d) for d in report.differences],
        report.repaired,
    )


def state_of(url: str) -> tuple[Any, ...]:
    """Everything a repair writes: tables, engine state, quarantine, checkpoint position."""
    with Store(url) as store:
        q = schema.quarantine
        with store.engine.connect() as conn:
            quarantine = conn.execute(
                select(
                    q.c.key, q.c.receipt_id, q.c.reason, q.c.source, q.c.position, q.c.raw
                ).order_by(q.c.id)
            ).all()
        checkpoints = [(c.source, c.position) for c in store.list_checkpoints()]
        return (
            store.read_tables(TODAY),
            list(store.iter_receipts()),
            [tuple(row) for row in quarantine],
            checkpoints,
        )


def partitioned(url: str, path: Path, parts: int, *, repair: bool = False) -> ReconcileReport:
    """A repair writes with the bulk path, as the flow's (MariaDB: LOAD DATA LOCAL INFILE)."""
    with Store(url, bulk_load=repair) as store:
        gathered = gather_in_process(str(path), parts)
        assert gathered.partitions <= parts
        return finish(store, JsonlSource(path), gathered, today=TODAY, repair=repair)


def single(url: str, path: Path, *, repair: bool = False) -> ReconcileReport:
    with Store(url) as store:
        return reconcile(store, JsonlSource(path), today=TODAY, repair=repair)


def sync_prefix(url: str, path: Path, events: int) -> None:
    """Sync one batch of the first `events` events: the database then differs from the file.
    The tables exist either way (a plain reconcile only reads: it needs them)."""
    stop = threading.Event()
    with Store(url) as store:
        store.upgrade()
        if not events:
            return
        Syncer(
            store,
            JsonlSource(path),
            limits=BatchLimits(max_events=events, max_wait=3600),  # the same batch in both
            today=lambda: TODAY,
            on_batch=lambda report: stop.set(),
        ).run(stop=stop)


def check_equal(url: str, other_url: str, tmp_path: Path, data: st.DataObject) -> None:
    everything = data.draw(histories())
    if data.draw(st.booleans()):  # sometimes: CRLF line ends, a last line without newline
        text = "".join(
            (o if isinstance(o, str) else json.dumps(o, ensure_ascii=False)) + "\r\n"
            for o in everything
        )
        if data.draw(st.booleans()):
            text = text.rstrip("\r\n")
        path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
        path.write_bytes(text.encode("utf-8"))
    else:
        path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
        write_lines(path, everything)
    synced = data.draw(st.integers(min_value=0, max_value=len(everything)))
    for target in (url, other_url):
        sync_prefix(target, path, synced)
    expected = report_of(single(url, path))
    for parts in range(1, 9):
        assert report_of(partitioned(url, path, parts)) == expected, parts
    # The repair writes what the single-process repair writes.
    parts = data.draw(st.integers(min_value=1, max_value=8))
    assert report_of(partitioned(url, path, parts, repair=True)) == report_of(
        single(other_url, path, repair=True)
    )
    assert state_of(url) == state_of(other_url)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_partitioned_reconcile_equals_single_process_on_sqlite(
    tmp_path: Path, data: st.DataObject
) -> None:
    a = f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
    b = f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
    check_equal(a, b, tmp_path, data)


@pytest.mark.mariadb
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_partitioned_reconcile_equals_single_process_on_mariadb(
    mysql_url: str, tmp_path: Path, data: st.DataObject
) -> None:
    with Store(mysql_url) as store:
        schema.metadata.drop_all(store.engine)
    other = f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
    check_equal(mysql_url, other, tmp_path, data)


# -- boundaries --------------------------------------------------------------------------------


def test_every_cut_inside_a_multibyte_character_or_a_crlf_keeps_every_line_whole(
    tmp_path: Path,
) -> None:
    """Cut the file at every byte: each line is read once, whole, by the range it starts in."""
    docs = [receipt(i, items=[("Crème brûlée ☕", 1 + i)], total=f"{i}.5") for i in range(1, 6)]
    body = "\r\n".join(json.dumps(d, ensure_ascii=False) for d in docs) + "\r\n"
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    data = path.read_bytes()
    assert any(b >= 0x80 for b in data)
    assert plan_file(path, 3)[0].start == 0
    reference = recompute((r for r in _receipts(gather_in_process(str(path), 1))), TODAY)
    size = len(data)
    for cut in range(1, size):
        ranges = _ranges_cut_at(path, cut)  # two ranges, the nominal cut at byte `cut`
        for r in ranges:
            assert r.start == 0 or data[r.start - 1 : r.start] == b"\n"
        outputs = [read_range(r, 1) for r in ranges]
        assert sum(o.lines for o in outputs) == 5
        assert not any(o.unkeyed for o in outputs)
        merged = resolve([o.shards[0] for o in outputs])
        assert merged.partial.tables(TODAY) == reference


def _ranges_cut_at(path: Path, cut: int) -> list[FileRange]:
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    start = _line_start(fd, cut, size)
    os.close(fd)
    return ranges_from(str(path), [0, start] if 0 < start < size else [0])


def _receipts(gathered: Any) -> list[Any]:
    return [row_to_receipt(row)[0] for row in gathered.rows()]


def test_a_receipt_replaced_and_deleted_in_later_partitions_ends_in_its_final_state(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.jsonl"
    lines: list[Any] = [receipt(i, total=1) for i in range(50)]
    lines += [receipt(1, total=7), {"operationType": "delete", "documentKey": {"_id": 2}}]
    lines += [receipt(3, total="bad"), receipt(4, total=1)] + [
        receipt(i, total=2) for i in range(50, 99)
    ]
    lines += [receipt(3, total=9)]
    write_lines(path, lines)
    for parts in (1, 2, 5, 8):
        gathered = gather_in_process(str(path), parts)
        got = {r.key: r.cents for r in _receipts(gathered)}
        assert got[receipt_key(1)] == 700 and receipt_key(2) not in got
        assert got[receipt_key(3)] == 900 and list(gathered.quarantine) == []
        assert len(got) == 98


# -- every worker reads the coordinator's file --------------------------------------------------


def _other_files(tmp_path: Path, lines: list[Any]) -> dict[str, bytes]:
    """What another worker may find at the same path: never the coordinator's file."""
    same_size = [receipt(i, total=2) for i in range(len(lines) - 3)] + lines[-3:]
    text = b"".join(json.dumps(o).encode() + b"\n" for o in same_size)
    longer = [*lines[:-3], receipt(10_000, total=1), *lines[-3:]]  # a line inserted mid-file
    original = b"".join(json.dumps(o).encode() + b"\n" for o in lines)
    return {
        "another file": text[: len(original)].ljust(len(original), b"\n"),
        "a shorter copy": original[: len(original) // 2],
        "a copy with a line inserted": b"".join(json.dumps(o).encode() + b"\n" for o in longer),
    }


@pytest.mark.parametrize("what", ["another file", "a shorter copy", "a copy with a line inserted"])
def test_a_worker_that_sees_another_file_at_the_same_path_fails_the_repair_and_writes_nothing(
    what: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two "workers", each with its own directory holding a `r.jsonl`: the second one's is
    another file. The coordinator planned the ranges on its own; the second worker's ranges
    are read from the other file (the path the spec names, on its machine)."""
    lines: list[Any] = [receipt(i, store=i % 3, total=f"{i}.50") for i in range(400)]
    coordinator = tmp_path / "worker-1" / "r.jsonl"
    coordinator.parent.mkdir()
    write_lines(coordinator, lines)
    other = tmp_path / "worker-2" / "r.jsonl"
    other.parent.mkdir()
    other.write_bytes(_other_files(tmp_path, lines)[what])
    url = f"sqlite:///{tmp_path / 'a.db'}"
    sync_prefix(url, coordinator, 100)  # the database holds a part: a repair would write
    before = state_of(url)
    real_read = partitions_module.read_range

    def on_two_workers(part: FileRange, buckets: int) -> Any:
        if part.index % 2:  # the second worker: the same path names its own file
            part = dataclasses.replace(part, path=str(other))
        return real_read(part, buckets)

    monkeypatch.setattr(partitions_module, "read_range", on_two_workers)
    with pytest.raises(SourceChanged) as caught:
        partitioned(url, coordinator, 4, repair=True)
    message = str(caught.value)
    assert "\n" not in message and str(other) in message and "coordinator" in message
    assert state_of(url) == before


def test_a_file_missing_on_a_worker_is_one_line_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(i, total=1) for i in range(10)])
    part = dataclasses.replace(plan_file(path, 1)[0], path=str(tmp_path / "gone" / "r.jsonl"))
    with pytest.raises(ConfigError) as caught:
        read_range(part, 1)
    assert str(tmp_path / "gone" / "r.jsonl") in str(caught.value)
    assert "\n" not in str(caught.value) and "worker" in str(caught.value)


def test_the_coordinators_own_file_passes_the_check_and_may_have_grown(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(i, total=1) for i in range(300)])
    ranges = plan_file(path, 3)
    write_lines(path, [receipt(1000, total=5)])  # appended after the plan: not read
    assert sum(read_range(r, 2).lines for r in ranges) == 300


# -- mergeable partials --------------------------------------------------------------------------

money = st.decimals(min_value=0, max_value=10**6, places=2).map(str)
docs = st.builds(
    lambda rid, store, day, hour, total, items: receipt(
        rid,
        store=store,
        date=f"2026-{day // 28 + 1:02d}-{day % 28 + 1:02d}",
        time=f"{hour:02d}:00",
        total=total,
        items=items,
    ),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=60),
    st.integers(min_value=0, max_value=23),
    money,
    st.lists(st.tuples(st.sampled_from(["Latte", "latte", "Tea"]), st.integers(1, 5)), max_size=3),
)


def partial_of(documents: list[dict[str, Any]], position: int = 0) -> Partial:
    events = parse_events(
        Upsert(receipt_key(d["_id"]), str(d["_id"]), d, "", "") for d in documents
    )
    candidates, _ = fold((position + i, "", e) for i, e in enumerate(events))
    return resolve(split(candidates, 1)).partial


@settings(max_examples=200, deadline=None)
@given(
    st.lists(docs, max_size=40).map(lambda ds: list({d["_id"]: d for d in ds}.values())),
    st.lists(st.integers(min_value=0, max_value=40), max_size=5),
)
def test_partials_merge_exactly_and_associatively(
    documents: list[dict[str, Any]], cuts: list[int]
) -> None:
    bounds = sorted({0, len(documents), *[min(c, len(documents)) for c in cuts]})
    pieces = [partial_of(documents[a:b]) for a, b in itertools.pairwise(bounds)]
    whole = partial_of(documents)
    left = merge_all(pieces)
    right = Partial()
    for piece in reversed(pieces):
        right = piece.merge(right)
    assert left == whole and right == whole
    if len(pieces) >= 3:
        a, b, c = pieces[:3]
        assert a.merge(b).merge(c) == a.merge(b.merge(c))
    reference = recompute((parse_receipt(d) for d in documents), TODAY)
    assert whole.tables(TODAY) == reference


@settings(max_examples=200, deadline=None)
@given(
    st.lists(docs, max_size=40).map(lambda ds: list({d["_id"]: d for d in ds}.values())),
    st.lists(st.integers(min_value=0, max_value=40), max_size=5),
)
def test_a_merged_partial_adds_to_every_internal_table_what_its_receipts_add(
    documents: list[dict[str, Any]], cuts: list[int]
) -> None:
    """A partitioned repair writes `Partial.delta()` instead of summing `Delta.add` over its
    receipts: every group (every day, not only this week's and last) must be the same."""
    bounds = sorted({0, len(documents), *[min(c, len(documents)) for c in cuts]})
    merged = merge_all(partial_of(documents[a:b]) for a, b in itertools.pairwise(bounds))
    expected = Delta()
    for d in documents:
        expected.add(parse_receipt(d), +1)
    replay = ReceiptReplay((parse_receipt(d), str(d["_id"])) for d in documents)
    rows = sorted(replay.rows())
    assert replay.delta() == expected  # a rebuild writes either delta pruned
    assert merged.delta().prune() == expected.prune() and expected.receipts == len(rows)
    runs = [sorted(rows[i::3]) for i in range(3)]
    assert list(MergedReplay(runs, merged).rows()) == rows


# -- the day- and month-keyed counted tables, a window at a time ----------------------------


@pytest.mark.parametrize("keys", [3, 30, 60, windows.KEYS])
def test_the_day_and_month_keyed_counted_tables_are_compared_and_repaired_a_window_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: int
) -> None:
    """The merged state a partitioned read hands to the comparison holds no day- or
    month-keyed counted sums (they grow with the history: `pipeline.windows` serves them a
    window of days or months at a time), and still every difference is found and listed as
    the single-process reconcile lists it, whatever the windows: a row edited on one day
    (month), rows missing on another, and rows on days (months) the source has no receipt on
    (before its first, between two, after its last)."""
    monkeypatch.setattr(windows, "KEYS", keys)
    path = tmp_path / "r.jsonl"
    days = ["2026-09-03", "2026-10-14", "2026-10-31", "2026-11-01", "2026-11-20"]
    write_lines(
        path,
        [
            receipt(i, store=i % 3, date=days[i % len(days)], items=[("Latte", 1), ("Tè", 2)])
            for i in range(60)
        ],
    )
    url, other = (f"sqlite:///{tmp_path / name}.db" for name in ("a", "b"))
    for target in (url, other):
        sync_prefix(target, path, 60)
        with Store(target) as store:
            execute_sql(store, "UPDATE cs_store_day SET cents = cents + 7 WHERE day = '2026-10-14'")
            execute_sql(store, "DELETE FROM cs_product_hour WHERE day = '2026-11-01'")
            execute_sql(
                store, "UPDATE cs_product_month_hour SET units = units + 1 WHERE month = '2026-10'"
            )
            for month in ("2025-01", "2026-12"):  # before the first month, after the last
                execute_sql(
                    store,
                    "INSERT INTO cs_store_month_weekday_hour (month, store_id, weekday, hour, "
                    f"receipts) VALUES ('{month}', 1, 3, 9, 4)",
                )
            for day in ("2025-02-10", "2026-10-20", "2027-01-02"):
                execute_sql(
                    store,
                    "INSERT INTO cs_store_day_hour (day, store_id, hour, receipts, cents) "
                    f"VALUES ('{day}', 1, 9, 3, 300)",
                )
    gathered = gather_in_process(str(path), 4)
    assert all(not gathered.partial.groups.sums[g.name] for g in windows.WINDOWED)
    plan = gathered.windows.plan(windows.STORE_DAY)
    assert plan[0][0] is None and plan[-1][1] is None  # open below and above
    assert len(plan) == {3: 5, 30: 3}.get(keys, 1)  # 3 to 12 keys a day in each of 8 buckets
    months = gathered.windows.plan(PRODUCT_MONTH_HOUR)  # over 3 months
    assert len(months) == {3: 3, 30: 3, 60: 2}.get(keys, 1)
    expected = single(url, path)
    assert expected.counts == {
        "cs_store_day": 3,
        "cs_product_hour": 6,
        "cs_store_day_hour": 3,
        "cs_product_month_hour": 6,
        "cs_store_month_weekday_hour": 2,
    }
    for parts in (1, 3, 5):
        assert report_of(partitioned(url, path, parts)) == report_of(expected)
    assert report_of(partitioned(url, path, 3, repair=True)) == report_of(
        single(other, path, repair=True)
    )
    assert state_of(url) == state_of(other)
    assert single(url, path).total_differences == 0
