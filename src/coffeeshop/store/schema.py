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

from coffeeshop.core import receipt_codec
from coffeeshop.core.groups import GROUPS, Group
from coffeeshop.store.dialects import dialect_named

SCHEMA_VERSION = 5

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


# -- public tables (the original specification's contract) ---------------------------------------

receipts_summary = Table(
    "receipts_summary",
    metadata,
    Column("as_of", Date, primary_key=True),
    Column("spend_per_rcpt", Exact(12), nullable=False),
    Column("items_per_rcpt", Exact(20), nullable=False),
    Column("this_week_sales", Exact(20), nullable=False),
    Column("last_week_sales", Exact(20), nullable=False),
    **_MYSQL_TABLE,
)

store_monthly = Table(
    "store_monthly",
    metadata,
    Column("month", CHAR(7), primary_key=True),
    Column("store_id", Integer, primary_key=True, autoincrement=False),
    Column("sales", Exact(20), nullable=False),
    **_MYSQL_TABLE,
)

item_performance = Table(
    "item_performance",
    metadata,
    Column("item_name", Name(), primary_key=True),
    Column("total_sold", BigInteger, nullable=False),
    **_MYSQL_TABLE,
)

store_peak_hours = Table(
    "store_peak_hours",
    metadata,
    Column("store_id", Integer, primary_key=True, autoincrement=False),
    Column("peak_hour", SmallInteger, nullable=False),
    Column("tx_count", BigInteger, nullable=False),
    **_MYSQL_TABLE,
)

PUBLIC_TABLES = (receipts_summary, store_monthly, item_performance, store_peak_hours)

# -- engine state --------------------------------------------------------------------------------

meta = Table(
    "cs_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
    **_MYSQL_TABLE,
)

checkpoints = Table(
    "cs_checkpoint",
    metadata,
    Column("source", String(255), primary_key=True),
    Column("position", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("applied", BigInteger, nullable=False),
    Column("quarantined", BigInteger, nullable=False),
    Column("batches", BigInteger, nullable=False),
    Column("committed_at", DateTime, nullable=False),
    # What the source still held beyond this batch when it was read (bytes for a file),
    # and the source's own time of the newest applied change (MongoDB's wallTime): the lag.
    Column("behind", BigInteger, nullable=True),
    Column("source_time", DateTime, nullable=True),
    **_MYSQL_TABLE,
)

# One row: a counter bumped by every transaction that changes the public tables, so a
# reader can tell (and an API can ETag) whether anything changed without reading it.
state = Table(
    "cs_state",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("data_version", BigInteger, nullable=False),
    Column("changed_at", DateTime, nullable=False),
    **_MYSQL_TABLE,
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
receipts = Table(
    "cs_receipts",
    metadata,
    *(
        Column(c.name, _RECEIPT_TYPES[c.kind.sql](), primary_key=i == 0, nullable=False)
        for i, c in enumerate(receipt_codec.COLUMNS)
    ),
    **_MYSQL_TABLE,
)
# The API's day ranges (/sales_comparison, per-store /daily_sales) read two weeks or a few
# months of receipts: without it each request scanned the whole table (0.4 s at 1M receipts).
receipts_by_day = Index("ix_cs_receipts_day", receipts.c.day)

totals = Table(
    "cs_totals",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("receipts", BigInteger, nullable=False),
    Column("cents", BigInteger, nullable=False),
    Column("units", BigInteger, nullable=False),
    **_MYSQL_TABLE,
)

daily = Table(
    "cs_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("receipts", BigInteger, nullable=False),
    Column("cents", BigInteger, nullable=False),
    **_MYSQL_TABLE,
)

store_month = Table(
    "cs_store_month",
    metadata,
    Column("month", CHAR(7), primary_key=True),
    Column("store_id", Integer, primary_key=True, autoincrement=False),
    Column("receipts", BigInteger, nullable=False),
    Column("cents", BigInteger, nullable=False),
    **_MYSQL_TABLE,
)

store_hour = Table(
    "cs_store_hour",
    metadata,
    Column("store_id", Integer, primary_key=True, autoincrement=False),
    Column("hour", SmallInteger, primary_key=True, autoincrement=False),
    Column("receipts", BigInteger, nullable=False),
    **_MYSQL_TABLE,
)

# The counted tables (`core/groups.py`): each table generated from its group's declaration,
# its key the primary key (in the declared order: day first, for the API's day ranges).
_DIMENSION_TYPES: dict[str, Any] = {
    "store_id": Integer,
    "day": Date,
    "month": lambda: CHAR(7),
    "hour": SmallInteger,
    "product": Name,
}


def counted_table(group: Group, into: MetaData) -> Table:
    """The table of `group`: its key columns (by dimension) and a BIGINT per value."""
    return Table(
        group.table,
        into,
        *(
            Column(name, _DIMENSION_TYPES[name](), primary_key=True, autoincrement=False)
            for name in group.key
        ),
        *(Column(name, BigInteger, nullable=False) for name in group.values),
        **_MYSQL_TABLE,
    )


COUNTED: dict[str, Table] = {group.name: counted_table(group, metadata) for group in GROUPS}

quarantine = Table(
    "cs_quarantine",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("key", Key(), nullable=True, index=True),
    Column("receipt_id", String(255), nullable=True),
    Column("reason", Text, nullable=False),
    Column("source", String(255), nullable=False),
    Column("position", String(255), nullable=False),
    Column("raw", LongText(), nullable=False),
    Column("received_at", DateTime, nullable=False),
    **_MYSQL_TABLE,
)
