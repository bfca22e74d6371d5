"""The bulk path of a rebuild: `cs_receipts` and `cs_quarantine` written with MySQL/MariaDB's
`LOAD DATA LOCAL INFILE` or PostgreSQL's `COPY … FROM STDIN` (a store opened with
`bulk_load=True`), inside the rebuild's one transaction: the checkpoint still commits with
the data, and a failure leaves nothing. (SQLite has no bulk statement: its batched INSERTs
in one transaction are its fastest path.)

PostgreSQL: the rows are streamed with psycopg's `Cursor.copy` on the transaction's own
connection, each value adapted as a query parameter would be; the count the server reports
must be the count sent. Another driver (`postgresql+psycopg2://`, pg8000) gets INSERTs.

MySQL/MariaDB:

Rows go to a temporary file in LOAD DATA's own text format (fields end at a tab, rows at a
newline, `\\` escapes a backslash, tab, newline, carriage return or NUL in a value, `\\N`
is NULL), read as `CHARACTER SET binary`: nothing is converted, every byte lands in its
column as the INSERT path stores it (keys are binary, text is UTF-8, integers are digits).
With LOCAL the server turns bad data into warnings and skips duplicate keys instead of
failing: each load checks that the server took every row without a warning, and raises
otherwise (the transaction then rolls back).

A server that refuses LOCAL INFILE (`local_infile=OFF`) is found by an empty load before
anything is written: the rebuild then uses its INSERT path, and says so in one log line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from coffeeshop import scratch
from coffeeshop.core import receipt_codec
from coffeeshop.core.plan import QuarantineEntry
from coffeeshop.core.receipt_codec import Row
from coffeeshop.errors import StoreError
from coffeeshop.store import schema
from coffeeshop.store.codec import RECEIPT_COLUMNS, utcnow
from coffeeshop.store.quarantine import entry_row

if TYPE_CHECKING:
    from coffeeshop.store.database import Store

log = logging.getLogger("coffeeshop.store")

LOAD_ROWS = 200_000  # rows per LOAD statement (and per temporary file)
QUARANTINE_COLUMNS = ("key", "receipt_id", "reason", "source", "position", "raw", "received_at")

_SPECIAL = re.compile(rb"[\\\t\n\r\x00]")
_ESCAPES = {b"\\": b"\\\\", b"\t": b"\\t", b"\n": b"\\n", b"\r": b"\\r", b"\x00": b"\\0"}
NULL = b"\\N"


def escape(value: bytes) -> bytes:
    """`value` as one field of the file: its special bytes escaped, the rest as they are."""
    if _SPECIAL.search(value) is None:
        return value
    return _SPECIAL.sub(lambda match: _ESCAPES[match.group()], value)


def field(value: Any) -> bytes:
    kind = type(value)
    if kind is int:
        return str(value).encode("ascii")
    if kind is str:
        return escape(value.encode("utf-8"))
    if kind is bytes:
        return escape(value)
    if value is None:
        return NULL
    if kind is dt.datetime:
        return value.isoformat(" ").encode("ascii")
    raise TypeError(f"no LOAD DATA form for {kind.__name__}")


def line(values: Iterable[Any]) -> bytes:
    return b"\t".join(field(v) for v in values) + b"\n"


# A column's field in the file, by what it holds: text and bytes escaped, integers as digits.
_FIELDS: dict[type, tuple[bytes, str]] = {
    bytes: (b"%b", "_escape({v})"),
    str: (b"%b", "_escape({v}.encode('utf-8'))"),
    int: (b"%d", "{v}"),
}


def _receipt_writer() -> Callable[[Row], bytes]:
    """`line(row)` for a `cs_receipts` row, compiled from its columns: no call per field."""
    forms = [_FIELDS[c.kind.stored] for c in receipt_codec.COLUMNS]
    template = b"\t".join(form for form, _ in forms) + b"\n"
    values = ", ".join(value.format(v=f"row[{i}]") for i, (_, value) in enumerate(forms))
    return receipt_codec.compile_function(
        "receipt_line", "row", f"{template!r} % ({values},)", {"_escape": escape}
    )


receipt_line = _receipt_writer()


class Loader(ABC):
    """Loads rows into tables of one transaction, `LOAD_ROWS` per statement."""

    def __init__(self, store: Store, conn: Connection) -> None:
        self.store = store
        self.conn = conn

    def receipts(self, rows: Iterable[Row]) -> int:
        """Load `cs_receipts` rows; return their count."""
        return self.load(schema.receipts, RECEIPT_COLUMNS, rows)

    def quarantine(self, source: str, entries: Iterable[QuarantineEntry]) -> int:
        now = utcnow()
        rows = (
            [row[c] for c in QUARANTINE_COLUMNS]
            for row in (entry_row(e, source, now) for e in entries)
        )
        return self.load(schema.quarantine, QUARANTINE_COLUMNS, rows)

    def load(self, table: Table, columns: Sequence[str], rows: Iterable[Any]) -> int:
        """Load `rows` (values in `columns` order) into `table`; return their count."""
        total = 0
        iterator = iter(rows)
        while chunk := list(itertools.islice(iterator, LOAD_ROWS)):
            self.load_chunk(table, columns, chunk)
            total += len(chunk)
            self.store.fault_at("bulk")
        return total

    @abstractmethod
    def load_chunk(self, table: Table, columns: Sequence[str], chunk: list[Any]) -> None:
        """One statement loading `chunk`; `StoreError` unless the server took every row."""

    def _checked(self, table: Table, loaded: int, rows: int, detail: str = "") -> None:
        if loaded != rows or detail:
            raise StoreError(
                f"the bulk load into {table.name} took {loaded} of {rows} row(s){detail}; "
                "the rebuild was rolled back, nothing changed"
            )


class CopyLoader(Loader):
    """PostgreSQL: `COPY … FROM STDIN` on the transaction's psycopg connection."""

    def load_chunk(self, table: Table, columns: Sequence[str], chunk: list[Any]) -> None:
        quote = self.conn.dialect.identifier_preparer.quote
        sql = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        driver = self.conn.connection.driver_connection
        assert driver is not None  # a connection inside a transaction is checked out
        with driver.cursor() as cursor:
            with cursor.copy(sql) as copy:
                for row in chunk:
                    copy.write_row(row)
            self._checked(table, cursor.rowcount, len(chunk))


class FileLoader(Loader):
    """MySQL/MariaDB: LOAD DATA LOCAL INFILE of files written in `directory`."""

    # How a row becomes a line of the file: `line`, or a faster writer for a hot table.
    LINES: ClassVar[dict[str, Callable[[Any], bytes]]] = {schema.receipts.name: receipt_line}

    def __init__(self, store: Store, conn: Connection, directory: Path) -> None:
        super().__init__(store, conn)
        self.directory = directory

    def load_chunk(self, table: Table, columns: Sequence[str], chunk: list[Any]) -> None:
        path = self.directory / f"{table.name}.tsv"
        with path.open("wb") as out:
            out.write(b"".join(map(self.LINES.get(table.name, line), chunk)))
        self.load_file(table, columns, path, len(chunk))

    def load_file(self, table: Table, columns: Sequence[str], path: Path, rows: int) -> None:
        """One LOAD DATA statement; `StoreError` unless the server took all `rows` cleanly."""
        quote = self.conn.dialect.identifier_preparer.quote
        sql = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {quote(table.name)} CHARACTER SET binary "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({', '.join(quote(c) for c in columns)})"
        )
        driver = self.conn.connection.driver_connection
        with self.store.dialect.upload_window(driver, path):  # this file, this statement only
            loaded = self.conn.exec_driver_sql(sql, (str(path),)).rowcount
        warning = self.conn.exec_driver_sql("SHOW WARNINGS LIMIT 1").first()
        self._checked(table, loaded, rows, f": {warning[2]}" if warning is not None else "")


@contextlib.contextmanager
def loader(store: Store, conn: Connection) -> Iterator[Loader | None]:
    """A `Loader` inside the transaction of `conn` when the store bulk-loads: COPY with
    psycopg, LOAD DATA when the server takes LOCAL INFILE (tried with an empty file); None
    otherwise (use INSERTs)."""
    if not store.bulk_load:
        yield None
        return
    if store.dialect.bulk_copy:
        yield CopyLoader(store, conn) if conn.dialect.driver == "psycopg" else None
        return
    with scratch.directory("load") as directory:
        bulk = FileLoader(store, conn, directory)
        empty = bulk.directory / "probe.tsv"
        empty.write_bytes(b"")
        try:
            bulk.load_file(schema.receipts, RECEIPT_COLUMNS, empty, 0)
        except DBAPIError as exc:
            if exc.orig is None or not store.dialect.is_bulk_refused(exc.orig):
                raise
            log.warning(
                "%s refuses LOAD DATA LOCAL INFILE (%s): writing the rebuild with INSERTs "
                "instead (set local_infile=ON on the server for the bulk path)",
                store.safe_url,
                store.describe(exc),
            )
            yield None
            return
        yield bulk
