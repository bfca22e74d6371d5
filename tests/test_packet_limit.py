"""Every statement the store sends fits the server's max_allowed_packet, and a receipt too
large to store is quarantined by a rule every backend (and reconcile) applies alike.

The four inputs of issue 10 that stopped MariaDB for good run through the whole pipeline in
`test_hostile_input.py` (the large-line cases of `hostile_corpus.py`); these tests pin down
the pieces: the packet is read from the server, multi-row statements are cut to the limit
it gives, and the size rule's boundary.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pymysql
import pytest
from helpers import current_receipts, execute_sql, receipt, reference_tables
from sqlalchemy import event
from sqlalchemy.engine import make_url

from coffeeshop.core.events import Upsert
from coffeeshop.core.limits import MAX_STORED_ITEMS
from coffeeshop.core.plan import Parsed, parse_events
from coffeeshop.core.receipts import receipt_key
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.pipeline.reconcile import reconcile
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store
from coffeeshop.store.literal_sql import MAX_STATEMENT, MIN_PACKET, statement_limit

TODAY = dt.date(2026, 11, 25)


def test_the_statement_limit_follows_the_packet() -> None:
    assert statement_limit(16 << 20) == MAX_STATEMENT == 4 << 20
    assert statement_limit(64 << 20) == MAX_STATEMENT
    assert statement_limit(MIN_PACKET) == 2 << 20  # a lone ~2.1 MiB receipt row still fits


def _upsert(n: int, items: list[tuple[str, int]]) -> Upsert:
    doc = receipt(n, items=items)
    return Upsert(key=receipt_key(n), receipt_id=str(n), doc=doc, where=f"line {n}", raw="")


def test_a_receipt_whose_stored_items_exceed_1_mib_is_quarantined_at_the_boundary() -> None:
    # ["<name>",1] and a comma: 100-character names make 107 bytes per item, 2 for [ ].
    name = "{:06d}".format
    per_item = len('["' + "N" * 100 + '",1],')
    fits = (MAX_STORED_ITEMS - 1) // per_item
    items = [(name(i) + "n" * 94, 1) for i in range(fits)]
    [ok] = parse_events([_upsert(1, items)])
    assert isinstance(ok, Parsed) and ok.receipt is not None and ok.reason is None
    over = items + [(name(i) + "n" * 94, 1) for i in range(fits, fits + 100)]
    [bad] = parse_events([_upsert(2, over)])
    assert isinstance(bad, Parsed) and bad.receipt is None and bad.reason is not None
    size = len(over) * per_item + 1  # no comma after the last item, plus [ and ]

    assert bad.reason.startswith(
        f"items: {len(over)} distinct products take {size} bytes stored, more than the "
        f"{MAX_STORED_ITEMS} one receipt may hold [raw input cut to its first 65,536 characters"
    )
    assert len(bad.raw) == 65_536  # the document, rendered as Extended JSON, then cut


def _server_packet(url: str) -> int:
    u = make_url(url)
    conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username or "root")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@max_allowed_packet")
            row = cur.fetchone()
            assert row is not None
            return int(row[0])
    finally:
        conn.close()


@pytest.mark.mariadb
def test_multi_row_statements_stay_within_the_limit_read_from_the_server(mysql_url: str) -> None:
    docs = [
        receipt(f"r{n}", store=n % 7, items=[(f"{n:04d}-{i:02d}" + "é" * 90, 1) for i in range(20)])
        for n in range(600)
    ]
    events = [
        Upsert(key=receipt_key(d["_id"]), receipt_id=d["_id"], doc=d, where=f"line {n}", raw="")
        for n, d in enumerate(docs)
    ]
    sent: list[str] = []
    with Store(mysql_url) as store:
        store.upgrade()
        assert store._statement_limit == statement_limit(_server_packet(mysql_url))
        # A server with a 512 KiB packet (below what `upgrade` accepts): the same cutting.
        store._statement_limit = 256 << 10

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            sent.append(statement)

        event.listen(store.engine, "before_cursor_execute", record)
        store.apply_batch(
            "test", parse_events(events), position="p", expected_version=0, today=TODAY
        )
        event.remove(store.engine, "before_cursor_execute", record)
        assert set(store.iter_receipts()) == set(current_receipts(docs))
        assert store.read_tables(TODAY) == reference_tables(docs, TODAY)
    inserts = [s for s in sent if "cs_receipts" in s and s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) >= 8, "the batch's ~2.3 MB of row literals took several statements"
    assert max(len(s) for s in inserts) <= (256 << 10) + 1024
    # The product-hour rows (12,000 of ~400 bytes of literals) are cut the same way.
    products = [s for s in sent if "cs_product_hour" in s and "INSERT" in s.upper()]
    assert len(products) >= 8
    assert max(len(s) for s in products) <= (256 << 10) + 1024


def test_reconcile_and_repair_agree_with_sync_on_large_input(db_url: str, tmp_path: Path) -> None:
    """The size rule and the caps live where sync and reconcile both pass: a file of the
    large inputs syncs, reconciles with no difference, and a repair rebuilds it (on MariaDB,
    in statements that fit the packet)."""
    big = [(f"Product {i:06d} " + "x" * 85, 1) for i in range(20_000)]  # 2.1 MB stored
    path = tmp_path / "r.jsonl"
    with open(path, "wb") as f:
        for n in range(5):
            f.write(json.dumps(receipt(n, items=[("Latte", 1)])).encode() + b"\n")
        f.write(json.dumps(receipt(99, items=big)).encode() + b"\n")
        f.write(b'"' * (8 << 20) + b"\n")
        f.write(b'{"_id": 98, "pad": "' + b"\xe9" * 3_400_000 + b'"}\n')
        f.write(b'{"_id": 97, "pad": "' + b"y" * (17 << 20) + b'"}\n')
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        report = reconcile(store, JsonlSource(path), today=TODAY)
        assert report.total_differences == 0
        assert (report.receipts, report.quarantined) == (5, 4)
        execute_sql(store, "DELETE FROM store_monthly")
        repaired = reconcile(store, JsonlSource(path), today=TODAY, repair=True)
        assert repaired.total_differences > 0
        assert reconcile(store, JsonlSource(path), today=TODAY).total_differences == 0
        rows = store.quarantine_rows()
        assert len(rows) == 4
        assert max(len(row["raw"]) for row in rows) == 65_536
