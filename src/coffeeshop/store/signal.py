"""The writer's word that the data version moved, so readers need not poll for it.

`checkpoint.bump_data_version` calls `announce(conn)` inside the transaction that moves it:

* PostgreSQL: `pg_notify(CHANNEL, '')` — delivered to listeners at commit, never for a
  transaction rolled back (the database's own guarantee);
* SQLite and MariaDB: the connection is marked, and once it is back in the pool — after its
  commit; a rollback clears the mark — the writer appends nothing to, but opens and closes
  for writing, a small signal file (`signal_path`) that readers on this machine watch with
  inotify. For a database in a local file (SQLite) it sits next to the file
  (`analysis.db-signal`, the path its dialect's `file_path` reads from any spelling of the
  URL); for a server's database, in the temporary directory, named by host, port and
  database (not the user: the API reads as another one).

Readers never trust the signal alone: they still poll, slowly while signals come, at the
usual interval when a change arrives unannounced (a writer on another machine).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import URL, Connection

from coffeeshop.store.dialects import dialect_named

CHANNEL = "coffeeshop_data_version"
_MARK = "coffeeshop.data_version_moved"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")


def signal_path(url: URL) -> Path | None:
    """The signal file of the database at `url`; None for PostgreSQL (it notifies) and for a
    database in a local file that is in memory."""
    backend = url.get_backend_name()
    if backend == "postgresql":
        return None
    dialect = dialect_named(backend)
    if dialect.local_file:  # beside its file
        database = dialect.file_path(url)
        return None if database is None else Path(os.path.abspath(database + "-signal"))
    key = f"{backend}://{url.host or ''}:{url.port or ''}/{url.database or ''}"
    name = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"coffeeshop-signal-{name}"


def announce(conn: Connection) -> None:
    """The transaction of `conn` moves the data version: tell readers once it commits."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY)
    else:
        conn.info[_MARK] = True


def touch(path: Path) -> None:
    """Open `path` for writing and close it (inotify: IN_CLOSE_WRITE), creating it if need
    be; a failure (a read-only directory) only costs readers their push: never raised."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def install(engine: Engine, url: URL) -> None:
    """Touch the signal file after each commit of `engine` that moved the data version."""
    path = signal_path(url)
    if path is None:
        return

    def rolled_back(conn: Connection) -> None:
        # A lost connection (invalidated) is left alone: reading its `info` would reconnect,
        # which SQLAlchemy refuses mid-transaction, and that error would replace the
        # disconnect the caller retries. Its mark can at most cost readers one needless read.
        if not conn.invalidated:
            conn.info.pop(_MARK, None)

    def checked_in(dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop(_MARK, False):
            touch(path)

    event.listen(engine, "rollback", rolled_back)
    event.listen(engine, "checkin", checked_in)
