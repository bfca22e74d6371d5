"""`coffeeshop reconcile`: recompute the tables from the whole source and compare."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from coffeeshop.cli import dask as cli_dask
from coffeeshop.cli.app import app, refuse_csv, setup
from coffeeshop.cli.options import (
    DbOption,
    MongoCollectionOption,
    MongoDatabaseOption,
    SourceOption,
    located,
)
from coffeeshop.cli.text import printable
from coffeeshop.errors import ConfigError

if TYPE_CHECKING:
    from coffeeshop.config import Settings
    from coffeeshop.pipeline.reconcile import ReconcileReport
    from coffeeshop.store import Store


@app.command()
def reconcile(
    source: SourceOption = None,
    db: DbOption = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair", help="Make the tables right, in one transaction (safe while sync runs)."
        ),
    ] = False,
    replace_source: Annotated[
        bool,
        typer.Option(
            "--replace-source",
            help="With --repair: the database holds another source's receipts; remove them "
            "and rebuild from this source (says what it removes first).",
        ),
    ] = False,
    database: MongoDatabaseOption = None,
    collection: MongoCollectionOption = None,
    workers: cli_dask.WorkersOption = None,
    dask_address: cli_dask.DaskAddressOption = None,
) -> None:
    """Recompute the tables from the whole source and report every difference.

    Exit status 1 when there are differences (0 after a successful --repair). Without
    --repair nothing is written: a missing database or one without the tables is an error.
    Example: coffeeshop reconcile --source receipts.jsonl --db sqlite:///analysis.db --repair
    """
    if replace_source and not repair:
        raise ConfigError("--replace-source replaces the database's source: it needs --repair")
    settings = setup(**located(source, db, database, collection))
    refuse_csv(settings.source)
    on_dask = cli_dask.wanted(workers, dask_address)
    if on_dask is not None and replace_source:
        raise ConfigError("--replace-source runs in one process: drop --workers/--dask-address")
    if on_dask is not None:
        report = cli_dask.reconcile(settings, repair=repair, workers=on_dask[0], address=on_dask[1])
    else:
        report = _in_one_process(settings, repair=repair, replace_source=replace_source)
    _print_report(report)
    if report.total_differences and not report.repaired:
        raise typer.Exit(1)


def _in_one_process(settings: Settings, *, repair: bool, replace_source: bool) -> ReconcileReport:
    from coffeeshop.pipeline.facade import reconcile_settings

    report = reconcile_settings(
        settings, repair=repair, replace_source=replace_source, before_replace=_announce
    )
    recorded = report.recorded_sources
    name = settings.open_source().name
    if recorded and name not in recorded and not report.repaired:
        typer.echo(
            printable(f"note: the database was synced from {', '.join(recorded)}, not from {name}"),
            err=True,
        )
    return report


def _print_report(report: ReconcileReport) -> None:
    for difference in report.differences:
        typer.echo(printable(str(difference)))  # (item names, receipt ids: input text)
    for table, count in sorted(report.counts.items()):
        typer.echo(f"{table}: {count} difference(s)")
    typer.echo(
        f"reconcile: {report.total_differences} difference(s); the source has {report.receipts} "
        f"valid receipt(s) and {report.quarantined} quarantined input(s)"
        + ("; repaired" if report.repaired else "")
    )


def _announce(store: Store, source: str) -> None:
    """Before `--replace-source` removes anything: what it will remove (stderr)."""
    store.upgrade()
    held = store.holdings()
    others = [name for name in held.sources if name != source]
    if not others:
        typer.echo(
            printable(
                f"--replace-source: the database {store.safe_url} holds no other source's "
                f"receipts; a plain repair from {source}"
            ),
            err=True,
        )
        return
    typer.echo(
        printable(
            f"--replace-source: removing from {store.safe_url} {held.removal} of "
            f"{', '.join(others)}, then rebuilding from {source}"
        ),
        err=True,
    )
