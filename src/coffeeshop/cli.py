"""The `coffeeshop` command: a thin shell over the library. Each command parses its
options, calls one function, and turns library errors into one clear line."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from coffeeshop.cli_options import (
    DbOption,
    MongoCollectionOption,
    MongoDatabaseOption,
    SourceOption,
)
from coffeeshop.config import Settings, load_settings
from coffeeshop.errors import CoffeeshopError, ConfigError
from coffeeshop.redact import mask_text, mask_url
from coffeeshop.sources.base import BatchLimits
from coffeeshop.store import Store

app = typer.Typer(
    help="Coffeeshop Analytics: receipts in, exact analytics tables out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Manage the analysis database schema.", no_args_is_help=True)
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
        typer.echo(f"error: {mask_text(str(exc))}", err=True)  # masked where made; once more
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


def _setup(**overrides: Any) -> Settings:
    settings = load_settings(**overrides)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    return settings


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping after the current batch", signal.Signals(signum).name)
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
        int | None, typer.Option(help="Most events per batch [env: COFFEESHOP_BATCH_SIZE].")
    ] = None,
    batch_wait: Annotated[
        float | None,
        typer.Option(help="Most seconds a batch waits to fill [env: COFFEESHOP_BATCH_WAIT]."),
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
    from coffeeshop.engine import Syncer

    stop = _stop_on_signals()
    with Store(settings.db) as store:
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
) -> None:
    """Recompute the tables from the whole source and report every difference.

    Exit status 1 when there are differences (0 after a successful --repair). Without
    --repair nothing is written: a missing database or one without the tables is an error.
    Example: coffeeshop reconcile --source receipts.jsonl --db sqlite:///analysis.db --repair
    """
    if replace_source and not repair:
        raise ConfigError("--replace-source replaces the database's source: it needs --repair")
    settings = _setup(source=source, db=db, mongo_database=database, mongo_collection=collection)
    from coffeeshop.reconcile import reconcile as run_reconcile

    the_source = settings.open_source()
    with Store(settings.db, read_only=not repair) as store:
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
            f"note: the database was synced from {', '.join(recorded)}, not from {the_source.name}",
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
    with Store(settings.db, read_only=True) as store:
        store.require_schema()
        rows = store.quarantine_rows(limit=limit, offset=offset)
        total = store.count(_schema().quarantine)
    for row in rows:
        receipt = f"receipt {row['receipt_id']}" if row["receipt_id"] else "unreadable input"
        typer.echo(f"#{row['id']} {row['source']} {row['position']}: {receipt}: {row['reason']}")
        if raw:
            typer.echo(f"    {row['raw']}")
    typer.echo(
        f"{total} quarantined entr{'y' if total == 1 else 'ies'}"
        + (f" (showing {len(rows)})" if len(rows) < total else "")
    )


@app.command()
def tables(db: DbOption = None) -> None:
    """Print the four analytics tables.

    Example: coffeeshop tables --db sqlite:///analysis.db
    """
    settings = _setup(db=db)
    with Store(settings.db, read_only=True) as store:
        store.require_schema()
        summaries = store.summary_rows()
        current = store.read_tables()
    _print_table(
        "receipts_summary",
        ["as_of", "spend_per_rcpt", "items_per_rcpt", "this_week_sales", "last_week_sales"],
        [
            [r.as_of, r.spend_per_rcpt, r.items_per_rcpt, r.this_week_sales, r.last_week_sales]
            for r in summaries
        ],
    )
    _print_table(
        "store_monthly",
        ["month", "store_id", "sales"],
        [[m, s, v] for (m, s), v in sorted(current.store_monthly.items())],
    )
    _print_table(
        "item_performance",
        ["item_name", "total_sold"],
        [
            [n, v]
            for n, v in sorted(current.item_performance.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    )
    _print_table(
        "store_peak_hours",
        ["store_id", "peak_hour", "tx_count"],
        [[s, h, n] for s, (h, n) in sorted(current.store_peak_hours.items())],
    )


def _print_table(name: str, header: list[str], rows: list[list[Any]]) -> None:
    cells = [header] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [
        bool(rows) and all(isinstance(row[i], int | Decimal) for row in rows)
        for i in range(len(header))
    ]
    typer.echo(f"\n{name} ({len(rows)} row{'s' if len(rows) != 1 else ''})")
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
    return str(value)


@app.command()
def generate(
    count: Annotated[int, typer.Option("--count", min=1, help="New receipts to write.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="JSONL file to append to.", show_default=False)
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
    from coffeeshop.generator import ReceiptGenerator, write_jsonl

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
        try:
            written = write_jsonl(
                out, count, generator=generator, append=not overwrite, rate=rate, stop=stop
            )
        except OSError as exc:
            raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
        target = str(out)
    typer.echo(f"wrote {written:,} line(s) to {target}", err=True)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create the tables, or migrate them to this version's schema.

    Example: coffeeshop db upgrade --db mysql+pymysql://root@127.0.0.1:3306/test
    """
    settings = _setup(db=db)
    with Store(settings.db) as store:
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
    path = resources.files("coffeeshop") / "data" / "sample.jsonl"
    with resources.as_file(path) as sample_path:
        _run_sample(Path(sample_path), db)


def _run_sample(path: Path, db: str | None) -> None:
    settings = _setup(db=db)
    from coffeeshop.engine import Syncer
    from coffeeshop.sources.jsonl import JsonlSource

    with Store(settings.db) as store:
        report = Syncer(store, JsonlSource(path), today=settings.today).run()
    typer.echo(
        f"synced the bundled sample into {_safe_url(settings.db)}: {report.applied} applied, "
        f"{report.quarantined} quarantined (see `coffeeshop quarantine`)"
    )
    tables(db=settings.db)


def _safe_url(url: str) -> str:
    from coffeeshop.store import normalize_url

    return mask_url(normalize_url(url))


def _schema() -> Any:
    from coffeeshop.store import schema

    return schema


# -- command groups that live in their own modules ---------------------------------------------
from coffeeshop.cli_api import serve  # noqa: E402

app.command()(serve)
from coffeeshop.cli_flows import flows_app  # noqa: E402

app.add_typer(flows_app, name="flows")
from coffeeshop.cli_demo import demo  # noqa: E402

app.command()(demo)
