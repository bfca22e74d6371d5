"""The analysis database: connect, migrate, and apply one batch in one transaction."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Engine,
    Table,
    and_,
    delete,
    event,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from coffeeshop.core.plan import (
    BatchPlan,
    Delta,
    ParsedEvent,
    QuarantineEntry,
    SummaryRow,
    peak_hour,
    plan_batch,
    summary_row,
    touched_keys,
    week_bounds,
)
from coffeeshop.core.receipts import Receipt
from coffeeshop.core.recompute import Tables
from coffeeshop.errors import (
    CheckpointMoved,
    ConfigError,
    DatabaseMissing,
    StoreError,
    WriterBusy,
)
from coffeeshop.redact import mask_text, mask_url, secrets_of
from coffeeshop.store import access, literal_sql, ownership, schema
from coffeeshop.store.lock import WriterLock
from coffeeshop.store.migrations import current_version, upgrade_schema

log = logging.getLogger("coffeeshop.store")

CHUNK = 900  # bound parameters per IN (...) list; SQLite's oldest limit is 999

# Called at named points inside a batch transaction; tests use it to crash there.
FaultHook = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    source: str
    position: str
    version: int
    applied: int
    quarantined: int
    batches: int
    committed_at: dt.datetime
    behind: int | None = None
    source_time: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    applied: int
    quarantined: int
    skipped: int
    receipts_written: int
    receipts_deleted: int
    version: int
    recovered: bool = False  # an earlier attempt had committed it; nothing written now


def normalize_url(raw: str) -> URL:
    """Parse a SQLAlchemy URL, picking the drivers this package ships with."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"not a database URL: {mask_url(raw)!r} "
            "(expected e.g. sqlite:///analysis.db or mysql+pymysql://user@host:3306/db)"
        ) from None
    if url.drivername.split("+")[0] == "postgres":  # libpq's and Heroku's spelling
        url = url.set(drivername="postgresql" + url.drivername.removeprefix("postgres"))
    backend = url.get_backend_name()
    if backend in ("mysql", "mariadb"):
        if url.get_driver_name() in ("", "mysqldb") and "+" not in url.drivername:
            url = url.set(drivername=f"{backend}+pymysql")
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
    elif backend == "postgresql":
        if "+" not in url.drivername:
            url = url.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise ConfigError(
            f"unsupported database {backend!r} in {mask_url(url)}: "
            "use sqlite:///FILE, mysql+pymysql://… (MySQL/MariaDB) or postgresql://…"
        )
    return url


class Store:
    """One analysis database. Thread-compatible, not thread-safe: one writer thread."""

    def __init__(
        self, url: str | URL, *, fault: FaultHook | None = None, read_only: bool = False
    ) -> None:
        """`read_only`: for commands that only look (see `store.access`): nothing is ever
        created, every connection is read-only, and `require_schema` replaces `upgrade`."""
        self.url = normalize_url(url) if isinstance(url, str) else url
        self.safe_url = mask_url(self.url)
        self.secrets = secrets_of(self.url)  # scrubbed from any driver message we repeat
        self.read_only = read_only
        self._fault = fault
        self.engine = self._create_engine()
        self.writer = self.engine.execution_options(coffeeshop_write=True)
        self.dialect = self.engine.dialect.name
        self.is_mysql = self.dialect in ("mysql", "mariadb")
        self._lock: WriterLock | None = None
        self._statements: dict[Any, Any] = {}
        self._compiled: dict[int, Any] = {}
        self._statement_limit: int | None = None  # MySQL/MariaDB: from max_allowed_packet

    # -- connection ------------------------------------------------------------------------------

    def _create_engine(self) -> Engine:
        engine = access.create_checked_engine(self.url, self.safe_url, read_only=self.read_only)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine, read_only=self.read_only)
        return engine

    def describe(self, exc: BaseException) -> str:
        """One line for a database error, with no credential in it."""
        return describe_error(exc, self.safe_url, *self.secrets)

    def check(self) -> None:
        """Connect once; raise `StoreError` with one clear line when that fails (a read-only
        store: `DatabaseMissing` for a missing SQLite file or an unknown database)."""
        if self.read_only:
            missing = access.missing_database(self.url, self.safe_url)
            if missing is not None:
                raise missing
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError as exc:
            if self.read_only and access.is_unknown_database(exc):
                raise DatabaseMissing(
                    f"{self.describe(exc)}; this command only reads and creates nothing"
                ) from None
            raise StoreError(self.describe(exc)) from exc
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
        try:
            versions = upgrade_schema(self.engine)
            if self.is_mysql:  # read max_allowed_packet at start: too small is bad config
                with self.engine.connect() as conn:
                    self._limit(conn)
            return versions
        except SQLAlchemyError as exc:
            raise StoreError(self.describe(exc)) from exc

    def require_schema(self) -> int:
        """For commands that only read: the schema must be there, at this version; nothing is
        created or migrated. `DatabaseMissing` (one line) otherwise. Returns the version."""
        self.check()
        try:
            with self.engine.connect() as conn:
                version = current_version(conn)
        except SQLAlchemyError as exc:
            raise StoreError(self.describe(exc)) from exc
        if version == 0:
            raise DatabaseMissing(
                f"database {self.safe_url} has no coffeeshop tables; this command only reads and "
                "creates nothing: check --db / SQL_DSN, or run `coffeeshop sync` first"
            )
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"the database schema is version {version}, newer than this coffeeshop "
                f"understands ({schema.SCHEMA_VERSION}); upgrade coffeeshop"
            )
        if version < schema.SCHEMA_VERSION:
            raise StoreError(
                f"the database schema is version {version}, older than this coffeeshop's "
                f"({schema.SCHEMA_VERSION}); this command only reads: run `coffeeshop db upgrade` "
                "(or any `coffeeshop sync`) first"
            )
        return version

    def _limit(self, conn: Connection) -> int:
        """Bytes of literals per multi-row statement on MySQL/MariaDB, from the server's
        max_allowed_packet (read once): every statement the store sends fits the packet."""
        if self._statement_limit is None:
            packet = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())
            if packet < literal_sql.MIN_PACKET:
                raise ConfigError(
                    f"the server of {self.safe_url} has max_allowed_packet = {packet} bytes; "
                    f"coffeeshop needs at least {literal_sql.MIN_PACKET} (4 MiB): set "
                    "max_allowed_packet = 16M in the server's configuration"
                )
            self._statement_limit = literal_sql.statement_limit(packet)
        return self._statement_limit

    # -- single writer ---------------------------------------------------------------------------

    def acquire_writer(self, *, wait: float = 0.0) -> None:
        database = self.url.database or ""
        lock = WriterLock(self.engine, name=f"coffeeshop.writer.{database}"[:64])
        try:
            lock.acquire(wait=wait)
        except WriterBusy:
            lock.release()
            raise
        except SQLAlchemyError as exc:
            lock.release()
            raise StoreError(self.describe(exc)) from exc
        self._lock = lock

    def release_writer(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- checkpoint ------------------------------------------------------------------------------

    def load_checkpoint(self, source: str) -> Checkpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.checkpoints).where(schema.checkpoints.c.source == source)
            ).first()
        return Checkpoint(**row._mapping) if row is not None else None

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
        error = ownership.conflict(recorded, source, rebuild=rebuild, database=self.safe_url)
        if error is not None:
            raise error

    def list_checkpoints(self) -> list[Checkpoint]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.checkpoints).order_by(schema.checkpoints.c.source))
            return [Checkpoint(**row._mapping) for row in rows]

    # -- applying a batch ------------------------------------------------------------------------

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
        """Apply `events` and move the checkpoint to `position`, all in one transaction.

        `expected_version` is the checkpoint version this writer last saw (0 for none);
        if the database holds another, nothing is written and `CheckpointMoved` is raised.

        When the connection dies while a COMMIT is acknowledged, the caller cannot know
        whether the batch committed and retries it. If the checkpoint already stands at
        `position` one version on, that retry finds its own earlier commit: nothing is
        written again and the result says `recovered` (the counts come from the events;
        the written/deleted receipt counts of the lost attempt are unknown and left 0).
        """
        try:
            with self.writer.begin() as conn:
                version = self._claim_checkpoint(conn, source, expected_version)
                self._check_writer(conn)
                if version == 1:  # this source's first batch: is the database its own?
                    ownership.check(conn, source, rebuild=False, database=self.safe_url)
                self._fault_at("begin")
                keys = touched_keys(events)
                current = self._load_receipts(conn, keys)
                plan = plan_batch(events, current)
                self._write_receipts(conn, plan)
                self._fault_at("receipts")
                self._apply_delta(conn, plan.delta)
                self._fault_at("aggregates")
                if not plan.delta.is_empty:
                    self._write_summary(conn, today)
                quarantine_changed = self._write_quarantine(conn, source, plan)
                self._fault_at("quarantine")
                self._record_checkpoint(
                    conn, source, position, version, plan, behind=behind, source_time=source_time
                )
                if not plan.delta.is_empty or quarantine_changed:
                    self._bump_data_version(conn)  # readers' caches are stale only then
                self._fault_at("checkpoint")
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
        return BatchResult(
            applied=plan.applied,
            quarantined=plan.quarantined,
            skipped=plan.skipped,
            receipts_written=len(plan.upserts),
            receipts_deleted=len(plan.deletes),
            version=version,
        )

    def refresh_summary(self, today: dt.date) -> SummaryRow:
        """Write today's `receipts_summary` row from the running totals."""
        rs = schema.receipts_summary
        with self.writer.begin() as conn:
            old = conn.execute(select(rs).where(rs.c.as_of == today)).first()
            row = self._write_summary(conn, today)
            if old is None or SummaryRow(**old._mapping) != row:
                self._bump_data_version(conn)
            return row

    def _fault_at(self, stage: str) -> None:
        if self._fault is not None:
            self._fault(stage)

    def _check_writer(self, conn: Connection) -> None:
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

    def _load_receipts(self, conn: Connection, keys: Iterable[str]) -> dict[str, Receipt]:
        table = schema.receipts
        found: dict[str, Receipt] = {}
        encoded = [k.encode("utf-8", "surrogatepass") for k in keys]
        if self.is_mysql:
            q = self.engine.dialect.identifier_preparer.quote
            names = ", ".join(q(c) for c in ("key", "store_id", "day", "hour", "cents", "lines"))
            head = f"SELECT {names} FROM cs_receipts WHERE {q('key')} IN "
            results = (
                conn.exec_driver_sql(f"{head}({values})")
                for values in literal_sql.in_list(encoded, limit=self._limit(conn))
            )
        else:
            columns = (
                table.c.key,
                table.c.store_id,
                table.c.day,
                table.c.hour,
                table.c.cents,
                table.c.lines,
            )
            results = (
                conn.execute(select(*columns).where(table.c.key.in_(chunk)))
                for chunk in _chunks(encoded, CHUNK)
            )
        for result in results:
            for row in result:
                key = bytes(row[0]).decode("utf-8", "surrogatepass")
                found[key] = decode_receipt(key, row[1], row[2], row[3], row[4], row[5])
        return found

    def _write_receipts(self, conn: Connection, plan: BatchPlan) -> None:
        table = schema.receipts
        if plan.deletes:
            for chunk in _chunks([k.encode("utf-8", "surrogatepass") for k in plan.deletes], CHUNK):
                conn.execute(delete(table).where(table.c.key.in_(chunk)))
        if plan.upserts:
            stmt = self._upsert(
                table, ("key",), set_=("receipt_id", "store_id", "day", "hour", "cents", "lines")
            )
            bulk = self._compile(stmt)
            if isinstance(bulk, literal_sql.BulkInsert) and bulk.columns == RECEIPT_COLUMNS:
                bulk.execute_rows(
                    conn,
                    (receipt_literal(r, rid) for r, rid in plan.upserts.values()),
                    limit=self._limit(conn),
                )
            else:
                rows = [encode_receipt(r, rid) for r, rid in plan.upserts.values()]
                self._execute_many(conn, stmt, rows)

    def _apply_delta(self, conn: Connection, delta: Delta) -> None:
        if delta.is_empty:
            return
        t = schema.totals
        conn.execute(
            update(t)
            .where(t.c.id == 1)
            .values(
                receipts=t.c.receipts + delta.receipts,
                cents=t.c.cents + delta.cents,
                units=t.c.units + delta.units,
            )
        )
        if delta.daily:
            conn.execute(
                self._upsert(schema.daily, ("day",), add=("receipts", "cents")),
                [{"day": d, "receipts": v[0], "cents": v[1]} for d, v in delta.daily.items()],
            )
            for chunk in _chunks(list(delta.daily), CHUNK):
                conn.execute(
                    delete(schema.daily).where(
                        and_(schema.daily.c.day.in_(chunk), schema.daily.c.receipts == 0)
                    )
                )
        if delta.store_month:
            self._apply_store_month(conn, delta.store_month)
        if delta.store_hour:
            self._apply_store_hour(conn, delta.store_hour)
        if delta.items:
            self._apply_items(conn, delta.items)

    def _apply_store_month(
        self, conn: Connection, changes: Mapping[tuple[str, int], list[int]]
    ) -> None:
        sm = schema.store_month
        conn.execute(
            self._upsert(sm, ("month", "store_id"), add=("receipts", "cents")),
            [
                {"month": m, "store_id": s, "receipts": v[0], "cents": v[1]}
                for (m, s), v in changes.items()
            ],
        )
        keep: list[dict[str, Any]] = []
        gone: list[tuple[str, int]] = []
        for chunk in _chunks(list(changes), CHUNK // 2):
            rows = conn.execute(
                select(sm.c.month, sm.c.store_id, sm.c.receipts, sm.c.cents).where(
                    tuple_(sm.c.month, sm.c.store_id).in_(chunk)
                )
            )
            for month, store_id, count, cents in rows:
                if count > 0:
                    keep.append({"month": month, "store_id": store_id, "sales": _money(cents)})
                else:
                    gone.append((month, store_id))
        if keep:
            conn.execute(
                self._upsert(schema.store_monthly, ("month", "store_id"), set_=("sales",)), keep
            )
        for chunk in _chunks(gone, CHUNK // 2):
            for table in (sm, schema.store_monthly):
                conn.execute(
                    delete(table).where(tuple_(table.c.month, table.c.store_id).in_(chunk))
                )

    def _apply_store_hour(self, conn: Connection, changes: Mapping[tuple[int, int], int]) -> None:
        sh = schema.store_hour
        conn.execute(
            self._upsert(sh, ("store_id", "hour"), add=("receipts",)),
            [{"store_id": s, "hour": h, "receipts": n} for (s, h), n in changes.items()],
        )
        stores = sorted({store_id for store_id, _ in changes})
        hours: dict[int, dict[int, int]] = {store_id: {} for store_id in stores}
        for chunk in _chunks(stores, CHUNK):
            rows = conn.execute(
                select(sh.c.store_id, sh.c.hour, sh.c.receipts).where(
                    and_(sh.c.store_id.in_(chunk), sh.c.receipts > 0)
                )
            )
            for store_id, hour, count in rows:
                hours[store_id][hour] = count
        peaks: list[dict[str, Any]] = []
        empty: list[int] = []
        for store_id, by_hour in hours.items():
            peak = peak_hour(by_hour)
            if peak is None:
                empty.append(store_id)
            else:
                peaks.append({"store_id": store_id, "peak_hour": peak[0], "tx_count": peak[1]})
        if peaks:
            conn.execute(
                self._upsert(
                    schema.store_peak_hours, ("store_id",), set_=("peak_hour", "tx_count")
                ),
                peaks,
            )
        for chunk in _chunks(empty, CHUNK):
            conn.execute(
                delete(schema.store_peak_hours).where(schema.store_peak_hours.c.store_id.in_(chunk))
            )
        for chunk in _chunks(stores, CHUNK):
            conn.execute(delete(sh).where(and_(sh.c.store_id.in_(chunk), sh.c.receipts == 0)))

    def _apply_items(self, conn: Connection, changes: Mapping[str, int]) -> None:
        ip = schema.item_performance
        conn.execute(
            self._upsert(ip, ("item_name",), add=("total_sold",)),
            [{"item_name": name, "total_sold": n} for name, n in changes.items()],
        )
        lowered = [name for name, n in changes.items() if n < 0]
        for chunk in _chunks(lowered, CHUNK):
            conn.execute(delete(ip).where(and_(ip.c.item_name.in_(chunk), ip.c.total_sold <= 0)))

    def _write_summary(self, conn: Connection, today: dt.date) -> SummaryRow:
        t = schema.totals
        # FOR UPDATE: a batch committing meanwhile waits, so the row is never a batch behind.
        totals = conn.execute(
            select(t.c.receipts, t.c.cents, t.c.units).where(t.c.id == 1).with_for_update()
        ).one()
        first, _, end = week_bounds(today)
        d = schema.daily
        daily = {
            day: cents
            for day, cents in conn.execute(
                select(d.c.day, d.c.cents).where(and_(d.c.day >= first, d.c.day < end))
            )
        }
        row = summary_row(
            today, receipts=totals[0], cents=totals[1], units=totals[2], daily_cents=daily
        )
        conn.execute(
            self._upsert(
                schema.receipts_summary,
                ("as_of",),
                set_=("spend_per_rcpt", "items_per_rcpt", "this_week_sales", "last_week_sales"),
            ),
            [
                {
                    "as_of": row.as_of,
                    "spend_per_rcpt": row.spend_per_rcpt,
                    "items_per_rcpt": row.items_per_rcpt,
                    "this_week_sales": row.this_week_sales,
                    "last_week_sales": row.last_week_sales,
                }
            ],
        )
        return row

    def _write_quarantine(self, conn: Connection, source: str, plan: BatchPlan) -> bool:
        """Clear the entries of keys that are valid again and add the new ones; True when
        the quarantine changed (a valid receipt usually has no entry to clear)."""
        q = schema.quarantine
        cleared = 0
        if plan.quarantine_clear:
            keys = [k.encode("utf-8", "surrogatepass") for k in plan.quarantine_clear]
            for chunk in _chunks(keys, CHUNK):
                cleared += conn.execute(delete(q).where(q.c.key.in_(chunk))).rowcount
        if plan.quarantine_add:
            now = _utcnow()
            conn.execute(
                insert(q),
                [
                    {
                        "key": e.key.encode("utf-8", "surrogatepass")
                        if e.key is not None
                        else None,
                        "receipt_id": e.receipt_id[:255] if e.receipt_id else None,
                        "reason": e.reason,
                        "source": source[:255],
                        "position": e.where[:255],
                        "raw": e.raw,
                        "received_at": now,
                    }
                    for e in plan.quarantine_add
                ],
            )
        return cleared > 0 or bool(plan.quarantine_add)

    def _claim_checkpoint(self, conn: Connection, source: str, expected: int | None) -> int:
        """First statement of a writing transaction: take the checkpoint row (a row lock on
        MySQL/MariaDB/PostgreSQL, the write lock on SQLite) and check it is still at
        `expected` (None: whatever it is). Returns the version this transaction commits.

        A repair that rebuilt the state meanwhile moved the version: nothing is written and
        `CheckpointMoved` tells the writer to re-read the checkpoint."""
        c = schema.checkpoints
        condition = c.c.source == source
        if expected is not None:
            condition = and_(condition, c.c.version == expected)
        result = conn.execute(update(c).where(condition).values(version=c.c.version + 1))
        if result.rowcount == 1:
            if expected is not None:
                return expected + 1
            return int(conn.execute(select(c.c.version).where(c.c.source == source)).scalar_one())
        row = conn.execute(select(c.c.version, c.c.position).where(c.c.source == source)).first()
        if row is None and expected in (None, 0):
            return 1  # no checkpoint yet: `_record_checkpoint` inserts it
        raise CheckpointMoved(
            f"the checkpoint of {source} moved under this writer (a repair rebuilt the tables?)",
            version=None if row is None else int(row.version),
            position=None if row is None else row.position,
        )

    def _record_checkpoint(
        self,
        conn: Connection,
        source: str,
        position: str,
        version: int,
        plan: BatchPlan,
        *,
        behind: int | None = None,
        source_time: dt.datetime | None = None,
        reset_counts: bool = False,
    ) -> None:
        c = schema.checkpoints
        values: dict[str, Any] = {
            "position": position,
            "version": version,
            "committed_at": _utcnow(),
            "behind": behind,
            "source_time": source_time,
        }
        exists = conn.execute(select(c.c.source).where(c.c.source == source)).first()
        if exists is None:
            conn.execute(
                insert(c).values(
                    source=source,
                    applied=plan.applied,
                    quarantined=plan.quarantined,
                    batches=1,
                    **values,
                )
            )
            return
        if reset_counts:
            counts: dict[str, Any] = {
                "applied": plan.applied,
                "quarantined": plan.quarantined,
                "batches": 1,
            }
        else:
            counts = {
                "applied": c.c.applied + plan.applied,
                "quarantined": c.c.quarantined + plan.quarantined,
                "batches": c.c.batches + 1,
            }
        conn.execute(update(c).where(c.c.source == source).values(**values, **counts))

    # -- rebuilding ------------------------------------------------------------------------------

    def rebuild(
        self,
        source: str,
        receipts: Iterable[tuple[Receipt, str]],
        quarantine: Iterable[QuarantineEntry],
        *,
        position: str,
        today: dt.date,
        replace: bool = False,
    ) -> int:
        """Replace all state with `receipts` (the source's current valid receipts), in one
        transaction, and move `source`'s checkpoint to `position`. Earlier days'
        `receipts_summary` rows are kept as the snapshots they were.

        The database must be `source`'s own (`SourceMismatch` otherwise, nothing changed):
        with `replace`, the checkpoints and quarantine entries of the sources it held before
        are removed with their receipts."""
        with self.writer.begin() as conn:
            version = self._claim_checkpoint(conn, source, None)
            self._check_writer(conn)
            others = ownership.check(
                conn, source, rebuild=True, database=self.safe_url, replace=replace
            )
            if others:
                c, q = schema.checkpoints, schema.quarantine
                conn.execute(delete(c).where(c.c.source.in_(others)))
                conn.execute(delete(q).where(q.c.source.in_([o[:255] for o in others])))
                log.warning(
                    "replacing the source of %s: removed the receipts, checkpoint and "
                    "quarantine of %s",
                    self.safe_url,
                    ", ".join(others),
                )
            for table in (
                schema.receipts,
                schema.daily,
                schema.store_month,
                schema.store_hour,
                schema.store_monthly,
                schema.item_performance,
                schema.store_peak_hours,
            ):
                conn.execute(delete(table))
            conn.execute(
                delete(schema.quarantine).where(schema.quarantine.c.source == source[:255])
            )
            conn.execute(update(schema.totals).values(receipts=0, cents=0, units=0))
            delta = Delta()
            count = 0
            rows: list[dict[str, Any]] = []
            insert_receipts = self._statements.setdefault("rebuild", insert(schema.receipts))
            for receipt, receipt_id in receipts:
                delta.add(receipt, +1)
                rows.append(encode_receipt(receipt, receipt_id))
                count += 1
                if len(rows) >= 5000:
                    self._execute_many(conn, insert_receipts, rows)
                    rows = []
            if rows:
                self._execute_many(conn, insert_receipts, rows)
            self._apply_delta(conn, delta.prune())
            self._write_summary(conn, today)
            entries = list(quarantine)
            plan = BatchPlan(
                upserts={},
                deletes=set(),
                delta=Delta(),
                quarantine_clear=set(),
                quarantine_add=entries,
                applied=0,
                quarantined=0,
                skipped=0,
            )
            self._write_quarantine(conn, source, plan)
            self._bump_data_version(conn)
            self._record_checkpoint(conn, source, position, version, plan, reset_counts=True)
        return count

    def _bump_data_version(self, conn: Connection) -> None:
        st = schema.state
        conn.execute(
            update(st)
            .where(st.c.id == 1)
            .values(data_version=st.c.data_version + 1, changed_at=_utcnow())
        )

    def data_version(self) -> tuple[int, dt.datetime]:
        """The counter every change of the public tables bumps, and when it last moved."""
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.state.c.data_version, schema.state.c.changed_at)).one()
        return int(row[0]), row[1]

    # -- statements ------------------------------------------------------------------------------

    def _upsert(
        self,
        table: Table,
        keys: tuple[str, ...],
        *,
        add: tuple[str, ...] = (),
        set_: tuple[str, ...] = (),
    ) -> Any:
        """INSERT … ON DUPLICATE KEY / ON CONFLICT: `add` columns accumulate, `set_` overwrite."""
        cache_key = (table.name, keys, add, set_)
        stmt = self._statements.get(cache_key)
        if stmt is not None:
            return stmt
        # Each dialect's insert is imported when first used: the other dialects' modules
        # cost ~0.1 s apiece to import, on every command (see bench/bench_cli.py).
        if self.is_mysql:
            from sqlalchemy.dialects import mysql as mysql_dialect

            ins = mysql_dialect.insert(table)
            stmt = ins.on_duplicate_key_update(
                {
                    **{c: table.c[c] + ins.inserted[c] for c in add},
                    **{c: ins.inserted[c] for c in set_},
                }
            )
        else:
            if self.dialect == "postgresql":
                from sqlalchemy.dialects import postgresql as module
            else:
                from sqlalchemy.dialects import sqlite as module
            ins = module.insert(table)
            stmt = ins.on_conflict_do_update(
                index_elements=list(keys),
                set_={
                    **{c: table.c[c] + ins.excluded[c] for c in add},
                    **{c: ins.excluded[c] for c in set_},
                },
            )
        self._statements[cache_key] = stmt
        return stmt

    def _compile(self, stmt: Any) -> Any:
        """Compile once per statement: a `BulkInsert` for MySQL upserts, else (sql, order)."""
        cached = self._compiled.get(id(stmt))
        if cached is None:
            compiled = stmt.compile(dialect=self.engine.dialect)
            if self.is_mysql and "DUPLICATE" in str(compiled):
                cached = literal_sql.BulkInsert(str(compiled), list(compiled.params))
            else:
                order = tuple(compiled.positiontup or ()) if compiled.positional else None
                cached = (str(compiled), order)
            self._compiled[id(stmt)] = cached
        return cached

    def _execute_many(self, conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> None:
        """executemany straight to the driver, for rows already in driver types.

        The statement is compiled once by SQLAlchemy for this dialect (so MySQL 8 and
        MariaDB each get their own upsert syntax). On MySQL/MariaDB the rows go as one
        multi-row statement of literals (see `literal_sql`); elsewhere the driver's
        executemany gets them without SQLAlchemy's per-row parameter processing.
        """
        cached = self._compile(stmt)
        if isinstance(cached, literal_sql.BulkInsert):
            cached.execute(conn, rows, limit=self._limit(conn))
            return
        sql, order = cached
        if order is not None:
            conn.exec_driver_sql(sql, [tuple(row[name] for name in order) for row in rows])
        else:
            conn.exec_driver_sql(sql, rows)

    # -- reading ---------------------------------------------------------------------------------

    def read_tables(self, today: dt.date | None = None) -> Tables:
        """The public tables as values (the summary row for `today`, or the latest one)."""
        with self.engine.connect() as conn:
            rs = schema.receipts_summary
            query = select(rs)
            query = (
                query.where(rs.c.as_of == today)
                if today
                else query.order_by(rs.c.as_of.desc()).limit(1)
            )
            row = conn.execute(query).first()
            summary = (
                SummaryRow(**row._mapping)
                if row is not None
                else summary_row(
                    today or dt.date.today(), receipts=0, cents=0, units=0, daily_cents={}
                )
            )
            sm, ip, ph = schema.store_monthly, schema.item_performance, schema.store_peak_hours
            return Tables(
                summary=summary,
                store_monthly={
                    (m, s): v
                    for m, s, v in conn.execute(select(sm.c.month, sm.c.store_id, sm.c.sales))
                },
                item_performance={
                    n: v for n, v in conn.execute(select(ip.c.item_name, ip.c.total_sold))
                },
                store_peak_hours={
                    s: (h, n)
                    for s, h, n in conn.execute(
                        select(ph.c.store_id, ph.c.peak_hour, ph.c.tx_count)
                    )
                },
            )

    def iter_receipts(self, batch_size: int = 5000) -> Iterator[Receipt]:
        """Every stored current receipt, streamed in key order."""
        table = schema.receipts
        last: bytes | None = None
        while True:
            query = (
                select(
                    table.c.key,
                    table.c.store_id,
                    table.c.day,
                    table.c.hour,
                    table.c.cents,
                    table.c.lines,
                )
                .order_by(table.c.key)
                .limit(batch_size)
            )
            if last is not None:
                query = query.where(table.c.key > last)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                key = bytes(row[0]).decode("utf-8", "surrogatepass")
                yield decode_receipt(key, row[1], row[2], row[3], row[4], row[5])
            last = bytes(rows[-1][0])

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

    def execute(self, sql: str) -> None:
        with self.writer.begin() as conn:
            conn.execute(text(sql))


# -- row encoding --------------------------------------------------------------------------------


def encode_receipt(receipt: Receipt, receipt_id: str) -> dict[str, Any]:
    day = receipt.day
    return {
        "key": receipt.key.encode("utf-8", "surrogatepass"),
        "receipt_id": receipt_id[:255],
        "store_id": receipt.store_id,
        "day": day.year * 10000 + day.month * 100 + day.day,
        "hour": receipt.hour,
        "cents": receipt.cents,
        "lines": _JSON.encode(receipt.items),
    }


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
RECEIPT_COLUMNS = ("key", "receipt_id", "store_id", "day", "hour", "cents", "lines")


def receipt_literal(receipt: Receipt, receipt_id: str) -> str:
    """`encode_receipt` written straight as a SQL row literal (see `literal_sql`)."""
    day = receipt.day
    key = receipt.key.encode("utf-8", "surrogatepass").hex()
    return (
        f"(X'{key}',X'{receipt_id[:255].encode('utf-8').hex()}',{receipt.store_id},"
        f"{day.year * 10000 + day.month * 100 + day.day},{receipt.hour},{receipt.cents},"
        f"X'{_JSON.encode(receipt.items).encode('utf-8').hex()}')"
    )


def decode_receipt(key: str, store_id: int, day: int, hour: int, cents: int, lines: str) -> Receipt:
    return Receipt(
        key=key,
        store_id=store_id,
        day=dt.date(day // 10000, day // 100 % 100, day % 100),
        hour=hour,
        cents=cents,
        items=tuple((name, quantity) for name, quantity in json.loads(lines)),
    )


def _money(cents: int) -> Any:
    from decimal import Decimal

    return Decimal(cents).scaleb(-2)


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _configure_sqlite(engine: Engine, *, read_only: bool = False) -> None:
    """WAL, and BEGIN IMMEDIATE so a writer takes its lock up front (no upgrade deadlocks).
    A read-only store leaves the journal mode alone (setting it writes the file)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")  # then the engine retries, with backoff
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache (default: 2 MiB)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("coffeeshop_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def describe_error(exc: BaseException, safe_url: str, *secrets: str) -> str:
    """One line for a database error, with no credential in it: `safe_url` is already masked
    (`redact.mask_url`); the driver's own text is masked too, and `secrets` (the password
    and secret options of the URL in use) are scrubbed from it wherever they appear."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    detail = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    args = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        detail = f"({args[0]}) {args[1]}"
    return f"cannot use database {safe_url}: {mask_text(detail, *secrets)}"
