"""The rebuild's bulk path (`store.bulk`: LOAD DATA LOCAL INFILE on MariaDB, COPY on
PostgreSQL): a backfill
writes byte for byte what `sync --once` writes (the hostile corpus included), odd strings
and NULLs survive the file format, a failure mid-load leaves the database as it was, and a
server that refuses LOCAL INFILE gets the INSERT path and one log line."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from helpers import receipt, write_lines
from hostile_corpus import CASES, neighbour_lines
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from coffeeshop.core.plan import QuarantineEntry
from coffeeshop.core.receipts import Receipt
from coffeeshop.errors import StoreError
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.pipeline.partitioned import finish, gather_in_process
from coffeeshop.pipeline.reconcile import reconcile
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store, bulk, schema
from coffeeshop.store.dialects.mysql import MySQL

TODAY = dt.date(2026, 11, 25)
ODD = [
    "tab\there",
    "new\nline",
    "cr\rlf\r\n",
    "back\\slash\\",
    "\\N",
    "N",
    "quotes ' \" `",
    "nul\x00byte",
    "Crème ☕ 🦄",
    "",
]


def url_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / name}.db"
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(request.getfixturevalue("mysql_url"))


def contents(url: str) -> tuple[Any, ...]:
    """Every table a rebuild writes, as the database returns it (bytes and all), without the
    columns that say when or in which order rows were written."""
    q, c = schema.quarantine, schema.checkpoints
    with Store(url) as store, store.engine.connect() as conn:
        tables = {}
        for table in schema.metadata.sorted_tables:
            if table.name in (q.name, c.name, schema.state.name, "cs_meta"):
                continue
            tables[table.name] = sorted((tuple(r) for r in conn.execute(select(table))), key=repr)
        columns = [q.c.key, q.c.receipt_id, q.c.reason, q.c.source, q.c.position, q.c.raw]
        quarantine = sorted(conn.execute(select(*columns)).all(), key=repr)
        positions = conn.execute(select(c.c.source, c.c.position)).all()
    return tables, [tuple(r) for r in quarantine], [tuple(p) for p in positions]


def corpus_file(path: Path, *, nul: bool = True) -> Path:
    """Every hostile line that fits one file (not the huge ones, the first-line or CRLF
    cases, or a known defect's), between the valid neighbours. `nul=False` leaves out the
    lines with a NUL character, raw or escaped: PostgreSQL's text cannot hold one, on any
    write path (a known defect of that optional backend, not of the bulk path)."""
    lines = list(neighbour_lines())
    for case in CASES:
        if case.slow or case.placement != "middle" or case.eol != b"\n" or case.xfail:
            continue
        lines.extend(
            line for line in case.lines if nul or (b"\x00" not in line and b"\\u0000" not in line)
        )
    lines.extend(neighbour_lines()[:2])
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def backfill(url: str, path: Path, parts: int = 3) -> None:
    with Store(url, bulk_load=True) as store:
        gathered = gather_in_process(str(path), parts)
        finish(store, JsonlSource(path), gathered, today=TODAY, repair=True)


def sync_once(url: str, path: Path) -> None:
    with Store(url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()


@pytest.mark.parametrize("backend", ["sqlite", "mariadb", "postgresql"])
def test_a_backfill_writes_byte_for_byte_what_sync_once_writes_hostile_corpus_included(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path = corpus_file(tmp_path / "hostile.jsonl", nul=backend != "postgresql")
    backfilled = url_for(backend, tmp_path, request, "backfill")
    synced = f"sqlite:///{tmp_path / 'synced.db'}"
    backfill(backfilled, path)
    sync_once(synced, path)
    got, want = contents(backfilled), contents(synced)
    assert got[0]["cs_receipts"] and got[1]  # receipts and quarantine entries were written
    assert got == want


@pytest.mark.mariadb
def test_odd_strings_and_nulls_survive_the_load_file(mysql_url: str, tmp_path: Path) -> None:
    receipts = [
        (
            Receipt(
                f"str:{odd}\udc80{n}",
                n % 3,
                dt.date(2026, 11, 1 + n),
                n,
                100 * n + 1,
                ((odd, n + 1),),
            ),
            odd,
        )
        for n, odd in enumerate(ODD)
    ]
    entries = [
        QuarantineEntry(f"str:q{n}", odd, odd or "empty", odd, odd) for n, odd in enumerate(ODD)
    ]
    entries.append(QuarantineEntry(None, None, "unreadable", "line 1 (byte 0)", "\\N\t\n"))
    plain = f"sqlite:///{tmp_path / 'plain.db'}"
    for url, bulk_load in ((mysql_url, True), (plain, False)):
        with Store(url, bulk_load=bulk_load) as store:
            store.upgrade()
            written = store.rebuild("src", receipts, entries, position="p", today=TODAY)
            assert written == len(ODD)
    assert contents(mysql_url) == contents(plain)
    with Store(mysql_url) as store:
        assert sorted(store.iter_receipts(), key=lambda r: r.key) == sorted(
            (r for r, _ in receipts), key=lambda r: r.key
        )
        nulls = store.quarantine_rows(limit=100)[-1]
        assert nulls["key"] is None and nulls["receipt_id"] is None and nulls["raw"] == "\\N\t\n"


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_a_failure_mid_load_leaves_the_database_as_it_was(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Also shows that the bulk path runs (LOAD DATA, COPY): only a loader reaches the
    "bulk" fault point."""
    mysql_url = url_for(backend, tmp_path, request, "unused")
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(i, store=i % 3, total=f"{i}.5") for i in range(40)])
    sync_once(mysql_url, path)
    before = contents(mysql_url)
    write_lines(path, [receipt(i, total=1) for i in range(40, 100)] + [receipt("x", total="no")])
    monkeypatch.setattr(bulk, "LOAD_ROWS", 10)  # several loads: fail after the second
    loads: list[str] = []

    def fault(stage: str) -> None:
        if stage == "bulk":
            loads.append(stage)
            if len(loads) == 2:
                raise RuntimeError("the worker died mid-load")

    with Store(mysql_url, bulk_load=True, fault=fault) as store:
        gathered = gather_in_process(str(path), 2)
        with pytest.raises(RuntimeError, match="mid-load"):
            finish(store, JsonlSource(path), gathered, today=TODAY, repair=True)
    assert contents(mysql_url) == before


@pytest.mark.mariadb
def test_rows_the_server_skips_or_warns_about_fail_the_rebuild(mysql_url: str) -> None:
    """With LOCAL, the server skips a duplicate key with a warning instead of failing: the
    loader counts the rows taken and refuses the load."""
    twice = Receipt("str:dup", 1, dt.date(2026, 11, 2), 8, 100, (("Tea", 1),))
    with Store(mysql_url, bulk_load=True) as store:
        store.upgrade()
        store.rebuild("src", [(twice, "a")], [], position="p0", today=TODAY)
        before = contents(mysql_url)
        with pytest.raises(StoreError, match="took 1 of 2 row"):
            store.rebuild("src", [(twice, "b"), (twice, "b")], [], position="p1", today=TODAY)
    assert contents(mysql_url) == before


@pytest.mark.mariadb
def test_a_server_refusing_local_infile_gets_inserts_and_one_log_line(
    mysql_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = corpus_file(tmp_path / "hostile.jsonl")
    # Without the client flag the server refuses LOCAL INFILE, as with local_infile=OFF
    # (which is global: not something a test sets on a shared server).
    monkeypatch.setattr(MySQL, "bulk_connect_args", lambda self: {})
    with caplog.at_level(logging.WARNING, logger="coffeeshop.store"):
        backfill(mysql_url, path)
    refused = [r for r in caplog.records if "refuses LOAD DATA LOCAL INFILE" in r.getMessage()]
    assert len(refused) == 1 and "\n" not in refused[0].getMessage()
    synced = f"sqlite:///{tmp_path / 'synced.db'}"
    sync_once(synced, path)
    assert contents(mysql_url) == contents(synced)


def test_the_load_file_escapes_exactly_the_bytes_load_data_reads_specially() -> None:
    assert bulk.line([b"a\tb\nc\\d\re\x00f", None, "\\N", 12, -3]) == (
        b"a\\tb\\nc\\\\d\\re\\0f\t\\N\t\\\\N\t12\t-3\n"
    )
    assert bulk.field("Crème 'x' \"y\"") == "Crème 'x' \"y\"".encode()
    assert bulk.field(dt.datetime(2026, 11, 30, 17, 5, 9)) == b"2026-11-30 17:05:09"


@given(
    st.tuples(
        st.binary(max_size=12),
        st.text(max_size=12),
        st.integers(min_value=-(2**40), max_value=2**40),
        st.integers(min_value=0, max_value=99991231),
        st.integers(min_value=0, max_value=23),
        st.integers(min_value=-(2**62), max_value=2**62),
        st.text(alphabet=st.sampled_from("ab\t\n\r\\\x00N☕"), max_size=12),
    )
)
def test_a_receipt_row_is_written_to_the_load_file_as_any_row_is(row: Any) -> None:
    """The rebuild writes `cs_receipts` rows with `receipt_line`, a fast path of `line`."""
    assert bulk.receipt_line(row) == bulk.line(row)


def history(path: Path) -> None:
    """Three years of receipts with odd item names, then replaces, deletes and invalid ones."""
    docs = [
        receipt(
            f"r{i}",
            store=i % 7,
            date=f"{2024 + i % 3}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            time=f"{i % 24:02d}:05",
            total=f"{i}.{i % 100:02d}",
            items=[(ODD[i % len(ODD)] or "plain", 1 + i % 4), ("Tea", 1)],
        )
        for i in range(300)
    ]
    later = [receipt(f"r{i}", store=9, date="2026-11-24", total=3) for i in range(0, 300, 11)]
    gone = [{"operationType": "delete", "documentKey": {"_id": f"r{i}"}} for i in range(5, 300, 13)]
    write_lines(path, docs + later + gone + [receipt("r7", total="no"), "not json"])


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_a_partitioned_repair_over_stale_state_writes_every_table_as_the_single_process_one(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Internal tables included (every day of `cs_daily`, not only the two weeks the public
    summary shows): the merged sums a partitioned repair writes equal the receipts' own."""
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(f"r{i}", store=3, total=1) for i in range(0, 400, 3)])
    repaired = url_for(backend, tmp_path, request, "repaired")
    sync_once(repaired, path)  # stale state, with receipts the repair must remove
    path.unlink()
    history(path)
    backfill(repaired, path, parts=4)
    single = f"sqlite:///{tmp_path / 'single.db'}"
    with Store(single) as store:
        reconcile(store, JsonlSource(path), today=TODAY, repair=True)
    got, want = contents(repaired), contents(single)
    assert len(got[0]["cs_daily"]) > 80 and got[1]  # days of three years
    assert got == want
