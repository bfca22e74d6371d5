"""`store/row_format`: a counted table's rows compiled once into each form a database takes
(tuples, SQL literals, COPY text). Hostile product names land byte for byte on every real
database; a value of the wrong type never reaches the SQL; the caches stay bounded."""

from __future__ import annotations

import datetime as dt

import pytest

from coffeeshop.core.groups import PRODUCT_HOUR, STORE_DAY
from coffeeshop.store import Store, schema
from coffeeshop.store.row_format import Encoded, RowFormat
from coffeeshop.store.tables import COUNTED

DAY = dt.date(2026, 11, 20)
NAMES = [
    "Latte",
    "Crème brûlée ☕",
    "back\\slash",
    "tab\there",
    "new\nline and\r return",
    "it's 'quoted'",
    'double "quotes"',
    "X'00'",
    "\\N",
    "%s %(x)s ?",
    "😀" * 25,
]


def product_rows() -> RowFormat:
    return RowFormat(schema.COUNTED[PRODUCT_HOUR.name], PRODUCT_HOUR.key, PRODUCT_HOUR.values)


def test_each_form_writes_the_columns_in_order() -> None:
    rows = product_rows()
    sums = {(DAY, 3, 7, "tab\tand \\ back"): [2]}
    assert rows.columns == ("day", "store_id", "hour", "product", "units")
    assert rows.tuples(sums) == [("2026-11-20", 3, 7, "tab\tand \\ back", 2)]
    hexed = b"tab\tand \\ back".hex()
    assert rows.literals(sums) == [f"('2026-11-20',3,7,X'{hexed}',2)"]
    assert rows.copy_text(sums) == "2026-11-20\t3\t7\ttab\\tand \\\\ back\t2\n"


@pytest.mark.parametrize(
    "key",
    [
        (DAY, "3); DROP TABLE cs_receipts; --", 7, "Latte"),  # a text where an int goes
        (DAY, 3, 7.5, "Latte"),
        ("2026-11-20'); --", 3, 7, "Latte"),  # a text where a date goes
        (DAY, 3, 7, b"Latte"),  # bytes where a text goes
    ],
)
def test_a_value_of_the_wrong_type_raises_instead_of_reaching_the_sql(key: tuple) -> None:
    rows = product_rows()
    with pytest.raises((TypeError, ValueError)):
        rows.literals({key: [1]})
    with pytest.raises((TypeError, ValueError)):
        rows.copy_text({key: [1]})


def test_a_cache_of_encoded_values_stays_bounded() -> None:
    cache = Encoded(str.upper, limit=3)
    for value in "abcdefgh":
        assert cache[value] == value.upper()
        assert len(cache) <= 3
    assert cache["h"] == "H"


def test_hostile_names_are_added_and_subtracted_exactly_on_every_database(db_url: str) -> None:
    """Rows written through each database's fast path (literals on MariaDB, COPY on
    PostgreSQL, executemany on SQLite) read back byte for byte, accumulate, and go when their
    count falls to zero."""
    products = next(t for t in COUNTED if t.group is PRODUCT_HOUR)
    days = next(t for t in COUNTED if t.group is STORE_DAY)
    sums = {(DAY, 3, h, name): [h + 1] for h, name in enumerate(NAMES)}
    with Store(db_url) as store:
        store.upgrade()
        stmts = store.statements
        with store.engine.begin() as conn:
            products.add(conn, stmts, sums)
            products.add(conn, stmts, {(DAY, 3, 0, NAMES[0]): [5]})
            days.add(conn, stmts, {(DAY, 3): [2, 1250, 3], (DAY + dt.timedelta(1), 4): [1, 5, 1]})
        with store.engine.connect() as conn:
            stored = products.rows[0].stored(conn)
            assert days.rows[0].stored(conn) == {
                (DAY, 3): (2, 1250, 3),
                (DAY + dt.timedelta(1), 4): (1, 5, 1),
            }
        expected = {key: values[0] for key, values in sums.items()}
        expected[(DAY, 3, 0, NAMES[0])] += 5
        assert stored == expected
        with store.engine.begin() as conn:  # a count falling to zero: its row goes
            products.add(conn, stmts, {(DAY, 3, 1, NAMES[1]): [-2]})
            days.add(conn, stmts, {(DAY, 3): [-2, -1250, -3]})
        with store.engine.connect() as conn:
            assert (DAY, 3, 1, NAMES[1]) not in products.rows[0].stored(conn)
            assert len(products.rows[0].stored(conn)) == len(NAMES) - 1
            assert list(days.rows[0].stored(conn)) == [(DAY + dt.timedelta(1), 4)]


def test_the_compiled_upsert_takes_the_rows_as_they_are_written(db_url: str) -> None:
    """Each counted table's upsert compiles to the form its rows are written in, with the
    columns in the same order: no row goes the slow way through a dict."""
    with Store(db_url) as store:
        stmts = store.statements
        for table in COUNTED:
            upsert = stmts.upsert(table.table, table.group.key, add=table.group.values)
            compiled = stmts.compile(upsert)
            columns = compiled[1] if isinstance(compiled, tuple) else compiled.columns
            assert columns == table.format.columns
