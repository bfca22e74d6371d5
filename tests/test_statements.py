"""`store/statements`: rows handed straight to the driver (COPY on PostgreSQL, literals on
MariaDB, executemany on SQLite) and statements over lists of keys, on each real database."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError

from coffeeshop.core.receipts import Receipt
from coffeeshop.errors import StoreError
from coffeeshop.store import Store, receipts, schema
from coffeeshop.store.codec import CHUNK, RECEIPT_COLUMNS, encode_key, receipt_row

BASE = Receipt("k", 3, dt.date(2026, 11, 20), 8, 1250, (("Latte", 2),))


def rows(count: int, cents: int = 1250) -> list[tuple[object, ...]]:
    return [
        receipt_row(dataclasses.replace(BASE, key=f"key {i:05d}", cents=cents), f"r{i}")
        for i in range(count)
    ]


def upsert(store: Store) -> object:
    return store.statements.upsert(schema.receipts, ("key",), set_=RECEIPT_COLUMNS[1:])


def test_rows_upsert_across_chunks_and_batches(db_url: str) -> None:
    """Rows as tuples are inserted, then replaced by an upsert of the same keys (more than
    one chunk of keys: loads and deletes by key run in several statements where they must)."""
    n = 2 * CHUNK + 7
    with Store(db_url) as store:
        store.upgrade()
        stmts = store.statements
        for cents in (1250, 990):  # a second transaction: the temporary table again
            with store.engine.begin() as conn:
                stmts.execute_rows(conn, upsert(store), RECEIPT_COLUMNS, rows(n, cents))
        with store.engine.connect() as conn:
            found = receipts.load(conn, stmts, [f"key {i:05d}" for i in range(n)] + ["none"])
        assert len(found) == n
        assert {r.cents for r in found.values()} == {990}
        gone = [encode_key(f"key {i:05d}") for i in range(0, n, 2)]
        with store.engine.begin() as conn:
            head = f"DELETE FROM cs_receipts WHERE {stmts.quote('key')}"
            assert stmts.count_in_keys(conn, head, gone) == len(gone)
            assert stmts.count_in_keys(conn, head, gone) == 0
            assert stmts.count_in_keys(conn, head, []) == 0
        with store.engine.connect() as conn:
            left = conn.execute(select(schema.receipts.c.key)).scalars().all()
        assert sorted(bytes(k) for k in left) == [
            encode_key(f"key {i:05d}") for i in range(1, n, 2)
        ]


def test_a_row_the_server_refuses_is_a_database_error_and_nothing_is_written(
    db_url: str,
) -> None:
    """A row refused inside the bulk write (a duplicate key in one plain INSERT) raises
    SQLAlchemy's `DBAPIError`, which the store maps to one `StoreError` line like any other;
    the transaction rolls back whole."""
    duplicate = rows(3) + rows(1)
    with Store(db_url) as store:
        store.upgrade()
        with pytest.raises(DBAPIError), store.engine.begin() as conn:
            store.statements.execute_rows(conn, insert(schema.receipts), RECEIPT_COLUMNS, duplicate)
        with pytest.raises(StoreError), store.mapped_errors(), store.engine.begin() as conn:
            store.statements.execute_rows(conn, insert(schema.receipts), RECEIPT_COLUMNS, duplicate)
        with store.engine.connect() as conn:
            assert conn.execute(select(schema.receipts.c.key)).all() == []
        with store.engine.begin() as conn:  # the connection is still good for the next batch
            store.statements.execute_rows(conn, upsert(store), RECEIPT_COLUMNS, rows(2))
        with store.engine.connect() as conn:
            assert len(conn.execute(select(schema.receipts.c.key)).all()) == 2


def test_a_value_postgresql_cannot_hold_fails_the_copy_as_a_database_error(db_url: str) -> None:
    """A NUL character in a text: PostgreSQL's text cannot hold it, and the error raised in
    the middle of its COPY is SQLAlchemy's `DBAPIError` (mapped and reported like any), never
    the driver's own exception; the other databases store it."""
    row = receipt_row(dataclasses.replace(BASE, key="nul"), "id\x00with a NUL")
    with Store(db_url) as store:
        store.upgrade()
        if not store.statements.arrays:
            with store.engine.begin() as conn:
                store.statements.execute_rows(conn, upsert(store), RECEIPT_COLUMNS, [row])
            with store.engine.connect() as conn:
                ids = conn.execute(select(schema.receipts.c.receipt_id)).scalars().all()
            assert ids == ["id\x00with a NUL"]
            return
        with pytest.raises(DBAPIError) as caught, store.engine.begin() as conn:
            store.statements.execute_rows(conn, upsert(store), RECEIPT_COLUMNS, [row])
        assert "COPY" in str(caught.value)


def test_two_writes_of_rows_in_one_transaction_each_write_only_their_own(db_url: str) -> None:
    """A rebuild writes its snapshot and then its catch-up in one transaction. PostgreSQL's
    COPY table was emptied only at commit, so the second write moved the first one's rows
    again: 'ON CONFLICT DO UPDATE command cannot affect row a second time', or a duplicate
    key for a plain INSERT (a repair beside a running sync failed with a traceback)."""
    first, second = rows(3), rows(6)[3:]
    with Store(db_url) as store:
        store.upgrade()
        stmts = store.statements
        with store.engine.begin() as conn:
            stmts.execute_rows(conn, insert(schema.receipts), RECEIPT_COLUMNS, first)
            stmts.execute_rows(conn, insert(schema.receipts), RECEIPT_COLUMNS, second)
            stmts.execute_rows(conn, upsert(store), RECEIPT_COLUMNS, rows(2, cents=990))
            stmts.execute_rows(conn, upsert(store), RECEIPT_COLUMNS, rows(6)[4:])
        with store.engine.connect() as conn:
            found = receipts.load(conn, stmts, [f"key {i:05d}" for i in range(6)])
        assert sorted((r.key, r.cents) for r in found.values()) == [
            ("key 00000", 990),
            ("key 00001", 990),
            ("key 00002", 1250),
            ("key 00003", 1250),
            ("key 00004", 1250),
            ("key 00005", 1250),
        ]
