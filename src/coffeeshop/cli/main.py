"""The `coffeeshop` command: a thin shell over the library. Each command parses its
options, calls one function, and turns library errors into one clear line."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from coffeeshop.cli import dask as cli_dask
from coffeeshop.cli.options import (
    DbOption,
    MongoCollectionOption,
    MongoDatabaseOption,
    SourceOption,
)
from coffeeshop.cli.text import HINTS, HintFilter, mask_source, printable
from coffeeshop.errors import CoffeeshopError, ConfigError
from coffeeshop.redact import mask_text, mask_url

if TYPE_CHECKING:
    from coffeeshop.config import Settings
    from coffeeshop.store import Store

# Only what every command needs is imported here: `coffeeshop --help` must not pay for
# SQLAlchemy, pydantic, Prefect, FastAPI or PyMongo. Each command imports its own.

app = typer.Typer(
    help="Coffeeshop Analytics: receipts in, exact analytics tables out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich would add ~0.3 s to every `--help`
)
db_app = typer.Typer(
    help="Manage the analysis database schema.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(db_app, name="db")

log = logging.getLogger("coffeeshop")

WaitOption = Annotated[
    float,
    typer.Option("--wait", help="Seconds to wait for another writer to finish before giving up."),
]


def main() -> None:
    """Console-script entry point: library errors become one line and a non-zero exit."""
    try:
        app()
    except CoffeeshopError as exc:
        typer.echo(f"error: {HINTS.complete(mask_text(str(exc)))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


def _setup(**overrides: Any) -> Settings:
    from coffeeshop.config import load_settings

    settings = load_settings(**overrides)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    HINTS.db = _safe_url(settings.db)
    HINTS.source = mask_source(settings.source) if settings.source else None
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, HintFilter) for f in handler.filters):
            handler.addFilter(HintFilter(HINTS))
    return settings


def _refuse_csv(source: str | None) -> None:
    """A CSV export given as the source would have every line quarantined: say so instead."""
    if not source or source.startswith(("mongodb://", "mongodb+srv://")):
        return
    if not os.path.isfile(source):
        return  # missing, a FIFO (opening it would block), a device: the source's checks say so
    try:
        with open(source, "rb") as file:
            first = file.readline(4096).removeprefix(b"\xef\xbb\xbf").strip()
    except OSError:
        return  # the source's own checks report it
    if (
        first
        and first[:1] not in (b"{", b"[")
        and (b"," in first or b";" in first or b"\t" in first)
    ):
        line = printable(first[:80].decode(errors="replace"))
        raise ConfigError(
            f"{source} looks like CSV (its first line is {line!r}); "
            "the source is JSON lines: one receipt document per line, as mongoexport writes"
        )


def _store(url: str, *, read_only: bool = False) -> Store:
    from coffeeshop.store import Store

    return Store(url, read_only=read_only)


class _Stopped(threading.Event):
    """Set by SIGINT/SIGTERM; remembers which signal came first (exit status 128 + it)."""

    signum: int | None = None

    def exit_if_signalled(self) -> None:
        """After a clean stop: exit 130 (SIGINT) or 143 (SIGTERM), as shells expect, so that
        a script can tell an interrupted run from a finished one."""
        if self.signum is not None:
            raise typer.Exit(128 + self.signum)


def _stop_on_signals() -> _Stopped:
    stop = _Stopped()

    def handler(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping after the current batch", signal.Signals(signum).name)
        if stop.signum is None:
            stop.signum = signum
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


@app.command()
def sync(
    source: SourceOption = None,
    db: DbOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="Apply everything available, then exit (default).")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep tailing the source for new receipts.")
    ] = False,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Most events per batch, 1–100000 [env: COFFEESHOP_BATCH_SIZE; default 5000]",
            show_default=False,
        ),
    ] = None,
    batch_wait: Annotated[
        float | None,
        typer.Option(
            help="Most seconds a batch waits to fill [env: COFFEESHOP_BATCH_WAIT; default 0.2]",
            show_default=False,
        ),
    ] = None,
    wait: WaitOption = 0.0,
    database: MongoDatabaseOption = None,
    collection: MongoCollectionOption = None,
    full_document: Annotated[
        str | None,
        typer.Option(
            "--full-document",
            help="MongoDB: updateLookup (default) or whenAvailable (post-images, MongoDB 6.0+) "
            "[env: COFFEESHOP_FULL_DOCUMENT]",
            show_default=False,
        ),
    ] = None,
    on_history_lost: Annotated[
        str | None,
        typer.Option(
            "--on-history-lost",
            help="MongoDB: when the change stream cannot resume, `rebuild` from a fresh "
            "snapshot (default) or `stop` [env: COFFEESHOP_ON_HISTORY_LOST]",
            show_default=False,
        ),
    ] = None,
    backfill_workers: cli_dask.BackfillWorkersOption = None,
) -> None:
    """Apply receipt changes from a source to the analysis tables.

    A MongoDB source is read as a snapshot of the collection, then its change stream
    (a replica set is needed; a standalone server is polled for new documents only).

    Example: coffeeshop sync --source receipts.jsonl --db sqlite:///analysis.db --follow
    """
    if once and follow:
        raise ConfigError("--once and --follow exclude each other")
    settings = _setup(
        source=source,
        db=db,
        batch_size=batch_size,
        batch_wait=batch_wait,
        mongo_database=database,
        mongo_collection=collection,
        full_document=full_document,
        on_history_lost=on_history_lost,
    )
    _refuse_csv(settings.source)
    from coffeeshop.pipeline.engine import Syncer
    from coffeeshop.sources.base import BatchLimits

    if backfill_workers and (built := cli_dask.backfill(settings, workers=backfill_workers)):
        typer.echo(f"backfill: {built.receipts} receipt(s) from partitions on Dask", err=True)
    stop = _stop_on_signals()
    with _store(settings.db) as store:
        syncer = Syncer(
            store,
            settings.open_source(),
            limits=BatchLimits(settings.batch_size, settings.batch_wait, settings.poll_interval),
            today=settings.today,
            rebuild_on_history_lost=settings.on_history_lost == "rebuild",
        )
        report = syncer.run(follow=follow, stop=stop, wait_lock=wait)
    typer.echo(
        f"synced {report.events} event(s) in {report.batches} batch(es): {report.applied} applied, "
        f"{report.quarantined} quarantined, {report.skipped} skipped "
        f"({report.seconds:.2f} s, {report.rate():,.0f} events/s)",
        err=True,
    )
    stop.exit_if_signalled()


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
    settings = _setup(source=source, db=db, mongo_database=database, mongo_collection=collection)
    _refuse_csv(settings.source)
    on_dask = cli_dask.wanted(workers, dask_address)
    if on_dask is not None and replace_source:
        raise ConfigError("--replace-source runs in one process: drop --workers/--dask-address")
    if on_dask is not None:
        report = cli_dask.reconcile(settings, repair=repair, workers=on_dask[0], address=on_dask[1])
    else:
        from coffeeshop.pipeline.reconcile import reconcile as run_reconcile

        the_source = settings.open_source()
        with _store(settings.db, read_only=not repair) as store:
            if replace_source:
                _announce_replacement(store, the_source.name)
            report = run_reconcile(
                store,
                the_source,
                today=settings.today(),
                repair=repair,
                replace_source=replace_source,
            )
        recorded = report.recorded_sources
        if recorded and the_source.name not in recorded and not report.repaired:
            typer.echo(
                f"note: the database was synced from {', '.join(recorded)}, "
                f"not from {the_source.name}",
                err=True,
            )
    for difference in report.differences:
        typer.echo(str(difference))
    for table, count in sorted(report.counts.items()):
        typer.echo(f"{table}: {count} difference(s)")
    typer.echo(
        f"reconcile: {report.total_differences} difference(s); the source has {report.receipts} "
        f"valid receipt(s) and {report.quarantined} quarantined input(s)"
        + ("; repaired" if report.repaired else "")
    )
    if report.total_differences and not report.repaired:
        raise typer.Exit(1)


def _announce_replacement(store: Store, source: str) -> None:
    """Before `--replace-source` removes anything: what it will remove (stderr)."""
    store.upgrade()
    held = store.holdings()
    others = [name for name in held.sources if name != source]
    if not others:
        typer.echo(
            f"--replace-source: the database {store.safe_url} holds no other source's "
            f"receipts; a plain repair from {source}",
            err=True,
        )
        return
    typer.echo(
        f"--replace-source: removing from {store.safe_url} the {held.receipts:,} receipt(s) "
        f"and {held.quarantined:,} quarantine entr{'y' if held.quarantined == 1 else 'ies'} of "
        f"{', '.join(others)}, then rebuilding from {source}",
        err=True,
    )


@app.command()
def quarantine(
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="Most entries to list.", min=1)] = 50,
    offset: Annotated[int, typer.Option(help="Entries to skip.", min=0)] = 0,
    raw: Annotated[bool, typer.Option("--raw", help="Also print each entry's raw input.")] = False,
) -> None:
    """List quarantined input: what was wrong, where it came from, and (with --raw) the input.

    Example: coffeeshop quarantine --db sqlite:///analysis.db --raw
    """
    settings = _setup(db=db)
    with _store(settings.db, read_only=True) as store:
        store.require_schema()
        rows = store.quarantine_rows(limit=limit, offset=offset)
        total = store.count(_schema().quarantine)
    for row in rows:
        receipt = f"receipt {row['receipt_id']}" if row["receipt_id"] else "unreadable input"
        typer.echo(
            printable(f"#{row['id']} {row['source']} {row['position']}: {receipt}: {row['reason']}")
        )
        if raw:
            typer.echo(f"    {printable(str(row['raw']))}")
    typer.echo(
        f"{total} quarantined entr{'y' if total == 1 else 'ies'}"
        + (f" (showing {len(rows)})" if len(rows) < total else "")
    )


class TableFormat(StrEnum):
    TEXT = "text"
    CSV = "csv"
    JSON = "json"


@app.command()
def tables(
    db: DbOption = None,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1, help="Most rows per table (the newest or largest first).", show_default=False
        ),
    ] = None,
    output: Annotated[
        TableFormat,
        typer.Option(
            "--format",
            help="text (aligned, for people), csv or json (for scripts; decimals as strings).",
        ),
    ] = TableFormat.TEXT,
) -> None:
    """Print the four analytics tables.

    Example: coffeeshop tables --db sqlite:///analysis.db --limit 10 --format csv
    """
    settings = _setup(db=db)
    with _store(settings.db, read_only=True) as store:
        store.require_schema()
        summaries = store.summary_rows()
        current = store.read_tables()
    contents = {
        "receipts_summary": (
            ["as_of", "spend_per_rcpt", "items_per_rcpt", "this_week_sales", "last_week_sales"],
            [
                [r.as_of, r.spend_per_rcpt, r.items_per_rcpt, r.this_week_sales, r.last_week_sales]
                for r in sorted(summaries, key=lambda r: r.as_of, reverse=limit is not None)
            ],
        ),
        "store_monthly": (
            ["month", "store_id", "sales"],
            [
                [m, s, v]
                for (m, s), v in sorted(current.store_monthly.items(), reverse=limit is not None)
            ],
        ),
        "item_performance": (
            ["item_name", "total_sold"],
            [
                [n, v]
                for n, v in sorted(current.item_performance.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
        ),
        "store_peak_hours": (
            ["store_id", "peak_hour", "tx_count"],
            [[s, h, n] for s, (h, n) in sorted(current.store_peak_hours.items())],
        ),
    }
    if output is TableFormat.JSON:
        import json

        typer.echo(
            json.dumps(
                {
                    name: [
                        dict(zip(header, map(_json_value, row), strict=True))
                        for row in rows[:limit]
                    ]
                    for name, (header, rows) in contents.items()
                },
                ensure_ascii=True,  # control characters in names arrive escaped
                indent=1,
            )
        )
        return
    for name, (header, rows) in contents.items():
        if output is TableFormat.CSV:
            _print_csv(name, header, rows[:limit])
        else:
            _print_table(name, header, rows[:limit], total=len(rows))


def _json_value(value: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _print_csv(name: str, header: list[str], rows: list[list[Any]]) -> None:
    """One CSV block per table: a `table` column first, so the blocks can be concatenated."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["table", *header])
    writer.writerows([name, *(printable(str(v)) for v in row)] for row in rows)
    typer.echo(buffer.getvalue(), nl=False)


def _print_table(
    name: str, header: list[str], rows: list[list[Any]], *, total: int | None = None
) -> None:
    cells = [header] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [
        bool(rows) and all(isinstance(row[i], int | Decimal) for row in rows)
        for i in range(len(header))
    ]
    total = len(rows) if total is None else total
    shown = f", showing {len(rows)}" if len(rows) < total else ""
    typer.echo(f"\n{name} ({total} row{'s' if total != 1 else ''}{shown})")
    for n, row in enumerate(cells):
        typer.echo(
            "  ".join(
                c.rjust(w) if numeric[i] else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            typer.echo("  ".join("-" * w for w in widths))


def _cell(value: Any) -> str:
    return printable(str(value))


@app.command()
def generate(
    count: Annotated[int, typer.Option("--count", min=1, help="New receipts to write.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="JSONL file to append to (- : standard output).", show_default=False
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="A mongodb:// URI to insert into instead.", show_default=False),
    ] = None,
    database: MongoDatabaseOption = None,
    collection: MongoCollectionOption = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same receipts.")] = 0,
    stores: Annotated[int, typer.Option(min=1, help="Number of stores.")] = 20,
    days: Annotated[int, typer.Option(min=1, help="Days of history, ending today.")] = 365,
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="Receipts per second (live traffic).")
    ] = None,
    updates: Annotated[float, typer.Option(min=0, max=0.9, help="Share of updates.")] = 0.0,
    deletes: Annotated[float, typer.Option(min=0, max=0.9, help="Share of deletes.")] = 0.0,
    invalid: Annotated[float, typer.Option(min=0, max=0.9, help="Share of invalid lines.")] = 0.0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the file.")] = False,
) -> None:
    """Write realistic receipts in the original shape to a JSONL file or a MongoDB collection.

    With --rate the receipts are stamped with the current time and written steadily, as live
    traffic for `sync --follow`. Example: coffeeshop generate --count 100000 --out r.jsonl --seed 1
    """
    from coffeeshop.demo.generator import ReceiptGenerator, write_jsonl

    settings = _setup(mongo_database=database, mongo_collection=collection)
    if (out is None) == (to is None):
        raise ConfigError("pass exactly one of --out FILE or --to mongodb://…")
    try:
        generator = ReceiptGenerator(
            seed=seed,
            stores=stores,
            days=days,
            update_share=updates,
            delete_share=deletes,
            invalid_share=invalid,
            live=rate is not None,
            ids_until_now=to is not None,  # MongoDB: no _id from the future (polling)
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    stop = _stop_on_signals()
    if to is not None:
        if not to.startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError(
                f"--to takes a mongodb:// or mongodb+srv:// URI, got {mask_url(to)!r}"
            )
        from coffeeshop.sources.mongo import write_lines

        written = write_lines(
            to,
            generator.iter_lines(count),
            database=settings.mongo_database,
            collection=settings.mongo_collection,
            rate=rate,
            stop=stop,
        )
        target = f"{settings.mongo_database}.{settings.mongo_collection}"
    else:
        assert out is not None
        to_stdout = str(out) == "-"
        try:
            written = write_jsonl(
                "/dev/stdout" if to_stdout else out,
                count,
                generator=generator,
                append=to_stdout or not overwrite,
                rate=rate,
                stop=stop,
            )
        except OSError as exc:
            raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
        target = "standard output" if to_stdout else str(out)
    typer.echo(f"wrote {written:,} line(s) to {target}", err=True)
    stop.exit_if_signalled()


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create the tables, or migrate them to this version's schema.

    Example: coffeeshop db upgrade --db mysql+pymysql://root@127.0.0.1:3306/test
    """
    settings = _setup(db=db)
    with _store(settings.db) as store:
        before, after = store.upgrade()
    typer.echo(
        f"schema version {before} -> {after}"
        if before != after
        else f"schema is up to date (version {after})"
    )


@app.command()
def sample(
    db: DbOption = None,
) -> None:
    """Sync the bundled sample receipts into the database and print the tables.

    Example: coffeeshop sample --db sqlite:///analysis.db
    """
    from importlib import resources

    path = resources.files("coffeeshop") / "data" / "sample.jsonl"
    with resources.as_file(path) as sample_path:
        _run_sample(Path(sample_path), db)


def _run_sample(path: Path, db: str | None) -> None:
    settings = _setup(db=db)
    from coffeeshop.pipeline.engine import Syncer
    from coffeeshop.sources.jsonl import JsonlSource

    with _store(settings.db) as store:
        report = Syncer(store, JsonlSource(path), today=settings.today).run()
    typer.echo(
        f"synced the bundled sample into {_safe_url(settings.db)}: {report.applied} applied, "
        + HINTS.complete(f"{report.quarantined} quarantined (see `coffeeshop quarantine`)")
    )
    tables(db=settings.db)


def _safe_url(url: str) -> str:
    from coffeeshop.store import normalize_url

    return mask_url(normalize_url(url))


def _schema() -> Any:
    from coffeeshop.store import schema

    return schema


# -- command groups that live in their own modules ---------------------------------------------
from coffeeshop.cli.api import serve  # noqa: E402

app.command()(serve)
from coffeeshop.cli.flows import flows_app  # noqa: E402

app.add_typer(flows_app, name="flows")
from coffeeshop.cli.demo import demo  # noqa: E402

app.command()(demo)
