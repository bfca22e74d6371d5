"""Versioned schema: each step moves the database one version up, inside a transaction
where the database allows it. `cs_meta.schema_version` records where a database is.

A later release appends a step; it never edits a released one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, MetaData, Table, insert, inspect, select, update
from sqlalchemy.engine import Connection

from coffeeshop.core.groups import (
    MONTHLY_GROUPS,
    PRODUCT_HOUR,
    RETIRED_GROUPS,
    STORE_DAY,
    STORE_DAY_HOUR,
    Group,
    GroupSums,
)
from coffeeshop.core.receipt_codec import READ_COLUMNS, read_receipt
from coffeeshop.errors import StoreError
from coffeeshop.store import schema
from coffeeshop.store.dialects import dialect_named
from coffeeshop.store.statements import Statements
from coffeeshop.store.tables.counted import CountedTable

log = logging.getLogger("coffeeshop.store")

LEGACY_SUFFIX = "_pre_coffeeshop"


def _v1_initial(conn: Connection) -> None:
    """Create every table. Public tables left by the original design (float money, no
    state) are renamed to `<name>_pre_coffeeshop`, kept for reference, not read.

    MySQL/MariaDB commit each DDL statement on its own, so a process killed half-way
    leaves some tables behind: `cs_meta` is created first and marks them as ours, and
    every step here can run again."""
    existing = set(inspect(conn).get_table_names())
    if schema.meta.name not in existing:
        for table in schema.PUBLIC_TABLES:
            if table.name in existing:
                _set_aside(conn, table.name)
        schema.meta.create(conn)
    if (
        conn.execute(
            select(schema.meta.c.name).where(schema.meta.c.name == "schema_version")
        ).first()
        is None
    ):
        conn.execute(insert(schema.meta).values(name="schema_version", value="0"))
    schema.metadata.create_all(conn)
    if conn.execute(select(schema.totals.c.id)).first() is None:
        conn.execute(insert(schema.totals).values(id=1, receipts=0, cents=0, units=0))


def _set_aside(conn: Connection, name: str) -> None:
    legacy = name + LEGACY_SUFFIX
    log.warning(
        "found a %s table from before coffeeshop; renamed it to %s "
        "(run `coffeeshop reconcile --repair` to fill the new one from the source)",
        name,
        legacy,
    )
    preparer = conn.dialect.identifier_preparer
    conn.exec_driver_sql(f"ALTER TABLE {preparer.quote(name)} RENAME TO {preparer.quote(legacy)}")


def _v2_data_version_and_lag(conn: Connection) -> None:
    """`cs_state` (a data version for readers and ETags) and the checkpoint's lag columns.

    On a database created by this release, v1's `create_all` already made them; each
    part is added only where it is missing."""
    inspector = inspect(conn)
    columns = {c["name"] for c in inspector.get_columns(schema.checkpoints.name)}
    preparer = conn.dialect.identifier_preparer
    table = preparer.quote(schema.checkpoints.name)
    for name in ("behind", "source_time"):
        if name not in columns:
            column = schema.checkpoints.c[name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(
                f"ALTER TABLE {table} ADD COLUMN {preparer.quote(name)} {kind} NULL"
            )
    if not inspector.has_table(schema.state.name):
        schema.state.create(conn)
    if conn.execute(select(schema.state.c.id)).first() is None:
        conn.execute(
            insert(schema.state).values(
                id=1, data_version=0, changed_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)
            )
        )


def _v3_wider_decimals(conn: Connection) -> None:
    """Sums and averages that can outgrow DECIMAL(12/16, 2) get DECIMAL(20, 2): a store's
    month of large receipts, or the units per receipt of very large quantities. (SQLite
    stores exact decimals as text: nothing to change there.)"""
    widened = {
        schema.receipts_summary: ("items_per_rcpt", "this_week_sales", "last_week_sales"),
        schema.store_monthly: ("sales",),
    }
    dialect = dialect_named(conn.dialect.name)
    for table, columns in widened.items():
        dialect.widen_decimals(conn, table.name, columns, 20)


def _v4_receipts_by_day(conn: Connection) -> None:
    """An index on `cs_receipts.day` for the API's day ranges (v1's `create_all` already
    made it on a database created by this release)."""
    indexes = {i["name"] for i in inspect(conn).get_indexes(schema.receipts.name)}
    if schema.receipts_by_day.name not in indexes:
        schema.receipts_by_day.create(conn)


def counted_tables(*groups: Group) -> Callable[[Connection], None]:
    """A step that creates the counted tables of `groups` (`core/groups.py`) and fills them
    from the stored receipts. Each is emptied first, so a step cut short (MySQL/MariaDB
    commit DDL on their own) runs again whole."""

    def step(conn: Connection) -> None:
        existing = set(inspect(conn).get_table_names())
        for group in groups:
            table = _counted(group)
            if table.name in existing:
                conn.execute(table.delete())
            else:
                table.create(conn)
        fill_counted(conn, groups)

    step.__doc__ = f"The counted tables {', '.join(g.table for g in groups)}, filled."
    return step


def _counted(group: Group) -> Table:
    """The table of `group`, a counted table of today's schema or one a later step dropped."""
    table = schema.COUNTED.get(group.name)
    return schema.counted_table(group, MetaData()) if table is None else table


def _v7_fewer_counted_tables(conn: Connection) -> None:
    """The counted tables of `RETIRED_GROUPS` dropped (those a database has); on SQLite, every
    other table of sums per key made again without a rowid, its rows copied (`counted_table`:
    the range tables and the daily, store-month and store-hour state), so a database brought
    here and a new one are alike. SQLite runs the step in one transaction: a step cut short
    leaves nothing half done."""
    existing = set(inspect(conn).get_table_names())
    for group in RETIRED_GROUPS:
        if group.table in existing:
            _counted(group).drop(conn)
    if conn.dialect.name != "sqlite":
        return
    for table in (*schema.COUNTED.values(), schema.daily, schema.store_month, schema.store_hour):
        ddl = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
        ).scalar()
        if ddl is None or "WITHOUT ROWID" in ddl.upper():
            continue
        old = f"{table.name}_rowid"
        conn.exec_driver_sql(f'ALTER TABLE "{table.name}" RENAME TO "{old}"')
        table.create(conn)
        names = ", ".join(f'"{column.name}"' for column in table.columns)
        conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{old}"')
        conn.exec_driver_sql(f'DROP TABLE "{old}"')


_FILL_PAGE = 10_000


def fill_counted(conn: Connection, groups: tuple[Group, ...]) -> None:
    """Add every stored receipt (`cs_receipts`) to the counted tables of `groups`."""
    sums = GroupSums(groups)
    rc = schema.receipts.c
    columns = [rc[name] for name in READ_COLUMNS]
    after: Any = None
    while True:  # pages in key order (a server-side cursor would hold the connection)
        query = select(rc.key, *columns).order_by(rc.key).limit(_FILL_PAGE)
        rows = conn.execute(query if after is None else query.where(rc.key > after)).all()
        for row in rows:
            r = read_receipt(tuple(row)[1:])
            units = sum(quantity for _, quantity in r.items)
            sums.add((r.store_id, r.day, r.month, r.hour), r.cents, units, r.items, +1)
        if len(rows) < _FILL_PAGE:
            break
        after = rows[-1][0]
    stmts = Statements(conn.engine, dialect_named(conn.dialect.name), "")
    for group in groups:
        CountedTable(group, _counted(group)).add(conn, stmts, sums.sums[group.name])


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _v1_initial,
    2: _v2_data_version_and_lag,
    3: _v3_wider_decimals,
    4: _v4_receipts_by_day,
    5: counted_tables(STORE_DAY, STORE_DAY_HOUR, PRODUCT_HOUR),
    # The month and chain-wide tables the range endpoints answer from (`api/ranges.py`).
    6: counted_tables(*MONTHLY_GROUPS),
    # Two of those (one store's units by day and by month), each its hourly table summed
    # over the hours: the range queries sum those instead, and the sync writes about a row
    # per item line fewer into each.
    7: _v7_fewer_counted_tables,
}
# The version this release brings a database to: its last step's (a new step alone moves it).
SCHEMA_VERSION = max(MIGRATIONS)


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table(schema.meta.name):
        return 0
    value = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.name == "schema_version")
    ).scalar()
    return int(value) if value is not None else 0


def upgrade_schema(engine: Engine) -> tuple[int, int]:
    """Bring the schema to `SCHEMA_VERSION`; return (before, after).

    Processes that start together (two syncs, a sync and the API) may all call this: a
    migration lock makes them take turns, and each re-reads the version under it."""
    with migration_lock(engine):
        return _upgrade(engine)


def _upgrade(engine: Engine) -> tuple[int, int]:
    writer = engine.execution_options(coffeeshop_write=True)
    with writer.begin() as conn:
        before = current_version(conn)
    if before > SCHEMA_VERSION:
        raise StoreError(
            f"the database schema is version {before}, newer than this coffeeshop understands "
            f"({SCHEMA_VERSION}); upgrade coffeeshop"
        )
    created = False
    for version in range(before + 1, SCHEMA_VERSION + 1):
        with writer.begin() as conn:
            if current_version(conn) >= version:  # another process migrated meanwhile
                continue
            if before > 0:  # an upgrade; a new database gets one line below
                log.info("migrating the database schema to version %d", version)
            MIGRATIONS[version](conn)
            conn.execute(
                update(schema.meta)
                .where(schema.meta.c.name == "schema_version")
                .values(value=str(version))
            )
            created = created or version == 1
    if created:
        log.info("created the tables (schema version %d)", SCHEMA_VERSION)
    return before, SCHEMA_VERSION


def migration_lock(engine: Engine) -> contextlib.AbstractContextManager[None]:
    """A server-side lock held around migrations, one per database (see the dialects)."""
    name = f"coffeeshop.migrate.{engine.url.database}"[:64]
    return dialect_named(engine.dialect.name).migration_lock(engine, name)
