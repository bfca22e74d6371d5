"""`coffeeshop generate`: realistic receipts to a JSONL file or a MongoDB collection."""

from __future__ import annotations

from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Annotated

import typer

from coffeeshop.cli.app import app, exit_if_signalled, setup, stop_signal
from coffeeshop.cli.options import MongoCollectionOption, MongoDatabaseOption, located
from coffeeshop.cli.text import printable
from coffeeshop.errors import ConfigError
from coffeeshop.redact import mask_url

if TYPE_CHECKING:
    from coffeeshop.config import Settings
    from coffeeshop.demo.generator import ReceiptGenerator
    from coffeeshop.signals import StopOnSignal


OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="JSONL file to write (- : standard output); an existing non-empty file needs "
        "--append or --overwrite.",
        show_default=False,
    ),
]
ToOption = Annotated[
    str | None,
    typer.Option("--to", help="A mongodb:// URI to insert into instead.", show_default=False),
]
AppendOption = Annotated[
    bool, typer.Option("--append", help="Add to the end of an existing --out file.")
]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing --out file.")
]


@app.command()
def generate(
    count: Annotated[int, typer.Option("--count", min=1, help="New receipts to write.")],
    out: OutOption = None,
    to: ToOption = None,
    database: MongoDatabaseOption = None,
    collection: MongoCollectionOption = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same receipts.")] = 0,
    stores: Annotated[int, typer.Option(min=1, help="Number of stores.")] = 20,
    days: Annotated[
        int, typer.Option(min=1, help="Days of history, ending now (today up to this moment).")
    ] = 365,
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="Receipts per second (live traffic).")
    ] = None,
    updates: Annotated[float, typer.Option(min=0, max=0.9, help="Share of updates.")] = 0.0,
    deletes: Annotated[float, typer.Option(min=0, max=0.9, help="Share of deletes.")] = 0.0,
    invalid: Annotated[float, typer.Option(min=0, max=0.9, help="Share of invalid lines.")] = 0.0,
    append: AppendOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Write realistic receipts in the original shape to a JSONL file or a MongoDB collection.

    With --rate the receipts are stamped with the current time and written steadily, as live
    traffic for `sync --follow`. An existing non-empty --out file is refused unless --append
    (add to it) or --overwrite (replace it) says which.

    Example: coffeeshop generate --count 100000 --out r.jsonl --seed 1
    """
    from coffeeshop.demo.generator import ReceiptGenerator

    settings = setup(**located(database=database, collection=collection))
    _check_target(out, to, append=append, overwrite=overwrite)
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
            zone=settings.zone(),  # COFFEESHOP_TIMEZONE: the zone of the API's "today"
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    with stop_signal().install() as stop:
        if to is not None:
            written, target = _to_mongo(to, settings, generator, count, rate, stop)
        else:
            assert out is not None
            written, target = _to_file(out, generator, count, rate, stop, append=not overwrite)
    typer.echo(printable(f"wrote {written:,} line(s) to {target}"), err=True)
    exit_if_signalled(stop)


def _check_target(out: Path | None, to: str | None, *, append: bool, overwrite: bool) -> None:
    """One target, and the file options only with a file (an existing one only with one)."""
    if (out is None) == (to is None):
        raise ConfigError("pass exactly one of --out FILE or --to mongodb://…")
    if append and overwrite:
        raise ConfigError("--append and --overwrite exclude each other")
    if to is not None and (append or overwrite):
        raise ConfigError("--append and --overwrite are for --out FILE")
    if out is not None:
        _check_existing(out, append=append, overwrite=overwrite)


def _to_mongo(
    uri: str,
    settings: Settings,
    generator: ReceiptGenerator,
    count: int,
    rate: float | None,
    stop: StopOnSignal,
) -> tuple[int, str]:
    from coffeeshop.sources import MONGODB, kind_of

    if kind_of(uri) is not MONGODB:
        raise ConfigError(f"--to takes a {MONGODB.uri_examples()} URI, got {mask_url(uri)!r}")
    from coffeeshop.sources.mongo import write_lines

    written = write_lines(
        uri,
        generator.iter_lines(count),
        database=settings.mongo_database,
        collection=settings.mongo_collection,
        rate=rate,
        stop=stop,
    )
    return written, f"{settings.mongo_database}.{settings.mongo_collection}"


def _to_file(
    out: Path,
    generator: ReceiptGenerator,
    count: int,
    rate: float | None,
    stop: StopOnSignal,
    *,
    append: bool,
) -> tuple[int, str]:
    from coffeeshop.demo.writer import write_jsonl

    to_stdout = str(out) == "-"
    try:
        written = write_jsonl(
            "/dev/stdout" if to_stdout else out,
            count,
            generator=generator,
            append=to_stdout or append,
            rate=rate,
            stop=stop,
        )
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
    return written, "standard output" if to_stdout else str(out)


def _check_existing(out: Path, *, append: bool, overwrite: bool) -> None:
    """An existing non-empty file is written only when the user said how: running the same
    line twice must not double the file (a sync would apply every receipt twice over)."""
    if str(out) == "-":
        return
    try:
        stat = out.stat()
    except OSError:
        return  # a new file (or one `_to_file` reports in one line)
    if not S_ISREG(stat.st_mode) or stat.st_size == 0:
        return
    if overwrite:
        typer.echo(f"--overwrite: replacing {out} ({stat.st_size:,} bytes)", err=True)
    elif not append:
        raise ConfigError(
            f"{out} already holds {stat.st_size:,} bytes; pass --append to add to it "
            "or --overwrite to replace it"
        )
