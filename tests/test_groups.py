"""A counted table is one `Group` declaration: a table declared here, in the test, gets its
schema, its sums, its add/subtract maintenance and its descriptor from that one line, and
stays equal to a naive recomputation through inserts, replacements and deletes, on SQLite,
MariaDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import pickle
import random
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import receipt
from sqlalchemy import MetaData

from coffeeshop.core.events import Delete, Event, Upsert
from coffeeshop.core.groups import GROUPS, Group, GroupSums
from coffeeshop.core.plan import parse_events, plan_batch
from coffeeshop.core.receipts import Receipt, display_id, parse_receipt, receipt_key
from coffeeshop.store import Store
from coffeeshop.store.schema import counted_table
from coffeeshop.store.tables import TABLES
from coffeeshop.store.tables.counted import CountedTable

# Units and receipts per store and month: a table nobody has, over existing fields.
BY_STORE_MONTH = Group(
    "units_by_store_month",
    "cs_test_store_month_units",
    ("store_id", "month"),
    ("receipts", "units"),
)
# Receipts naming each product, per hour of day: a per-line table.
PRODUCT_HOURS = Group(
    "product_hours",
    "cs_test_product_hours",
    ("product", "hour"),
    ("receipts", "units"),
    per_line=True,
)
EXTRA = (BY_STORE_MONTH, PRODUCT_HOURS)


def naive(receipts: list[Receipt]) -> dict[str, dict[Any, tuple[int, int]]]:
    """The two tables computed from scratch, by hand."""
    by_month: dict[Any, tuple[int, int]] = {}
    by_product: dict[Any, tuple[int, int]] = {}
    for r in receipts:
        n, u = by_month.get((r.store_id, r.month), (0, 0))
        by_month[(r.store_id, r.month)] = (n + 1, u + sum(q for _, q in r.items))
        for name, quantity in r.items:
            n, u = by_product.get((name, r.hour), (0, 0))
            by_product[(name, r.hour)] = (n + 1, u + quantity)
    return {BY_STORE_MONTH.name: by_month, PRODUCT_HOURS.name: by_product}


def random_batches(seed: int) -> list[list[Event]]:
    """Inserts, replacements (another store, day, hour or items) and deletes, in batches."""
    rng = random.Random(seed)
    batches: list[list[Event]] = []
    for _ in range(12):
        batch: list[Event] = []
        for _ in range(rng.randint(1, 15)):
            rid = rng.randint(1, 25)
            key = receipt_key(rid)
            if rng.random() < 0.2:
                batch.append(Delete(key, display_id(rid), ""))
                continue
            items = [(name, rng.randint(1, 4)) for name in rng.sample(["Latte", "Tea", "Bun"], 2)]
            doc = receipt(
                rid,
                store=rng.randint(1, 3),
                date=f"2026-{rng.randint(10, 12)}-0{rng.randint(1, 9)}",
                time=f"{rng.randint(6, 20):02d}:15:00",
                total=rng.randint(1, 900) / 100,
                items=items,
            )
            batch.append(Upsert(key, display_id(rid), doc, "", ""))
        batches.append(batch)
    return batches


def apply_batches(store: Store, tables: list[CountedTable]) -> Iterator[Any]:
    """The random batches applied to `tables`, one transaction each; yields each batch's plan
    and the receipts current after it."""
    current: dict[str, Receipt] = {}
    for batch in random_batches(seed=19):
        plan = plan_batch(parse_events(batch), current, groups=EXTRA)
        with store.engine.begin() as conn:
            for table in tables:
                table.apply(conn, store.statements, plan.delta)
        for key in plan.deletes:
            current.pop(key)
        current.update({key: r for key, (r, _) in plan.upserts.items()})
        yield plan, current


def test_an_extra_table_from_one_declaration_stays_equal_to_its_recomputation(
    db_url: str,
) -> None:
    extra = MetaData()
    tables = [CountedTable(group, counted_table(group, extra)) for group in EXTRA]
    current: dict[str, Receipt] = {}
    subtracted = 0  # groups a batch lowered: replacements and deletes were exercised
    with Store(db_url) as store:
        store.upgrade()
        extra.create_all(store.engine)
        for plan, current in apply_batches(store, tables):
            subtracted += sum(
                v[0] < 0 for sums in plan.delta.groups.sums.values() for v in sums.values()
            )
            expected = naive(list(current.values()))
            with store.engine.connect() as conn:
                for table in tables:
                    (rows,) = table.rows
                    assert rows.stored(conn) == expected[table.group.name]
        assert current, "the batches leave receipts behind"
        assert subtracted > 10, "replacements and deletes lowered groups"


def test_sums_of_a_receipt_added_and_subtracted_cancel_exactly() -> None:
    r = parse_receipt(receipt(1, items=[("Latte", 2), ("Tea", 1)]))
    sums = GroupSums(GROUPS)
    sums.add((r.store_id, r.day, r.month, r.hour), r.cents, r.units, r.items, +1)
    assert sums.rows(GROUPS[0]) == {(r.day, 1): (1, 1250, 3)}
    sums.add((r.store_id, r.day, r.month, r.hour), r.cents, r.units, r.items, -1)
    sums.prune()
    assert sums.is_empty


def test_a_derived_dimension_is_computed_from_its_source() -> None:
    by_weekday = Group("w", "cs_w", ("weekday", "store_id", "hour"), ("receipts",))
    sunday, monday = dt.date(2026, 11, 29), dt.date(2026, 11, 30)
    assert by_weekday.key_of((3, sunday, "2026-11", 9)) == (7, 3, 9)
    assert by_weekday.key_of((3, monday, "2026-11", 9)) == (1, 3, 9)
    per_line = Group("p", "cs_p", ("product", "weekday"), ("units",), per_line=True)
    assert per_line.key_of((3, monday, "2026-11", 9, "Tea")) == ("Tea", 1)


def test_every_group_is_maintained_with_the_other_tables() -> None:
    maintained = {table.field for table in TABLES}
    assert {group.name for group in GROUPS} <= maintained


def test_a_group_over_an_unknown_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="minute"):
        Group("bad", "cs_bad", ("minute",), ("receipts",))
    with pytest.raises(ValueError, match="cents"):
        Group("bad", "cs_bad", ("product",), ("cents",), per_line=True)


def naive_sums(groups: tuple[Group, ...], receipts: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Per group, per key: the plain sum, one group and one line at a time."""
    sums: dict[str, dict[tuple[Any, ...], list[int]]] = {g.name: {} for g in groups}
    for context, cents, units, lines, sign in receipts:
        for group in groups:
            if group.per_line:
                for product, quantity in lines:
                    measures = {"receipts": sign, "units": sign * quantity}
                    row = sums[group.name].setdefault(
                        group.key_of((*context, product)), [0] * len(group.values)
                    )
                    for i, value in enumerate(group.values):
                        row[i] += measures[value]
            else:
                measures = {"receipts": sign, "cents": sign * cents, "units": sign * units}
                row = sums[group.name].setdefault(group.key_of(context), [0] * len(group.values))
                for i, value in enumerate(group.values):
                    row[i] += measures[value]
    return sums


def test_the_compiled_adder_sums_as_the_plain_per_group_loop() -> None:
    """`GroupSums.add` runs code generated from the declarations (one pass over the lines
    for every per-line group): it must give every group's plain sums, signs, repeated
    products in one receipt and derived dimensions (weekday) included."""
    rng = random.Random(19)
    groups = (*GROUPS, *EXTRA)
    products = ["Latte", "Mocha", "Tea", "Scone"]
    receipts = []
    for _ in range(2_000):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(400))
        context = (rng.randint(1, 5), day, f"{day:%Y-%m}", rng.randrange(24))
        lines = [(rng.choice(products), rng.randint(1, 4)) for _ in range(rng.randint(0, 4))]
        units = sum(q for _, q in lines)
        receipts.append((context, rng.randint(0, 10_000), units, lines, rng.choice((1, 1, -1))))
    got = GroupSums(groups)
    for context, cents, units, lines, sign in receipts:
        got.add(context, cents, units, lines, sign)
    assert got.sums == naive_sums(groups, receipts)
    assert all(got.sums[g.name] for g in groups)  # every group was reached


def test_sums_and_groups_travel_by_pickle() -> None:
    """Partial sums go to and from Dask workers by pickle: the key getters (a closure for a
    derived dimension such as weekday) and the compiled adder are made again on arrival."""
    sums = GroupSums((*GROUPS, *EXTRA))
    day = dt.date(2026, 11, 23)
    sums.add((3, day, "2026-11", 8), 450, 2, [("Latte", 2)], 1)
    copy = pickle.loads(pickle.dumps(sums))
    assert copy.groups == sums.groups and copy.sums == sums.sums
    copy.add((3, day, "2026-11", 8), 450, 2, [("Latte", 2)], -1)  # the adder works on arrival
    copy.prune()
    assert copy.is_empty
    for group in (*GROUPS, *EXTRA):
        again = pickle.loads(pickle.dumps(group))
        assert again == group and again.key_of((3, day, "2026-11", 8, "Tea")) == group.key_of(
            (3, day, "2026-11", 8, "Tea")
        )


def test_on_sqlite_the_rows_a_batch_lowers_to_zero_are_found_by_key_not_by_a_scan(
    tmp_path: Any,
) -> None:
    """The zero-count cleanup reads only the rows of the batch's keys: `(a, b) IN ((…), …)`
    made SQLite scan the whole table, a cost that grew with the history."""
    from sqlalchemy import event

    extra = MetaData()
    tables = [CountedTable(group, counted_table(group, extra)) for group in EXTRA]
    deletes: list[str] = []
    with Store(f"sqlite:///{tmp_path / 'plan.db'}") as store:
        store.upgrade()
        extra.create_all(store.engine)

        @event.listens_for(store.engine, "before_cursor_execute")
        def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.startswith("DELETE FROM") and "cs_test_" in statement:
                deletes.append(statement)

        for _ in apply_batches(store, tables):
            pass
        assert deletes, "replacements and deletes lowered groups"
        with store.engine.connect() as conn:
            for statement in set(deletes):
                markers = statement.count("?")
                plan_rows = conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + statement, (0,) * markers
                ).all()
                steps = " ".join(str(row[-1]) for row in plan_rows)
                assert "SCAN" not in steps and "SEARCH" in steps, (statement, steps)
