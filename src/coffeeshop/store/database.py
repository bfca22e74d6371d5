"""The analysis database (`Store`): connect, migrate, hold the writer lock, and apply
batches. This module is the facade; each concept lives in its own module of this package:
`dialects/` (per-database behaviour), `tables/` (each public table's maintenance),
`apply` (the writing transactions), `checkpoint`, `receipts`, `quarantine`, `statements`,
`codec` and `url`."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import URL, Connection

from coffeeshop.core.plan import ParsedEvent, QuarantineEntry, SummaryRow, plan_batch
from coffeeshop.core.receipts import Receipt
from coffeeshop.core.recompute import Tables
from coffeeshop.core.replay import Replay, replay_of
from coffeeshop.errors import CheckpointMoved, DatabaseMissing, StoreError, WriterBusy
from coffeeshop.redact import mask_url, secrets_of
from coffeeshop.store import (
    access,
    apply,
    checkpoint,
    errors,
    ownership,
    receipts,
    schema,
    signal,
    tables,
)
from coffeeshop.store.apply import BatchResult, CatchUp
from coffeeshop.store.checkpoint import Checkpoint
from coffeeshop.store.dialects import dialect_of
from coffeeshop.store.lock import WriterLock
from coffeeshop.store.migrations import SCHEMA_VERSION, current_version, upgrade_schema
from coffeeshop.store.statements import Statements
from coffeeshop.store.url import describe_error, normalize_url

log = logging.getLogger("coffeeshop.store")

# Called at named points inside a batch transaction; tests use it to crash there.
FaultHook = Callable[[str], None]


class Store:
    """One analysis database. Thread-compatible, not thread-safe: one writer thread."""

    def __init__(
        self,
        url: str | URL,
        *,
        fault: FaultHook | None = None,
        read_only: bool = False,
        bulk_load: bool = False,
    ) -> None:
        """`read_only`: for commands that only look (see `store.access`): nothing is ever
        created, every connection is read-only, and `require_schema` replaces `upgrade`.
        `bulk_load`: `rebuild` writes with the database's bulk path where it has one
        (MySQL/MariaDB: LOAD DATA LOCAL INFILE; PostgreSQL: COPY; see `store.bulk`)."""
        self.url = normalize_url(url) if isinstance(url, str) else url
        self.safe_url = mask_url(self.url)
        self.secrets = secrets_of(self.url)  # scrubbed from any driver message we repeat
        self.read_only = read_only
        self._fault = fault
        self.dialect = dialect_of(self.url)  # what differs between databases (`store.dialects`)
        self.bulk_load = (
            bulk_load and (self.dialect.bulk_file or self.dialect.bulk_copy) and not read_only
        )
        self.engine = access.create_checked_engine(
            self.url, self.safe_url, read_only=self.read_only, bulk_load=self.bulk_load
        )
        self.writer = self.engine.execution_options(coffeeshop_write=True)
        if not read_only:
            signal.install(self.engine, self.url)  # readers learn of each commit
        self.statements = Statements(self.engine, self.dialect, self.safe_url)
        self._lock: WriterLock | None = None

    # -- connection ------------------------------------------------------------------------------

    def describe(self, exc: BaseException) -> str:
        """One line for a database error, with no credential in it."""
        return describe_error(exc, self.safe_url, *self.secrets)

    def mapped_errors(self) -> contextlib.AbstractContextManager[None]:
        """Inside: a database error leaves as one `StoreError` line, transient or not as this
        database's dialect says (`store.errors`: the one mapping every retry reads)."""
        return errors.mapped_errors(self.dialect, self.describe, read_only=self.read_only)

    def check(self) -> None:
        """Connect once; raise `StoreError` with one clear line when that fails (a read-only
        store: `DatabaseMissing` for a missing SQLite file or an unknown database)."""
        if self.read_only:
            missing = access.missing_database(self.url, self.safe_url)
            if missing is not None:
                raise missing
        try:
            with self.mapped_errors(), self.engine.connect() as conn:
                conn.execute(select(1))
        except access.OPTION_ERRORS as exc:  # the driver refused an option of the URL
            raise access.bad_option(self.safe_url, exc, *self.secrets) from None

    def close(self) -> None:
        self.release_writer()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------------

    def upgrade(self) -> tuple[int, int]:
        """Create or migrate the schema; return (version before, version after)."""
        if self.read_only:
            raise RuntimeError("a read-only store never creates or migrates the schema")
        self.check()
        with self.mapped_errors():
            versions = upgrade_schema(self.engine)
            if self.dialect.literal_rows:  # max_allowed_packet at start: too small is bad config
                with self.engine.connect() as conn:
                    self.statements.limit(conn)
            return versions

    def require_schema(self) -> int:
        """For commands that only read: the schema must be there, at this version; nothing is
        created or migrated. `DatabaseMissing` (one line) otherwise. Returns the version."""
        self.check()
        with self.mapped_errors(), self.engine.connect() as conn:
            version = current_version(conn)
        if version == 0:
            raise DatabaseMissing(
                f"database {self.safe_url} has no coffeeshop tables; this command only reads and "
                "creates nothing: check --db / SQL_DSN, or run `coffeeshop sync` first"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the database schema is version {version}, newer than this coffeeshop "
                f"understands ({SCHEMA_VERSION}); upgrade coffeeshop"
            )
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"the database schema is version {version}, older than this coffeeshop's "
                f"({SCHEMA_VERSION}); this command only reads: run `coffeeshop db upgrade` "
                "(or any `coffeeshop sync`) first"
            )
        return version

    # -- single writer ---------------------------------------------------------------------------

    def acquire_writer(self, *, wait: float = 0.0) -> None:
        database = self.url.database or ""
        lock = WriterLock(self.engine, name=f"coffeeshop.writer.{database}"[:64])
        try:
            with self.mapped_errors():
                lock.acquire(wait=wait)
        except (WriterBusy, StoreError):
            lock.release()
            raise
        self._lock = lock

    def release_writer(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- checkpoint ------------------------------------------------------------------------------

    def load_checkpoint(self, source: str) -> Checkpoint | None:
        with self.engine.connect() as conn:
            return checkpoint.load(conn, source)

    def holdings(self) -> ownership.Holdings:
        """The sources this database holds, and its receipt and quarantine counts."""
        with self.engine.connect() as conn:
            return ownership.holdings(conn)

    def check_source(self, source: str, *, rebuild: bool) -> None:
        """Raise `SourceMismatch` (one line) when this database holds another source's
        receipts (see `store.ownership`): before a sync (`rebuild=False`) or a repair reads
        anything. The writing transactions check again."""
        with self.engine.connect() as conn:
            recorded = ownership.recorded_sources(conn)
            error = ownership.conflict(
                conn, recorded, source, rebuild=rebuild, database=self.safe_url
            )
        if error is not None:
            raise error

    def list_checkpoints(self) -> list[Checkpoint]:
        with self.engine.connect() as conn:
            return checkpoint.load_all(conn)

    @property
    def _statement_limit(self) -> int | None:
        """The literal statements' size limit once read (tests shrink it)."""
        return self.statements._statement_limit

    @_statement_limit.setter
    def _statement_limit(self, value: int | None) -> None:
        self.statements._statement_limit = value

    # -- writing ---------------------------------------------------------------------------------

    def apply_batch(
        self,
        source: str,
        events: Sequence[ParsedEvent],
        *,
        position: str,
        expected_version: int,
        today: dt.date,
        behind: int | None = None,
        source_time: dt.datetime | None = None,
    ) -> BatchResult:
        """Apply `events` and move the checkpoint to `position`, all in one transaction
        (see `store.apply`).

        `expected_version` is the checkpoint version this writer last saw (0 for none);
        if the database holds another, nothing is written and `CheckpointMoved` is raised.

        When the connection dies while a COMMIT is acknowledged, the caller cannot know
        whether the batch committed and retries it. If the checkpoint already stands at
        `position` one version on, that retry finds its own earlier commit: nothing is
        written again and the result says `recovered` (the counts come from the events;
        the written/deleted receipt counts of the lost attempt are unknown and left 0).
        """
        try:
            return apply.apply_batch(
                self,
                source,
                events,
                position=position,
                expected_version=expected_version,
                today=today,
                behind=behind,
                source_time=source_time,
            )
        except CheckpointMoved as moved:
            if moved.position != position or moved.version != expected_version + 1:
                raise
            counts = plan_batch(events, {})  # these counts depend on the events alone
            return BatchResult(
                applied=counts.applied,
                quarantined=counts.quarantined,
                skipped=counts.skipped,
                receipts_written=0,
                receipts_deleted=0,
                version=expected_version + 1,
                recovered=True,
            )

    def refresh_summary(self, today: dt.date) -> SummaryRow:
        """Write today's `receipts_summary` row from the running totals."""
        rs = schema.receipts_summary
        with self.writer.begin() as conn:
            old = conn.execute(select(rs).where(rs.c.as_of == today)).first()
            row = tables.SUMMARY.write(conn, self.statements, today)
            if old is None or SummaryRow(**old._mapping) != row:
                checkpoint.bump_data_version(conn)
            return row

    def rebuild(
        self,
        source: str,
        receipts: Iterable[tuple[Receipt, str]] | Replay,
        quarantine: Iterable[QuarantineEntry],
        *,
        position: str,
        today: dt.date,
        replace: bool = False,
        fixes: dict[str, dict[Any, Any]] | None = None,
        catch_up: CatchUp | None = None,
    ) -> int:
        """Replace all state with `receipts` (the source's current valid receipts), in one
        transaction, and move `source`'s checkpoint to `position`. Earlier days'
        `receipts_summary` rows are kept as the snapshots they were.

        `catch_up` (what every repair passes): the source read on from `position` to where it
        ends now, applied on top in the same transaction, and the checkpoint moved to that
        end. Without it a slow repair could commit its older snapshot after a newer one (or
        behind a running sync's checkpoint): the tables and the checkpoint went backwards.

        `receipts` is `(receipt, receipt_id)` pairs, or a `core.replay.Replay` that holds the
        rows and their sums already (a partitioned read's merged result: written as they are).

        The database must be `source`'s own (`SourceMismatch` otherwise, nothing changed):
        with `replace`, the checkpoints and quarantine entries of the sources it held before
        are removed with their receipts. `fixes` corrects rows a rebuild keeps (past
        `receipts_summary` rows: table name -> key -> expected value, None for no row)."""
        return apply.rebuild(
            self,
            source,
            replay_of(receipts),
            quarantine,
            position=position,
            today=today,
            replace=replace,
            fixes=fixes,
            catch_up=catch_up,
        )

    def fault_at(self, stage: str) -> None:
        if self._fault is not None:
            self._fault(stage)

    def check_writer(self, conn: Connection) -> None:
        """Inside the batch transaction: does this writer still hold the lock?

        If its lock connection died (a network cut, a server restart), the server released
        the lock: take it again if nobody else did (the checkpoint's compare-and-set then
        catches any batch another writer committed meanwhile); otherwise stop."""
        if self._lock is None or self._lock.verify(conn):
            return
        if self._lock.reacquire():
            log.warning("the writer lock's connection was lost; took the lock again")
            return
        raise WriterBusy(
            "this writer lost its lock on the database (its lock connection closed) and "
            "another writer holds it now; stopping without writing"
        )

    # -- reading ---------------------------------------------------------------------------------

    def data_version(self) -> tuple[int, dt.datetime]:
        """The counter every change of the public tables bumps, and when it last moved."""
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.state.c.data_version, schema.state.c.changed_at)).one()
        return int(row[0]), row[1]

    def read_tables(self, today: dt.date | None = None) -> Tables:
        """The public tables as values (the summary row for `today`, or the latest one)."""
        with self.engine.connect() as conn:
            return tables.read_tables(conn, today)

    def stored_rows(self, rows: tables.TableRows, where: Any = None) -> dict[Any, Any]:
        """Every row of the table `rows` describes (those `where` selects), key -> value."""
        with self.engine.connect() as conn:
            return rows.stored(conn, where)

    def summary_since(self) -> dt.date | None:
        """The first day this database wrote a `receipts_summary` row, if recorded."""
        with self.engine.connect() as conn:
            return tables.since(conn)

    def iter_receipts(self, batch_size: int = 5000) -> Iterator[Receipt]:
        """Every stored current receipt, streamed in key order."""
        return receipts.iterate(self.engine, batch_size)

    def count(self, table: Table) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def quarantine_rows(self, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        q = schema.quarantine
        with self.engine.connect() as conn:
            rows = conn.execute(select(q).order_by(q.c.id).limit(limit).offset(offset))
            return [dict(row._mapping) for row in rows]

    def summary_rows(self) -> list[SummaryRow]:
        rs = schema.receipts_summary
        with self.engine.connect() as conn:
            return [
                SummaryRow(**row._mapping) for row in conn.execute(select(rs).order_by(rs.c.as_of))
            ]


__all__ = ["BatchResult", "Checkpoint", "FaultHook", "Store", "describe_error", "normalize_url"]
