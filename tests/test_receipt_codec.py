"""One definition of the `cs_receipts` row (issue 19.1).

Every field of `Receipt` must survive every encoding of a receipt: the row tuple, the
statement parameters, the reader's tuples, the reader process's pipe, the partitioned
reconcile's rows, reconcile's scratch snapshot and, on SQLite, MariaDB and PostgreSQL, the
INSERT, literal-SQL, LOAD DATA and COPY paths read back by key and in key order. The cases
are generated from `dataclasses.fields(Receipt)`: a field added to `Receipt` is tested on
every path at once, and one that a path drops fails here (the old `pipeline/readahead.py`
rebuilt receipts from a hand-written tuple and gave a new field its default: every receipt
was stored as "unknown").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from coffeeshop.core import receipt_codec
from coffeeshop.core.partials import fold, resolve
from coffeeshop.core.plan import BatchPlan, Delta, Parsed
from coffeeshop.core.receipt_codec import (
    COLUMNS,
    ID_FIELD,
    INDEX,
    NAMES,
    READ_COLUMNS,
    Column,
    check,
    pack_receipt,
    read_receipt,
    receipt_params,
    receipt_row,
    row_to_receipt,
    unpack_receipt,
)
from coffeeshop.core.receipts import Receipt
from coffeeshop.pipeline import readahead
from coffeeshop.pipeline.reconcile import SourceSnapshot
from coffeeshop.store import Store, bulk, receipts, schema
from coffeeshop.store.codec import receipt_literal

FIELDS = [f.name for f in dataclasses.fields(Receipt)]
RID = "id ☕ 'quoted' \\ tab\t"
BASE = Receipt(
    key="str:base ☕ \udc80 tab\t nl\n \\N",
    store_id=3,
    day=dt.date(2026, 11, 20),
    hour=8,
    cents=1250,
    items=(("Crème ☕", 1), ("Latte", 2), ("back\\slash \t", 3)),
)


def changed(value: Any) -> Any:
    """Another value of the same type (so a field that falls back to anything else shows)."""
    if type(value) is int:
        return value + 7
    if type(value) is str:
        return value + " \\N 🦄"
    if type(value) is dt.date:
        return value + dt.timedelta(days=40)
    if type(value) is tuple:
        return (*value, ("Zeta \\N ` \r\n", 9))
    raise TypeError(f"no other value of a {type(value).__name__} field: extend `changed`")


def variant(field: str, *, own_key: bool = False) -> Receipt:
    """`BASE` with `field` changed (and, with `own_key`, a key of its own)."""
    out = dataclasses.replace(BASE, **{field: changed(getattr(BASE, field))})
    if own_key and field != "key":
        out = dataclasses.replace(out, key=f"{out.key} #{field}")
    return out


# -- the one definition -------------------------------------------------------------------


def test_every_receipt_field_is_carried_by_exactly_one_column() -> None:
    carried = [c.field for c in COLUMNS if c.field != ID_FIELD]
    assert sorted(carried) == sorted(FIELDS)
    assert tuple(c.name for c in schema.receipts.columns) == NAMES
    assert [c.name for c in schema.receipts.primary_key] == [NAMES[0]]


def test_receipt_fields_have_no_defaults_so_a_positional_constructor_breaks_loudly() -> None:
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(Receipt))
    values = [getattr(BASE, f) for f in FIELDS]
    with pytest.raises(TypeError):
        Receipt(*values[:-1])


@pytest.mark.parametrize("field", FIELDS)
def test_a_field_no_column_carries_stops_the_import(field: str) -> None:
    """What `check` says at import when a field was added to `Receipt` but not to COLUMNS."""
    without = tuple(c for c in COLUMNS if c.field != field)
    with pytest.raises(TypeError, match=rf"not carried \['{field}'\]"):
        check(without, tuple(FIELDS))
    extra = (*COLUMNS, Column("channel", receipt_codec.ID, "channel"))
    with pytest.raises(TypeError, match=r"not on Receipt \['channel'\]"):
        check(extra, tuple(FIELDS))
    check(COLUMNS, tuple(FIELDS))  # the real definition passes


# -- every encoding in memory ---------------------------------------------------------------


def via_row(receipt: Receipt, rid: str) -> tuple[Receipt, str]:
    return row_to_receipt(receipt_row(receipt, rid))


def via_params(receipt: Receipt, rid: str) -> tuple[Receipt, str]:
    params = receipt_params(receipt, rid)
    assert list(params) == list(NAMES)
    return row_to_receipt(tuple(params.values()))


def via_reader_tuple(receipt: Receipt, rid: str) -> tuple[Receipt, str]:
    row = receipt_row(receipt, rid)
    return read_receipt(tuple(row[INDEX[name]] for name in READ_COLUMNS)), row[INDEX[ID_FIELD]]


def via_pipe(receipt: Receipt, rid: str) -> tuple[Receipt, str]:
    """The reader process's pipe: `readahead.pack`, pickled, `readahead.unpack`."""
    event = Parsed(receipt.key, rid, receipt, None, "line 1", "")
    wire = pickle.dumps(readahead.pack([event]), protocol=pickle.HIGHEST_PROTOCOL)
    (back,) = readahead.unpack(pickle.loads(wire))
    assert isinstance(back, Parsed) and back.receipt is not None
    assert back.key == receipt.key
    return back.receipt, back.receipt_id


def via_partials(receipt: Receipt, rid: str) -> tuple[Receipt, str]:
    """A partitioned reconcile: folded into a candidate (pickled to another worker),
    resolved into its row."""
    latest, _ = fold([(0, "snapshot", Parsed(receipt.key, rid, receipt, None, "w", ""))])
    result = resolve([pickle.loads(pickle.dumps(latest))])
    (row,) = result.rows
    return row_to_receipt(row)


def via_snapshot(receipt: Receipt, rid: str) -> tuple[Receipt, str]:
    """Reconcile's scratch SQLite file of the source's current receipts."""
    with tempfile.TemporaryDirectory() as scratch:
        return _through_snapshot(receipt, rid, scratch)


def _through_snapshot(receipt: Receipt, rid: str, scratch: str) -> tuple[Receipt, str]:
    snapshot = SourceSnapshot(scratch)
    try:
        snapshot._fold_batch([Parsed(receipt.key, rid, receipt, None, "w", "")])
        (back,) = snapshot.iter_receipts()
        return back
    finally:
        snapshot.close()


ENCODERS: dict[str, Callable[[Receipt, str], tuple[Receipt, str]]] = {
    "row": via_row,
    "params": via_params,
    "reader tuple": via_reader_tuple,
    "pipe": via_pipe,
    "partials": via_partials,
    "snapshot": via_snapshot,
}


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("field", FIELDS)
def test_every_field_survives_every_encoding(encoder: str, field: str) -> None:
    receipt = variant(field)
    assert receipt != BASE
    assert ENCODERS[encoder](receipt, RID) == (receipt, RID)
    assert ENCODERS[encoder](BASE, RID) == (BASE, RID)


def test_the_pipe_form_pickles_no_dataclass() -> None:
    packed = pack_receipt(BASE)
    assert all(type(v) in (str, int, tuple) for v in packed)
    assert unpack_receipt(packed) == BASE


def test_the_literal_and_the_load_data_line_carry_every_column() -> None:
    """Checked for real on MariaDB below; here: one value per column, in order."""
    row = receipt_row(BASE, RID)
    literal = receipt_literal(BASE, RID)
    assert literal.count(",") == len(NAMES) - 1  # hex and digits hold no comma
    assert literal.split(",")[INDEX["cents"]] == str(BASE.cents)
    assert bulk.receipt_line(row) == bulk.line(row)


# -- every encoding through a real database ----------------------------------------------


def stored(store: Store) -> list[Receipt]:
    return list(store.iter_receipts())


def by_batch(store: Store, current: list[tuple[Receipt, str]]) -> None:
    """The sync's write (`receipts.write`: literal SQL on MariaDB, parameters elsewhere)."""
    plan = BatchPlan({r.key: (r, rid) for r, rid in current}, set(), Delta(), set(), [], 0, 0, 0)
    with store.engine.begin() as conn:
        receipts.write(conn, store.statements, plan)


def by_rebuild(store: Store, current: list[tuple[Receipt, str]]) -> None:
    """A repair's rebuild: INSERTs, or LOAD DATA / COPY on a bulk-loading store."""
    store.rebuild("test", current, [], position="1", today=dt.date(2026, 11, 25))


@pytest.mark.parametrize("path", ["batch", "rebuild", "bulk rebuild"])
def test_every_field_survives_the_database(
    db_url: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    current = [(variant(f, own_key=True), f"{RID} {f}") for f in FIELDS] + [(BASE, RID)]
    with Store(db_url, bulk_load=path == "bulk rebuild") as store:
        store.upgrade()
        if path == "bulk rebuild" and not store.bulk_load:
            assert db_url.startswith("sqlite")  # SQLite has no bulk path: INSERTs again
        (by_batch if path == "batch" else by_rebuild)(store, current)
        assert "refuses LOAD DATA" not in caplog.text  # MariaDB's rows went through the file
        want = sorted((r for r, _ in current), key=lambda r: receipt_row(r, "")[0])
        assert stored(store) == want  # in key order, read back in pages
        with store.engine.connect() as conn:
            found = receipts.load(conn, store.statements, [r.key for r, _ in current])
            rows = conn.execute(select(*schema.receipts.columns)).all()
        assert found == {r.key: r for r, _ in current}
        back = [row_to_receipt((bytes(row[0]), *row[1:])) for row in rows]
        assert {r.key: (r, rid) for r, rid in back} == {r.key: (r, rid) for r, rid in current}
