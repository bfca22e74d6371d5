"""`cs_receipts`, the current receipts every delta is computed against: read by key inside
a batch, written from a plan, streamed for reconcile."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from coffeeshop.core.plan import BatchPlan
from coffeeshop.core.receipts import Receipt
from coffeeshop.store import literal_sql, schema
from coffeeshop.store.codec import (
    READ_COLUMNS,
    RECEIPT_COLUMNS,
    decode_receipt,
    encode_key,
    receipt_literal,
    receipt_row,
)
from coffeeshop.store.statements import Statements


def load(conn: Connection, stmts: Statements, keys: Iterable[str]) -> dict[str, Receipt]:
    """The stored receipts of `keys` (the ones there are)."""
    names = ", ".join(stmts.quote(c) for c in READ_COLUMNS)
    head = f"SELECT {names} FROM {schema.receipts.name} WHERE {stmts.quote('key')}"
    found: dict[str, Receipt] = {}
    for result in stmts.in_keys(conn, head, [encode_key(k) for k in keys]):
        for row in result:
            receipt = decode_receipt(row)
            found[receipt.key] = receipt
    return found


def write(conn: Connection, stmts: Statements, plan: BatchPlan) -> None:
    """Delete the plan's deleted keys and upsert its receipts."""
    table = schema.receipts
    if plan.deletes:
        head = f"DELETE FROM {table.name} WHERE {stmts.quote('key')}"
        stmts.count_in_keys(conn, head, [encode_key(k) for k in plan.deletes])
    if plan.upserts:
        stmt = stmts.upsert(table, ("key",), set_=RECEIPT_COLUMNS[1:])
        bulk = stmts.compile(stmt)
        if isinstance(bulk, literal_sql.BulkInsert) and bulk.columns == RECEIPT_COLUMNS:
            bulk.execute_rows(
                conn,
                (receipt_literal(r, rid) for r, rid in plan.upserts.values()),
                limit=stmts.limit(conn),
            )
        else:
            rows = [receipt_row(r, rid) for r, rid in plan.upserts.values()]
            stmts.execute_rows(conn, stmt, RECEIPT_COLUMNS, rows)


def iterate(engine: Engine, batch_size: int = 5000) -> Iterator[Receipt]:
    """Every stored current receipt, streamed in key order (one short read per page)."""
    table = schema.receipts
    columns = [table.c[name] for name in READ_COLUMNS]
    last: bytes | None = None
    while True:
        query = select(*columns).order_by(table.c.key).limit(batch_size)
        if last is not None:
            query = query.where(table.c.key > last)
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        for row in rows:
            yield decode_receipt(row)
        last = bytes(rows[-1][0])
