"""The store: schema and migrations, exact money storage, the single-writer lock."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import execute_sql, mysql_connect, receipt, write_lines
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from coffeeshop.errors import ConfigError, StoreError, WriterBusy
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store, normalize_url, schema
from coffeeshop.store.migrations import SCHEMA_VERSION

TODAY = dt.date(2026, 11, 25)


def test_first_start_creates_every_table_at_the_current_version(db_url: str) -> None:
    with Store(db_url) as store:
        assert store.upgrade() == (0, SCHEMA_VERSION)
        assert store.upgrade() == (SCHEMA_VERSION, SCHEMA_VERSION)
        names = set(inspect(store.engine).get_table_names())
    assert {t.name for t in schema.metadata.sorted_tables} <= names


def test_a_newer_schema_is_refused_with_a_clear_message(db_url: str) -> None:
    with Store(db_url) as store:
        store.upgrade()
        execute_sql(store, "UPDATE cs_meta SET value = '99' WHERE name = 'schema_version'")
        with pytest.raises(StoreError, match="schema is version 99, newer than this coffeeshop"):
            store.upgrade()


def test_tables_of_the_original_design_are_kept_aside_not_read(db_url: str) -> None:
    with Store(db_url) as store:
        execute_sql(
            store,
            "CREATE TABLE item_performance (item_name VARCHAR(100) PRIMARY KEY, total_sold FLOAT)",
        )
        execute_sql(store, "INSERT INTO item_performance VALUES ('Latte', 3.0)")
        store.upgrade()
        with store.engine.connect() as conn:
            legacy = conn.execute(
                text("SELECT item_name, total_sold FROM item_performance_pre_coffeeshop")
            ).all()
            fresh = conn.execute(text("SELECT count(*) FROM item_performance")).scalar()
    assert [tuple(row) for row in legacy] == [("Latte", 3.0)]
    assert fresh == 0


def test_money_is_stored_as_exact_decimals(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(
        path, [receipt(1, total="0.10"), receipt(2, total="0.20"), receipt(3, total=12.345)]
    )
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        with store.engine.connect() as conn:
            if store.dialect.local_file:  # SQLite
                stored = conn.execute(text("SELECT sales, typeof(sales) FROM store_monthly")).one()
                assert tuple(stored) == ("12.65", "text")
            else:
                schema_name = "DATABASE()" if store.dialect.literal_rows else "current_schema()"
                column = conn.execute(
                    text(
                        "SELECT data_type, numeric_scale FROM information_schema.columns "
                        f"WHERE table_schema = {schema_name} AND table_name = 'store_monthly' "
                        "AND column_name = 'sales'"
                    )
                ).one()
                assert tuple(column) == ("decimal" if store.dialect.literal_rows else "numeric", 2)
        tables = store.read_tables(TODAY)
    assert tables.store_monthly == {("2026-11", 1): Decimal("12.65")}  # 0.1 + 0.2 + 12.35, exactly


def test_only_one_writer_at_a_time(db_url: str) -> None:
    first, second = Store(db_url), Store(db_url)
    try:
        first.upgrade()
        first.acquire_writer()
        with pytest.raises(WriterBusy, match="another coffeeshop writer"):
            second.acquire_writer()
        first.release_writer()
        second.acquire_writer()  # free again once the first writer let go
    finally:
        first.close()
        second.close()


def _kill_lock_connection(store: Store, mysql_url: str) -> None:
    assert store._lock is not None and store._lock.owner_id is not None
    admin = mysql_connect(mysql_url)
    with admin.cursor() as cur:
        cur.execute(f"KILL {int(store._lock.owner_id)}")
    admin.close()


@pytest.mark.mariadb
def test_a_writer_whose_lock_was_taken_over_stops_writing(mysql_url: str) -> None:
    with Store(mysql_url) as store, Store(mysql_url) as other:
        store.upgrade()
        store.acquire_writer()
        _kill_lock_connection(store, mysql_url)
        other.acquire_writer()  # the server released the lock with its connection
        with pytest.raises(WriterBusy, match="another writer holds it now"):
            store.apply_batch("s", [], position="{}", expected_version=0, today=TODAY)


@pytest.mark.mariadb
def test_a_writer_whose_lock_connection_died_takes_the_lock_again(mysql_url: str) -> None:
    with Store(mysql_url) as store:
        store.upgrade()
        store.acquire_writer()
        _kill_lock_connection(store, mysql_url)
        result = store.apply_batch("s", [], position="{}", expected_version=0, today=TODAY)
        assert result.version == 1
        with Store(mysql_url) as other, pytest.raises(WriterBusy):
            other.acquire_writer()  # held again, by the first writer


@pytest.mark.mariadb
def test_the_lock_is_not_left_on_a_pooled_connection(mysql_url: str) -> None:
    store = Store(mysql_url)
    store.upgrade()
    store.acquire_writer()
    store.release_writer()
    with store.engine.connect() as conn:  # a pooled connection of the same engine
        holder = conn.exec_driver_sql(
            "SELECT IS_USED_LOCK(%s)", (f"coffeeshop.writer.{make_url(mysql_url).database}",)
        ).scalar()
    store.close()
    assert holder is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("mysql://u:p@h/db", "mysql+pymysql://u:***@h/db?charset=utf8mb4"),
        ("mariadb://u@h:3307/db?charset=latin1", "mariadb+pymysql://u@h:3307/db?charset=latin1"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///a.db", "sqlite:///a.db"),
    ],
)
def test_urls_get_the_shipped_drivers(raw: str, expected: str) -> None:
    assert normalize_url(raw).render_as_string(hide_password=True) == expected


def test_a_malformed_url_never_echoes_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        normalize_url("mysql+pymysql://user:hunter2@host:notaport/db")
    assert "hunter2" not in str(info.value)


def test_a_version_1_database_migrates_to_the_current_version_keeping_its_data(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1, total=4), receipt(2, total=6)])
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        # Put the database back to how release 1 left it: no cs_state, no lag columns.
        execute_sql(store, "DROP TABLE cs_state")
        for column in ("behind", "source_time"):
            execute_sql(store, f"ALTER TABLE cs_checkpoint DROP COLUMN {column}")
        execute_sql(store, "UPDATE cs_meta SET value = '1' WHERE name = 'schema_version'")
    with Store(db_url) as store:
        assert store.upgrade() == (1, SCHEMA_VERSION)
        assert store.data_version()[0] == 0
        assert store.read_tables(TODAY).store_monthly == {("2026-11", 1): Decimal("10.00")}
    write_lines(path, [receipt(3, total=5)])
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        checkpoint = store.load_checkpoint(JsonlSource(path).name)
        assert checkpoint is not None and checkpoint.behind == 0
        assert store.data_version()[0] >= 1
        assert store.read_tables(TODAY).store_monthly == {("2026-11", 1): Decimal("15.00")}


def test_a_version_3_database_gets_the_day_index_the_api_reads_by(
    db_url: str, tmp_path: Path
) -> None:
    """Schema 4: `/sales_comparison` and per-store `/daily_sales` read a range of days of
    `cs_receipts`; without an index on `day` each request scanned the whole table."""
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1, total=4)])
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        with store.writer.begin() as conn:  # back to how release 3 left it
            schema.receipts_by_day.drop(conn)
        execute_sql(store, "UPDATE cs_meta SET value = '3' WHERE name = 'schema_version'")
    with Store(db_url) as store:
        assert store.upgrade() == (3, SCHEMA_VERSION)
        indexes = inspect(store.engine).get_indexes(schema.receipts.name)
        assert [i["column_names"] for i in indexes if i["name"] == "ix_cs_receipts_day"] == [
            ["day"]
        ]
        assert store.read_tables(TODAY).store_monthly == {("2026-11", 1): Decimal("4.00")}


def test_every_change_of_the_tables_bumps_the_data_version(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1)])
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        before, _ = store.data_version()
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()  # nothing new to apply
        write_lines(path, [receipt(1)])  # the same receipt again: re-confirmed, no change
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
        assert store.load_checkpoint(JsonlSource(path).name).applied == 2  # type: ignore[union-attr]
        unchanged, _ = store.data_version()
        store.refresh_summary(TODAY)  # the same row again: no change
        same, _ = store.data_version()
        store.refresh_summary(TODAY + dt.timedelta(days=1))  # a new day's row
        after, _ = store.data_version()
    assert before >= 1 and unchanged == same == before and after == before + 1


def test_a_first_migration_killed_half_way_is_finished_not_mistaken_for_legacy(db_url: str) -> None:
    with Store(db_url) as store:
        # What a process killed during its first start leaves on MySQL/MariaDB, where each
        # CREATE TABLE commits by itself: our marker table and some of the tables.
        schema.meta.create(store.engine)
        schema.receipts_summary.create(store.engine)
        schema.store_monthly.create(store.engine)
        assert store.upgrade() == (0, SCHEMA_VERSION)
        names = set(inspect(store.engine).get_table_names())
    assert not any(name.endswith("_pre_coffeeshop") for name in names)
    assert {t.name for t in schema.metadata.sorted_tables} <= names
