"""The library's entry points: `coffeeshop.sync(...)`, `coffeeshop.reconcile(...)`,
`coffeeshop.open_store(...)`, and the one place a `Syncer` is assembled from `Settings`
(the command line, the demo and the Prefect flows all build theirs here).

The options are those of the command line, by their settings names (`source`, `db`,
`batch_size`, `mongo_database`, `on_history_lost`, …); what is not given comes from the
environment, as for the commands. Errors are `coffeeshop.errors.CoffeeshopError`s.

    import coffeeshop
    report = coffeeshop.sync(source="receipts.jsonl", db="sqlite:///analysis.db")
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from coffeeshop.config import Settings, load_settings
from coffeeshop.pipeline.engine import Syncer, SyncReport
from coffeeshop.pipeline.reconcile import ReconcileReport
from coffeeshop.pipeline.reconcile import reconcile as run_reconcile
from coffeeshop.sources.base import BatchLimits, Reachable, Source
from coffeeshop.store import Store


def build_syncer(
    store: Store,
    settings: Settings,
    *,
    source: Source | None = None,
    on_batch: Callable[[SyncReport], None] | None = None,
    read_ahead: bool = True,
) -> Syncer:
    """A `Syncer` for `store` with the batch limits, the local date and the history-lost
    policy of `settings`; `source` defaults to the configured one."""
    return Syncer(
        store,
        settings.open_source() if source is None else source,
        limits=BatchLimits(settings.batch_size, settings.batch_wait, settings.poll_interval),
        today=settings.today,
        on_batch=on_batch,
        read_ahead=read_ahead,
        rebuild_on_history_lost=settings.on_history_lost == "rebuild",
    )


def reach(source: Source, stop: threading.Event | None) -> None:
    """A one-shot run's check that a server source answers, before the database is touched."""
    if isinstance(source, Reachable):
        source.check_reachable(stop or threading.Event())


def open_store(db: str | None = None, *, read_only: bool = False) -> Store:
    """The analysis database (`db`, else SQL_DSN / COFFEESHOP_DB); use it in a `with` block.
    Read-only: the database must exist with the tables (`store.require_schema()`)."""
    return Store(load_settings(db=db).db, read_only=read_only)


def sync(
    source: str | None = None,
    db: str | None = None,
    *,
    follow: bool = False,
    stop: threading.Event | None = None,
    wait_lock: float = 0.0,
    **options: Any,
) -> SyncReport:
    """Apply the source's receipt changes to the tables: everything available, or with
    `follow` until `stop` is set. Resumes after the last committed batch."""
    settings = load_settings(source=source, db=db, **options)
    return sync_settings(settings, follow=follow, stop=stop, wait_lock=wait_lock)


def sync_settings(
    settings: Settings,
    *,
    follow: bool = False,
    stop: threading.Event | None = None,
    wait_lock: float = 0.0,
) -> SyncReport:
    """`sync` with settings already loaded (as the command line has them)."""
    source = settings.open_source()  # a bad source is refused before the database is touched
    if not follow:  # and one that does not answer (a following run waits for it instead)
        reach(source, stop)
    with Store(settings.db) as store:
        syncer = build_syncer(store, settings, source=source)
        return syncer.run(follow=follow, stop=stop, wait_lock=wait_lock)


def reconcile(
    source: str | None = None,
    db: str | None = None,
    *,
    repair: bool = False,
    replace_source: bool = False,
    **options: Any,
) -> ReconcileReport:
    """Recompute the tables from the whole source and compare; `repair` makes them right in
    one transaction. Without `repair` the database is only read."""
    settings = load_settings(source=source, db=db, **options)
    return reconcile_settings(settings, repair=repair, replace_source=replace_source)


def reconcile_settings(
    settings: Settings,
    *,
    repair: bool = False,
    replace_source: bool = False,
    before_replace: Callable[[Store, str], None] | None = None,
) -> ReconcileReport:
    """`reconcile` with settings already loaded; `before_replace(store, source name)` runs
    before `replace_source` removes anything (the command line says what it removes)."""
    source = settings.open_source()
    reach(source, None)
    with Store(settings.db, read_only=not repair) as store:
        if replace_source and before_replace is not None:
            before_replace(store, source.name)
        return run_reconcile(
            store, source, today=settings.today(), repair=repair, replace_source=replace_source
        )
