"""The single-writer lock: one process at a time applies batches to a database.

Each kind of database uses its own primitive, held for the writer's lifetime on
something that dies with the writer:

- SQLite: `flock` on the database file (released by the kernel when the process dies).
- MySQL/MariaDB: `GET_LOCK` on a dedicated, unpooled connection (a pooled connection
  returned to a pool would keep the lock after the writer stopped).
- PostgreSQL: a session advisory lock on a dedicated connection.

The primitives are the dialects' (`store.dialects`). `verify` lets every batch
transaction check, on its own connection, that this writer still holds the lock; a
writer whose lock connection died stops writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from coffeeshop.errors import WriterBusy
from coffeeshop.store.dialects import dialect_named


class WriterLock:
    def __init__(self, engine: Engine, *, name: str) -> None:
        self._engine = engine
        self.name = name
        self._file: int | None = None
        self._connection: Connection | None = None
        self._lock_engine: Engine | None = None
        self.owner_id: int | None = None
        self._dialect = dialect_named(engine.dialect.name)

    def acquire(self, *, wait: float = 0.0) -> None:
        """Take the lock, waiting up to `wait` seconds; raise `WriterBusy` otherwise."""
        deadline = time.monotonic() + wait
        while True:
            if self._try_acquire():
                return
            if time.monotonic() >= deadline:
                raise WriterBusy(
                    f"another coffeeshop writer holds the lock on this database ({self.name}); "
                    "stop it first, or pass --wait SECONDS to wait for it"
                )
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def _try_acquire(self) -> bool:
        if self._dialect.file_lock:
            return self._try_flock()
        if self._connection is None:
            self._lock_engine = create_engine(self._engine.url, poolclass=NullPool)
            self._connection = self._lock_engine.connect()
        got, self.owner_id = self._dialect.try_writer_lock(self._connection, self.name)
        self._connection.commit()
        return got

    def _try_flock(self) -> bool:
        database = self._engine.url.database
        if not database or database == ":memory:":
            return True
        if self._file is None:
            self._file = os.open(database, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def verify(self, conn: Connection) -> bool:
        """True when this writer still holds the lock (checked inside the batch transaction)."""
        return self._dialect.holds_writer_lock(conn, self.name, self.owner_id)

    def reacquire(self) -> bool:
        """After the lock's connection died (the server dropped the lock with it), try once
        to take it again on a new connection. False when another writer has it now."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.invalidate()  # dead: don't try to roll it back
                self._connection.close()
            self._connection = None
        return self._try_acquire()

    def release(self) -> None:
        if self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_UN)
            finally:
                os.close(self._file)
                self._file = None
        if self._connection is not None:
            # Closing the session releases GET_LOCK / advisory locks.
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
        if self._lock_engine is not None:
            self._lock_engine.dispose()
            self._lock_engine = None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
