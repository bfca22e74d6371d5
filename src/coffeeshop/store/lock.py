"""The single-writer lock: one process at a time applies batches to a database.

Each kind of database uses its own primitive, held for the writer's lifetime on
something that dies with the writer:

- SQLite: `flock` on the database file (released by the kernel when the process dies).
- MySQL/MariaDB: `GET_LOCK` on a dedicated, unpooled connection (a pooled connection
  returned to a pool would keep the lock after the writer stopped).
- PostgreSQL: a session advisory lock on a dedicated connection.

`verify_sql` lets every batch transaction check, on its own connection, that this
writer still holds the lock; a writer whose lock connection died stops writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from coffeeshop.errors import WriterBusy


class WriterLock:
    def __init__(self, engine: Engine, *, name: str) -> None:
        self._engine = engine
        self.name = name
        self._file: int | None = None
        self._connection: Connection | None = None
        self._lock_engine: Engine | None = None
        self.owner_id: int | None = None

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

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
        if self.dialect == "sqlite":
            return self._try_flock()
        if self._connection is None:
            self._lock_engine = create_engine(self._engine.url, poolclass=NullPool)
            self._connection = self._lock_engine.connect()
        conn = self._connection
        if self.dialect in ("mysql", "mariadb"):
            got = conn.exec_driver_sql("SELECT GET_LOCK(%s, 0)", (self.name,)).scalar()
            self.owner_id = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
            conn.commit()
            return got == 1
        if self.dialect == "postgresql":
            k1, k2 = _advisory_keys(self.name)
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k1, :k2)"), {"k1": k1, "k2": k2}
            ).scalar()
            self.owner_id = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            conn.commit()
            return bool(got)
        raise WriterBusy(f"no writer lock is known for the {self.dialect} dialect")

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
        if self.dialect in ("mysql", "mariadb"):
            holder = conn.exec_driver_sql("SELECT IS_USED_LOCK(%s)", (self.name,)).scalar()
            return holder is not None and holder == self.owner_id
        if self.dialect == "postgresql":
            k1, k2 = _advisory_keys(self.name)
            row = conn.execute(
                text(
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid = :pid AND classid = :k1 AND objid = :k2 AND objsubid = 2"
                ),
                {"pid": self.owner_id, "k1": k1, "k2": k2},
            ).first()
            return row is not None
        return True  # flock dies with the process

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


def _advisory_keys(name: str) -> tuple[int, int]:
    """Two non-negative int4 keys (the two-key form maps plainly onto pg_locks)."""
    digest = hashlib.sha256(name.encode()).digest()
    return (
        int.from_bytes(digest[:4], "big") & 0x7FFFFFFF,
        int.from_bytes(digest[4:8], "big") & 0x7FFFFFFF,
    )
