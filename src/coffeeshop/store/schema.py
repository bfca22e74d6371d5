"""Table definitions: the four public tables and the engine's own state tables.

The public tables (`receipts_summary`, `store_monthly`, `item_performance`,
`store_peak_hours`) keep the names and columns of the original specification.
State tables are prefixed `cs_`; they hold what incremental maintenance needs:
each current receipt's contribution, counts per group, the checkpoint and the
quarantine. Internal money is integer cents; public money is exact DECIMAL
(stored as canonical text on SQLite, which has no decimal type).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

from coffeeshop.core import plan, receipt_codec
from coffeeshop.core.groups import GROUPS, Group
from coffeeshop.store.dialects import KNOWN, dialect_named

metadata = MetaData()

_MYSQL_TABLE: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mysql_engine": "InnoDB",
}


class Exact(TypeDecorator[Decimal]):
    """An exact two-place decimal: DECIMAL(p, 2) where the database has it, canonical text on
    SQLite (which has no decimal type and would otherwise store a binary float)."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 14) -> None:
        super().__init__()
        self.precision = precision

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect_named(dialect.name).decimal_as_text:
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(self.precision, 2, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(value).quantize(Decimal("0.01"))
        return str(value) if dialect_named(dialect.name).decimal_as_text else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(Decimal("0.01"))


def Key() -> Any:
    """A receipt key: exact bytes, compared byte for byte on every database."""
    return LargeBinary(255).with_variant(mysql.VARBINARY(255), "mysql", "mariadb")


def Name() -> Any:
    """A product name, compared exactly: binary collation on MySQL/MariaDB."""
    return String(100).with_variant(
        mysql.VARCHAR(100, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def LongText() -> Any:
    return Text().with_variant(
        mysql.LONGTEXT(charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def _table(name: str, *columns: Column[Any], into: MetaData = metadata, **options: Any) -> Table:
    """A table of `columns` in `into`, with the MySQL/MariaDB options every table has."""
    return Table(name, into, *columns, **_MYSQL_TABLE, **options)


def _key(name: str, kind: Any) -> Column[Any]:
    """A primary-key column: part of the natural key, never generated."""
    return Column(name, kind, primary_key=True, autoincrement=False)


def _required(name: str, kind: Any) -> Column[Any]:
    return Column(name, kind, nullable=False)


def _counts(
    name: str,
    *key: Column[Any],
    values: tuple[str, ...],
    into: MetaData = metadata,
    **options: Any,
) -> Table:
    """A table of counts and sums: its `key` columns, then a BIGINT NOT NULL per value."""
    values_ = (_required(value, BigInteger) for value in values)
    return _table(name, *key, *values_, into=into, **options)


# -- public tables (the original specification's contract) ---------------------------------------

receipts_summary = _table(
    "receipts_summary",
    Column("as_of", Date, primary_key=True),
    _required("spend_per_rcpt", Exact(12)),
    _required("items_per_rcpt", Exact(20)),
    _required("this_week_sales", Exact(20)),
    _required("last_week_sales", Exact(20)),
)

store_monthly = _table(
    "store_monthly",
    Column("month", CHAR(7), primary_key=True),
    _key("store_id", Integer),
    _required("sales", Exact(20)),
)

item_performance = _table(
    "item_performance",
    Column("item_name", Name(), primary_key=True),
    _required("total_sold", BigInteger),
)

store_peak_hours = _table(
    "store_peak_hours",
    _key("store_id", Integer),
    _required("peak_hour", SmallInteger),
    _required("tx_count", BigInteger),
)

PUBLIC_TABLES = (receipts_summary, store_monthly, item_performance, store_peak_hours)

# -- engine state --------------------------------------------------------------------------------

meta = _table(
    "cs_meta",
    Column("name", String(64), primary_key=True),
    _required("value", String(255)),
)

checkpoints = _table(
    "cs_checkpoint",
    Column("source", String(255), primary_key=True),
    _required("position", Text),
    _required("version", BigInteger),
    _required("applied", BigInteger),
    _required("quarantined", BigInteger),
    _required("batches", BigInteger),
    _required("committed_at", DateTime),
    # What the source still held beyond this batch when it was read (bytes for a file),
    # and the source's own time of the newest applied change (MongoDB's wallTime): the lag.
    Column("behind", BigInteger, nullable=True),
    Column("source_time", DateTime, nullable=True),
)

# One row: a counter bumped by every transaction that changes the public tables, so a
# reader can tell (and an API can ETag) whether anything changed without reading it.
state = _table(
    "cs_state",
    _key("id", SmallInteger),
    _required("data_version", BigInteger),
    _required("changed_at", DateTime),
)

# One row per current valid receipt: what it contributed, so an update or delete
# can subtract exactly that. Its columns are declared in `core/receipt_codec.py`; a kind's
# portable SQL type is a column type here. The key comes first: rows sort by it.
_RECEIPT_TYPES: dict[str, Any] = {
    "key": Key,
    "varchar255": lambda: String(255),
    "int": Integer,
    "smallint": SmallInteger,
    "bigint": BigInteger,
    "longtext": LongText,
}
receipts = _table(
    "cs_receipts",
    *(
        Column(c.name, _RECEIPT_TYPES[c.kind.sql](), primary_key=i == 0, nullable=False)
        for i, c in enumerate(receipt_codec.COLUMNS)
    ),
)
# The API's day ranges (/sales_comparison, per-store /daily_sales) read two weeks or a few
# months of receipts: without it each request scanned the whole table (0.4 s at 1M receipts).
receipts_by_day = Index("ix_cs_receipts_day", receipts.c.day)

totals = _counts("cs_totals", _key("id", SmallInteger), values=("receipts", "cents", "units"))

# The tables of counts per group (`core/groups.py`'s counted tables, and the state tables of
# `core/plan.py`'s `STATE_GROUPS`): each generated from its group's declaration, its key the
# primary key (in the declared order: day first, for the API's day ranges).
_DIMENSION_TYPES: dict[str, Any] = {
    "store_id": Integer,
    "day": Date,
    "month": lambda: CHAR(7),
    "hour": SmallInteger,
    "weekday": SmallInteger,
    "product": Name,
}


def counted_table(group: Group, into: MetaData) -> Table:
    """The table of `group`: its key columns (by dimension) and a BIGINT per value. On
    SQLite its rows live in the primary key's B-tree (`WITHOUT ROWID`): an upsert writes one
    tree, not a rowid table and its key index (28 % less CPU per row, half the file)."""
    return _counts(
        group.table,
        *(_key(name, _DIMENSION_TYPES[name]()) for name in group.key),
        values=group.values,
        into=into,
        sqlite_with_rowid=False,
    )


COUNTED: dict[str, Table] = {group.name: counted_table(group, metadata) for group in GROUPS}
daily = counted_table(plan.DAILY, metadata)
store_month = counted_table(plan.STORE_MONTH, metadata)
store_hour = counted_table(plan.STORE_HOUR, metadata)

quarantine = _table(
    "cs_quarantine",
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("key", Key(), nullable=True, index=True),
    Column("receipt_id", String(255), nullable=True),
    _required("reason", Text),
    _required("source", String(255)),
    _required("position", String(255)),
    _required("raw", LongText()),
    _required("received_at", DateTime),
)

# What a database needs beyond the portable declarations above (a generated key's type, a
# sequence): each dialect adapts the tables for itself (`Dialect.adapt_schema`).
for _dialect in KNOWN:
    _dialect.adapt_schema(metadata)
