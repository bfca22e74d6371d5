"""`coffeeshop db upgrade` and `coffeeshop sample`: the schema, and a first look."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coffeeshop.cli.app import app, command_group, safe_url, setup
from coffeeshop.cli.inspect import tables
from coffeeshop.cli.options import DbOption
from coffeeshop.cli.text import HINTS
from coffeeshop.errors import SourceMismatch

db_app = command_group("db", "Manage the analysis database schema.")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create the tables, or migrate them to this version's schema.

    Example: coffeeshop db upgrade --db mysql+pymysql://root@127.0.0.1:3306/test
    """
    from coffeeshop.pipeline.facade import open_store

    settings = setup(db=db)
    with open_store(settings.db) as store:
        before, after = store.upgrade()
    typer.echo(
        f"schema version {before} -> {after}"
        if before != after
        else f"schema is up to date (version {after})"
    )


SAMPLE_DB = "sqlite:///sample.db"

SampleDbOption = Annotated[
    str,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of the database for the sample: one of its own (SQL_DSN and "
        "COFFEESHOP_DB are not used: they name your analysis database).",
    ),
]


@app.command()
def sample(db: SampleDbOption = SAMPLE_DB) -> None:
    """Sync the bundled sample receipts into a database of their own and print the tables.

    A second run finds the sample already synced and prints the tables again. A database
    that holds another source's receipts is refused (one source per database).

    Example: coffeeshop sample --db sqlite:///sample.db
    """
    from importlib import resources

    path = resources.files("coffeeshop") / "data" / "sample.jsonl"
    with resources.as_file(path) as sample_path:
        _run_sample(Path(sample_path), db)


def _run_sample(path: Path, db: str) -> None:
    from coffeeshop.pipeline.facade import sync_settings

    settings = setup(db=db)
    # The batch settings and the rest as for `sync`; the source is the bundled file.
    try:
        report = sync_settings(settings.model_copy(update={"source": str(path)}))
    except SourceMismatch:
        own = f"run `coffeeshop sample` (it uses {SAMPLE_DB}) or "
        if settings.db == SAMPLE_DB:
            own = ""
        raise SourceMismatch(
            f"the database {safe_url(settings.db)} holds the receipts of another source, and "
            f"the sample goes into a database of its own: {own}pass --db with a new database"
        ) from None
    typer.echo(
        f"synced the bundled sample into {safe_url(settings.db)}: {report.applied} applied, "
        + HINTS.complete(f"{report.quarantined} quarantined (see `coffeeshop quarantine`)")
    )
    tables(db=settings.db)
