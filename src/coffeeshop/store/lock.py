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

A process forked by the writer (the read-ahead reader) must not keep the lock alive after
the writer dies: right after a fork, the child lets go of its copies of every held lock
(`_let_go_in_child`) WITHOUT unlocking, because what it inherited is the parent's:

- SQLite: `flock` locks belong to the open file description, which parent and child share:
  `LOCK_UN` in the child would release the parent's lock; closing the child's descriptor
  does not (the lock lasts until the last descriptor of that description is closed).
- MySQL/MariaDB, PostgreSQL: closing the driver's connection would say goodbye to the
  server (COM_QUIT / Terminate) over the shared socket, ending the parent's session and
  its lock; the child closes only its descriptor of the socket (the TCP connection
  lives on through the parent's), and keeps the driver objects referenced so that no
  finaliser ever writes to a descriptor number that may be reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
import weakref
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
        _HELD.add(self)
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

    def _let_go(self) -> None:
        """In a forked child: drop this process's hold on the inherited lock, leaving the
        parent's intact (see the module)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.close(self._file)  # never LOCK_UN: the lock is the parent's too
            self._file = None
        if self._connection is not None:
            _close_descriptor(self._connection)
            _ABANDONED.append((self._connection, self._lock_engine))
            self._connection = self._lock_engine = None

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


_HELD: weakref.WeakSet[WriterLock] = weakref.WeakSet()  # locks this process may hold
_ABANDONED: list[Any] = []  # a forked child's copies of lock connections, never finalised


def _close_descriptor(connection: Connection) -> None:
    """Close this process's descriptor of a lock connection's socket, sending nothing."""
    dbapi: Any = connection.connection.dbapi_connection
    sock = getattr(dbapi, "_sock", None)  # PyMySQL
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            os.close(sock.detach())  # the object forgets the number: nothing reuses it
        return
    pgconn = getattr(dbapi, "pgconn", None)  # psycopg
    fd = getattr(pgconn, "socket", None) if pgconn is not None else None
    if isinstance(fd, int) and fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


def _let_go_in_child() -> None:
    for lock in list(_HELD):
        lock._let_go()


os.register_at_fork(after_in_child=_let_go_in_child)
