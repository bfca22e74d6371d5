"""`coffeeshop flows …`: the Prefect flows from the command line, a thin shell over
`coffeeshop.orchestration` (flows, deployments, server).

Prefect is imported only when one of these commands runs (importing it takes seconds, and the
other commands should not pay for that), and only after the options were checked: bad
configuration is one line on stderr and exit status 2 before any flow run exists.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from coffeeshop.cli import dask as cli_dask
from coffeeshop.cli.app import command_group
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
from coffeeshop.signals import exit_on_sigterm

if TYPE_CHECKING:
    from coffeeshop.config import Settings

flows_app = command_group(
    "flows", "Prefect flows over the engine: run one once, or serve them all on schedules."
)


class FlowName(StrEnum):
    SYNC = "sync"
    RECONCILE = "reconcile"
    REFRESH_SUMMARY = "refresh-summary"


@flows_app.command("run")
def run(
    name: Annotated[FlowName, typer.Argument(help="The flow to run.", show_default=False)],
    source: SourceOption = None,
    db: DbOption = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="reconcile: rebuild the tables when they differ.")
    ] = False,
    follow: FollowOption = False,  # sync only
    wait: WaitOption = 0.0,  # sync only
    port: Annotated[
        int,
        typer.Option(
            help="Without PREFECT_API_URL, and no `flows serve` of this database running: "
            "a Prefect server already running on 127.0.0.1:PORT is used; else Prefect starts "
            "a temporary one."
        ),
    ] = 4200,
    database: MongoDatabaseOption = None,
    collection: MongoCollectionOption = None,
) -> None:
    """Run one flow once, in this process, recorded in the Prefect API: PREFECT_API_URL, else
    the Prefect server of a `coffeeshop flows serve` of the same database, else a Prefect
    server running on 127.0.0.1:--port, else a temporary one Prefect starts (seconds to
    minutes on a busy machine: PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, default 180).

    sync: applies everything the source holds and exits, like `coffeeshop sync --once`.
    reconcile: recomputes the tables from the source and compares (exit status 1 on differences).
    With --repair it rebuilds what differs, in one transaction (safe while a sync runs).
    refresh-summary: writes today's receipts_summary row.
    Example: coffeeshop flows run sync --source receipts.jsonl --db sqlite:///analysis.db
    """
    # SIGTERM exits through Python, so that the temporary Prefect API or the local Prefect
    # server this process started is stopped (a flow run hands SIGTERM on when it is done).
    exit_on_sigterm()
    if repair and name is not FlowName.RECONCILE:
        raise ConfigError("--repair applies to `flows run reconcile` only")
    if follow and name is not FlowName.SYNC:
        raise ConfigError("--follow applies to `flows run sync` only")
    if name is FlowName.RECONCILE:
        cli_dask.wanted(None, None)  # COFFEESHOP_DASK_*: checked, the extra installed
    settings = _prepare(
        with_source=name is not FlowName.REFRESH_SUMMARY,
        connect=True,
        **located(source, db, database, collection),
    )
    from coffeeshop.orchestration import flows, server
    from coffeeshop.orchestration.home import home_of

    home = home_of(settings.db)
    with server.run_api(port=port, home=home), server.one_line_prefect_errors():
        if name is FlowName.SYNC:
            _echo_sync(flows.sync_flow(follow=follow, wait_lock=wait))
        elif name is FlowName.RECONCILE:
            _echo_reconcile(flows.reconcile_flow(repair=repair))
        else:
            row = flows.refresh_summary_flow()
            typer.echo("receipts_summary " + ", ".join(f"{k}={v}" for k, v in row.items()))


@flows_app.command("serve")
def serve(
    source: SourceOption = None,
    db: DbOption = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="The nightly reconcile also rebuilds what differs.")
    ] = False,
    reconcile_cron: Annotated[
        str, typer.Option(help="When the reconcile runs (cron, local time).")
    ] = "0 3 * * *",
    summary_cron: Annotated[
        str, typer.Option(help="When today's summary row is written (cron, local time).")
    ] = "1 0 * * *",
    stream: Annotated[
        bool, typer.Option(help="Start the sync stream (off: another process syncs).")
    ] = True,
    port: Annotated[
        int, typer.Option(help="Port of the local Prefect server (without PREFECT_API_URL).")
    ] = 4200,
    database: MongoDatabaseOption = None,
    collection: MongoCollectionOption = None,
) -> None:
    """Register the three deployments and serve them in this process until Ctrl-C or SIGTERM.

    sync/stream follows the source: no schedule; started at once, it runs until stopped.
    reconcile/nightly runs at 03:00 and refresh-summary/daily at 00:01, local time.
    Local time is COFFEESHOP_TIMEZONE, by default this machine's zone.
    Schedules need a Prefect server: PREFECT_API_URL, else one started on 127.0.0.1:--port.
    Stopping cancels the runs in flight; the stream stops after the batch in hand.
    Example: coffeeshop flows serve --source receipts.jsonl --db sqlite:///analysis.db
    """
    exit_on_sigterm()
    cli_dask.wanted(None, None)  # the nightly reconcile on Dask: checked now, not at 03:00
    settings = _prepare(
        with_source=True,
        connect=False,
        **located(source, db, database, collection),
    )
    from coffeeshop.orchestration import deployments, server

    with server.one_line_prefect_errors():
        deployments.serve_flows(
            settings,
            repair=repair,
            reconcile_cron=reconcile_cron,
            summary_cron=summary_cron,
            stream=stream,
            port=port,
        )


class DeploymentName(StrEnum):
    """The deployments `flows serve` serves (`orchestration.deployments`)."""

    STREAM = "sync/stream"
    NIGHTLY = "reconcile/nightly"
    DAILY = "refresh-summary/daily"


@flows_app.command("trigger")
def trigger(
    name: Annotated[
        DeploymentName, typer.Argument(help="The deployment to run now.", show_default=False)
    ],
    db: DbOption = None,
    api: Annotated[
        str | None,
        typer.Option(
            "--api",
            help="The Prefect API serving it (default: PREFECT_API_URL, else the server of "
            "the `flows serve` of --db).",
        ),
    ] = None,
) -> None:
    """Ask for a run of a served deployment now; the `flows serve` process serving it runs it
    (a run of the same deployment in flight goes first). Prints the run's id and UI page.

    Without --api and PREFECT_API_URL, the Prefect server the `flows serve` of this database
    started is found by the database (--db, as given to `flows serve`).
    Example: coffeeshop flows trigger reconcile/nightly --db sqlite:///analysis.db
    """
    from coffeeshop.config import load_settings
    from coffeeshop.orchestration.home import home_of
    from coffeeshop.orchestration.settings import configure

    settings = load_settings(db=db)
    home = home_of(settings.db)
    configure()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from coffeeshop.orchestration import deployments, server

    if api and not server.healthy(api):
        raise server.PrefectUnavailable(f"the Prefect API at {api} (--api) does not answer")
    url = api or server.check_api() or server.served_api(home)
    if url is None:
        raise ConfigError(
            f"no `coffeeshop flows serve` of {home.database} is running (none recorded in "
            f"{home.path}): start it, or give --api (or PREFECT_API_URL)"
        )
    with temporary_settings(updates={PREFECT_API_URL: url}), server.one_line_prefect_errors():
        run_id, page = deployments.trigger(name.value, url)
    typer.echo(f"flow run {run_id} of {name.value}: {page}")


def _prepare(*, with_source: bool, connect: bool, **options: str | None) -> Settings:
    """Check the settings (and, with `connect`, the database) before Prefect starts, then hand
    them to the flows through the environment: flow parameters are stored in the Prefect
    database, and a database URL or a MongoDB URI may hold a password. Last, Prefect's
    defaults, before Prefect is first imported."""
    from coffeeshop.config import load_settings
    from coffeeshop.orchestration.settings import configure
    from coffeeshop.sources import portable_spec
    from coffeeshop.store import Store

    settings = load_settings(**options)
    if with_source:
        settings.open_source()
    with Store(settings.db) as store:
        if connect:
            store.check()
    os.environ["COFFEESHOP_DB"] = settings.db
    if settings.source:
        os.environ["COFFEESHOP_SOURCE"] = portable_spec(settings.source)
    os.environ["COFFEESHOP_MONGO_DATABASE"] = settings.mongo_database
    os.environ["COFFEESHOP_MONGO_COLLECTION"] = settings.mongo_collection
    configure()
    return settings


def _echo_sync(result: dict[str, Any]) -> None:
    seconds = result["seconds"]
    rate = result["events"] / seconds if seconds > 0 else 0.0
    typer.echo(
        f"synced {result['events']} event(s) in {result['batches']} batch(es): "
        f"{result['applied']} applied, {result['quarantined']} quarantined, "
        f"{result['skipped']} skipped ({seconds:.2f} s, {rate:,.0f} events/s)",
        err=True,
    )


def _echo_reconcile(summary: dict[str, Any]) -> None:
    typer.echo(
        f"reconcile: {summary['differences']} difference(s); the source has "
        f"{summary['receipts']} valid receipt(s) and {summary['quarantined']} quarantined "
        "input(s)" + ("; repaired" if summary["repaired"] else "")
    )
