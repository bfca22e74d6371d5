"""Per-database behaviour (`coffeeshop.store.dialects`): what each dialect promises."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import create_pg_database, drop_pg_database
from sqlalchemy import Column, Integer, MetaData, Table, Text
from sqlalchemy.engine import make_url

from coffeeshop.errors import ConfigError
from coffeeshop.orchestration.home import database_identity
from coffeeshop.store import Store, normalize_url
from coffeeshop.store.dialects import KNOWN, dialect_named, dialect_of
from coffeeshop.store.migrations import migration_lock
from coffeeshop.store.signal import signal_path


@pytest.fixture
def two_pg_databases() -> Iterator[tuple[str, str]]:
    first = create_pg_database()
    try:
        second = create_pg_database()
        try:
            yield first, second
        finally:
            drop_pg_database(second)
    finally:
        drop_pg_database(first)


def test_a_migration_on_one_postgresql_database_does_not_block_another(
    two_pg_databases: tuple[str, str],
) -> None:
    """The migration lock is per database. Its key is derived from the lock's whole name
    (it once hashed only the prefix every database's lock name shares: harmless because
    PostgreSQL scopes advisory locks to the current database, which this test pins down)."""
    first, second = two_pg_databases
    with Store(first) as busy, migration_lock(busy.engine):  # a migration runs on `first`
        finished = threading.Event()

        def upgrade_second() -> None:
            with Store(second) as store:
                store.upgrade()
            finished.set()

        thread = threading.Thread(target=upgrade_second, daemon=True)
        thread.start()
        upgraded_meanwhile = finished.wait(timeout=120)
    thread.join(timeout=120)
    assert upgraded_meanwhile, "the second database waited for the first one's migration"


def test_every_known_backend_has_one_dialect_and_others_are_refused() -> None:
    backends = [backend for dialect in KNOWN for backend in dialect.backends]
    assert sorted(backends) == ["mariadb", "mysql", "postgresql", "sqlite"]
    with pytest.raises(KeyError, match="oracle"):
        dialect_named("oracle")
    with pytest.raises(ConfigError, match="unsupported database 'oracle'"):
        dialect_of(make_url("oracle://u@h/db"))


def test_each_dialect_writes_its_own_upsert() -> None:
    """Every dialect compiles an upsert in its own syntax; none borrows another's."""
    table = Table("t", MetaData(), Column("k", Integer, primary_key=True), Column("n", Integer))
    for raw, marker in (
        ("sqlite:///x.db", "ON CONFLICT (k) DO UPDATE"),
        ("mysql://u@h/db", "ON DUPLICATE KEY UPDATE"),
        ("postgresql://u@h/db", "ON CONFLICT (k) DO UPDATE"),
    ):
        url = normalize_url(raw)
        statement = dialect_of(url).upsert(table, ("k",), ("n",), ())
        sql = str(statement.compile(dialect=url.get_dialect()()))
        assert marker in sql, (raw, sql)


def test_each_dialect_measures_text_in_characters_and_widens_decimals_in_its_own_syntax() -> None:
    """SQLite's length() counts characters of text, MySQL's and PostgreSQL's count bytes (so
    they use char_length()); MySQL widens a column with MODIFY, PostgreSQL with ALTER COLUMN."""
    table = Table("t", MetaData(), Column("raw", Text))
    for raw, length, widened in (
        ("sqlite:///x.db", "length(t.raw)", None),
        ("mysql://u@h/db", "char_length(t.raw)", "MODIFY c DECIMAL(20, 2) NOT NULL"),
        ("postgresql://u@h/db", "char_length(t.raw)", "ALTER COLUMN c TYPE NUMERIC(20, 2)"),
    ):
        url = normalize_url(raw)
        dialect = dialect_of(url)
        sql = str(dialect.char_length(table.c.raw).compile(dialect=url.get_dialect()()))
        assert sql == length, (raw, sql)
        assert dialect.decimal_as_text is (widened is None)  # SQLite: exact text, no widening
        if widened is not None:
            assert dialect.widen_column("c", 20) == widened


def test_a_file_database_is_known_by_its_file_however_its_url_spells_it(tmp_path: Path) -> None:
    """The Prefect home's identity (`database_identity`) and the change-signal file
    (`signal_path`) of a database in a local file come from its dialect's `file_path`: the
    read-only URI spelling of a path with a space (`file:…%20…?mode=rw&uri=true`, what the
    API opens) names the same file as the plain one. They read the text after `sqlite:///`
    as the path and got a different identity (and a signal file nobody touched) for it."""
    folder = tmp_path / "a b"
    plain = make_url(f"sqlite:///{folder / 'analysis.db'}")
    uri = dialect_named("sqlite").existing_only(plain)
    assert uri.database is not None and uri.database.startswith("file:")
    assert database_identity(uri.render_as_string()) == database_identity(str(plain))
    assert database_identity(str(plain)) == ("analysis", f"sqlite:{folder / 'analysis.db'}")
    assert signal_path(uri) == signal_path(plain) == folder / "analysis.db-signal"
    assert signal_path(make_url("sqlite://")) is None  # in memory: nothing to watch


def test_every_dialect_module_is_known_without_a_list() -> None:
    """`KNOWN` is found from the package's modules: each module of `store/dialects/` but the
    interface and helpers defines exactly one dialect, and each is known."""
    import pkgutil

    from coffeeshop.store import dialects

    modules = {m.name for m in pkgutil.iter_modules(dialects.__path__)}
    assert {type(d).__module__.rsplit(".", 1)[1] for d in KNOWN} == modules - {
        "base",
        "local_infile",
    }
    assert {"sqlite", "mysql", "mariadb", "postgresql"} <= {b for d in KNOWN for b in d.backends}
