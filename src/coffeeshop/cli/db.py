"""`coffeeshop db upgrade` and `coffeeshop sample`: the schema, and a first look."""

from __future__ import annotations

from pathlib import Path

import typer

from coffeeshop.cli.app import QuickHelpGroup, app, safe_url, setup
from coffeeshop.cli.inspect import tables
from coffeeshop.cli.options import DbOption
from coffeeshop.cli.text import HINTS

db_app = typer.Typer(
    cls=QuickHelpGroup,
    help="Manage the analysis database schema.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(db_app, name="db")


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
    from coffeeshop.pipeline.facade import sync_settings

    settings = setup(db=db)
    # The batch settings and the rest as for `sync`; the source is the bundled file.
    report = sync_settings(settings.model_copy(update={"source": str(path)}))
    typer.echo(
        f"synced the bundled sample into {safe_url(settings.db)}: {report.applied} applied, "
        + HINTS.complete(f"{report.quarantined} quarantined (see `coffeeshop quarantine`)")
    )
    tables(db=settings.db)
