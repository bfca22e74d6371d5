"""MySQL and MariaDB: `GET_LOCK` locks, and upserts sent as multi-row literals."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Engine, Table, event, func
from sqlalchemy.engine import URL, Connection

from coffeeshop.errors import ConfigError, StoreError
from coffeeshop.store.dialects.base import Dialect

# Error codes worth retrying: deadlock, lock wait timeout, server gone or unreachable, too
# many connections, server shutting down, read-only during failover.
TRANSIENT_CODES = frozenset({1040, 1053, 1205, 1213, 1290, 2002, 2003, 2006, 2013, 2055})
NO_SUCH_TABLE = 1146
UNKNOWN_DATABASE = 1049
# LOAD DATA LOCAL refused: by the server (local_infile=OFF, or the client did not ask for it:
# 1148; MySQL 8: 3948, MariaDB 11: 4166) or by the client library (2068).
BULK_REFUSED = frozenset({1148, 2068, 3948, 4166})


def _code(orig: BaseException) -> int | None:
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class MySQL(Dialect):
    name = "MySQL/MariaDB"
    example = "mysql+pymysql://… (MySQL/MariaDB)"
    backends = ("mysql", "mariadb")
    # Served through asyncmy: the sync drivers, and aiomysql (the original specification's
    # `ASYNC_SQL_DSN=mysql+aiomysql://...`), whose URLs asyncmy reads the same way.
    async_drivers = ("pymysql", "mysqldb", "mysqlconnector", "aiomysql")
    async_driver = "mysql+asyncmy"
    literal_rows = True
    bulk_file = True
    read_only_statements: ClassVar[tuple[str, ...]] = ("SET SESSION TRANSACTION READ ONLY",)

    def normalize(self, url: URL) -> URL:
        backend = url.get_backend_name()
        if url.get_driver_name() in ("", "mysqldb") and "+" not in url.drivername:
            url = url.set(drivername=f"{backend}+pymysql")
        return _utf8mb4(url)

    def check_connect_params(self, driver: str, params: Mapping[str, Any], safe_url: str) -> None:
        charset = params.get("charset")
        if driver == "pymysql" and charset:
            from pymysql.charset import charset_by_name

            if charset_by_name(str(charset)) is None:
                raise ConfigError(
                    f"unknown character set {charset!r} in the database URL {safe_url} "
                    "(coffeeshop needs utf8mb4: leave charset out)"
                )

    def widen_column(self, column: str, precision: int) -> str:
        return f"MODIFY {column} DECIMAL({precision}, 2) NOT NULL"

    def upsert(
        self, table: Table, keys: tuple[str, ...], add: tuple[str, ...], set_: tuple[str, ...]
    ) -> Any:
        from sqlalchemy.dialects import mysql  # imported when first used (import cost)

        ins = mysql.insert(table)
        return ins.on_duplicate_key_update(
            {
                **{c: table.c[c] + ins.inserted[c] for c in add},
                **{c: ins.inserted[c] for c in set_},
            }
        )

    def bulk_connect_args(self) -> dict[str, Any]:
        # A client offers LOCAL INFILE only on a connection made with this flag: only the
        # stores that bulk-load set it, and `configure` makes their connections guarded ones.
        return {"local_infile": True}

    def configure(self, engine: Engine, *, read_only: bool) -> None:
        """A connection asked with `local_infile` (a store that bulk-loads) is a
        `GuardedConnection`: it sends the server only the file of the LOAD DATA statement in
        flight. Another driver gets no LOCAL INFILE at all (the rebuild then uses INSERTs)."""
        pymysql = engine.dialect.driver == "pymysql"

        @event.listens_for(engine, "do_connect")
        def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
            if not cparams.pop("local_infile", False) or not pymysql:
                return None  # the driver's own connect, without the flag
            from coffeeshop.store.dialects.local_infile import GuardedConnection

            return GuardedConnection(*cargs, **cparams)

    def upload_window(
        self, dbapi_connection: Any, path: Path
    ) -> contextlib.AbstractContextManager[None]:
        from coffeeshop.store.dialects.local_infile import GuardedConnection

        if isinstance(dbapi_connection, GuardedConnection):
            return dbapi_connection.upload(path)
        return contextlib.nullcontext()  # it never offered LOCAL INFILE: the server refuses

    def is_bulk_refused(self, orig: BaseException) -> bool:
        return _code(orig) in BULK_REFUSED

    def try_writer_lock(self, conn: Connection, name: str) -> tuple[bool, int | None]:
        got = conn.exec_driver_sql("SELECT GET_LOCK(%s, 0)", (name,)).scalar()
        owner = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        return got == 1, owner

    def holds_writer_lock(self, conn: Connection, name: str, owner: int | None) -> bool:
        holder = conn.exec_driver_sql("SELECT IS_USED_LOCK(%s)", (name,)).scalar()
        return holder is not None and holder == owner

    @contextlib.contextmanager
    def migration_lock(self, engine: Engine, name: str) -> Iterator[None]:
        with engine.connect() as conn:
            got = conn.exec_driver_sql("SELECT GET_LOCK(%s, 120)", (name,)).scalar()
            conn.commit()
            if got != 1:
                raise StoreError(
                    "timed out after 120 s waiting for another process's schema migration"
                )
            try:
                yield
            finally:
                conn.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (name,))
                conn.commit()

    def iso_weekday(self, column: Any) -> Any:
        return func.weekday(column) + 1  # WEEKDAY(): Monday = 0

    def is_transient(self, orig: BaseException) -> bool:
        return _code(orig) in TRANSIENT_CODES

    def is_missing_table(self, orig: BaseException) -> bool:
        return _code(orig) == NO_SUCH_TABLE

    def is_unknown_database(self, orig: BaseException) -> bool:
        return _code(orig) == UNKNOWN_DATABASE

    def async_url(self, url: URL) -> URL:
        return _utf8mb4(super().async_url(url))

    def async_engine_options(self) -> dict[str, Any]:
        return {"isolation_level": "REPEATABLE READ", "connect_args": {"connect_timeout": 5}}


def _utf8mb4(url: URL) -> URL:
    return url if "charset" in url.query else url.update_query_dict({"charset": "utf8mb4"})
