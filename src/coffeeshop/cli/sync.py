"""`coffeeshop sync`: apply a source's receipt changes to the tables."""

from __future__ import annotations

from typing import Annotated

import typer

from coffeeshop.cli import dask as cli_dask
from coffeeshop.cli.app import app, exit_if_signalled, refuse_csv, setup, stop_signal
from coffeeshop.cli.options import (
    DbOption,
    FollowOption,
    MongoCollectionOption,
    MongoDatabaseOption,
    SourceOption,
    WaitOption,
    located,
)
from coffeeshop.errors import ConfigError

BatchSizeOption = Annotated[
    int | None,
    typer.Option(
        help="Most events per batch, 1–100000 [env: COFFEESHOP_BATCH_SIZE; default 5000]",
        show_default=False,
    ),
]
BatchWaitOption = Annotated[
    float | None,
    typer.Option(
        help="Most seconds a batch waits to fill [env: COFFEESHOP_BATCH_WAIT; default 0.2]",
        show_default=False,
    ),
]
FullDocumentOption = Annotated[
    str | None,
    typer.Option(
        "--full-document",
        help="MongoDB: updateLookup (default) or whenAvailable (post-images, MongoDB 6.0+) "
        "[env: COFFEESHOP_FULL_DOCUMENT]",
        show_default=False,
    ),
]
WaitForCollectionOption = Annotated[
    bool | None,
    typer.Option(
        "--wait-for-collection",
        help="MongoDB: wait for the collection to be created instead of refusing a "
        "namespace that does not exist [env: COFFEESHOP_WAIT_FOR_COLLECTION]",
        show_default=False,
    ),
]
OnHistoryLostOption = Annotated[
    str | None,
    typer.Option(
        "--on-history-lost",
        help="MongoDB: when the change stream cannot resume, `rebuild` from a fresh "
        "snapshot (default) or `stop` [env: COFFEESHOP_ON_HISTORY_LOST]",
        show_default=False,
    ),
]


@app.command()
def sync(
    source: SourceOption = None,
    db: DbOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="Apply everything available, then exit (default).")
    ] = False,
    follow: FollowOption = False,
    batch_size: BatchSizeOption = None,
    batch_wait: BatchWaitOption = None,
    wait: WaitOption = 0.0,
    database: MongoDatabaseOption = None,
    collection: MongoCollectionOption = None,
    full_document: FullDocumentOption = None,
    on_history_lost: OnHistoryLostOption = None,
    wait_for_collection: WaitForCollectionOption = None,
    backfill_workers: cli_dask.BackfillWorkersOption = None,
    dask_address: cli_dask.BackfillAddressOption = None,
) -> None:
    """Apply receipt changes from a source to the analysis tables.

    A MongoDB source is read as a snapshot of the collection, then its change stream
    (on a replica set). A standalone server has no change stream and is polled: new
    documents are read within the poll interval, updates and deletes by a read of the
    whole collection every 5 minutes; deletes made while no sync runs are seen only by
    `coffeeshop reconcile --repair`.

    Example: coffeeshop sync --source receipts.jsonl --db sqlite:///analysis.db --follow
    """
    if once and follow:
        raise ConfigError("--once and --follow exclude each other")
    settings = setup(
        **located(source, db, database, collection),
        batch_size=batch_size,
        batch_wait=batch_wait,
        full_document=full_document,
        on_history_lost=on_history_lost,
        wait_for_collection=wait_for_collection,
    )
    refuse_csv(settings.source)
    from coffeeshop.pipeline.facade import sync_settings

    on_dask = cli_dask.wanted(backfill_workers, dask_address, workers_option="--backfill-workers")
    if on_dask is not None and (
        built := cli_dask.backfill(settings, workers=on_dask[0], address=on_dask[1])
    ):
        typer.echo(f"backfill: {built.receipts} receipt(s) from partitions on Dask", err=True)
    with stop_signal().install() as stop:
        report = sync_settings(settings, follow=follow, stop=stop, wait_lock=wait)
    typer.echo(
        f"synced {report.events} event(s) in {report.batches} batch(es): {report.applied} applied, "
        f"{report.quarantined} quarantined, {report.skipped} skipped "
        f"({report.seconds:.2f} s, {report.rate():,.0f} events/s)",
        err=True,
    )
    exit_if_signalled(stop)
