"""`coffeeshop tables` and `coffeeshop quarantine`: what the database holds. Both only read."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from coffeeshop.cli.app import app, setup
from coffeeshop.cli.options import DbOption
from coffeeshop.cli.text import printable
from coffeeshop.csv_cells import guard_formula
from coffeeshop.errors import ConfigError

if TYPE_CHECKING:
    from coffeeshop.store import Store

Contents = dict[str, tuple[list[str], list[list[Any]]]]


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
    from coffeeshop.pipeline.facade import open_store
    from coffeeshop.store import schema

    settings = setup(db=db)
    with open_store(settings.db, read_only=True) as store:
        store.require_schema()
        rows = store.quarantine_rows(limit=limit, offset=offset)
        total = store.count(schema.quarantine)
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


class TableName(StrEnum):
    """The four public tables, in the order `tables` prints them."""

    RECEIPTS_SUMMARY = "receipts_summary"
    STORE_MONTHLY = "store_monthly"
    ITEM_PERFORMANCE = "item_performance"
    STORE_PEAK_HOURS = "store_peak_hours"


@app.command()
def tables(
    db: DbOption = None,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Most rows per table: the first ones in the API's order (days and months "
            "oldest first, products best-selling first, stores by id).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        TableFormat,
        typer.Option(
            "--format",
            help="text (aligned, for people), csv (one table: needs --table) or json (for "
            "scripts; decimals as strings).",
        ),
    ] = TableFormat.TEXT,
    table: Annotated[
        list[TableName] | None,
        typer.Option(
            "--table",
            metavar="NAME",
            help="Print only this table: receipts_summary, store_monthly, item_performance or "
            "store_peak_hours (repeat for several; csv takes one).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the four analytics tables (or the ones --table names).

    Rows come in the API's order. `--format csv` writes one table, as a spreadsheet opens it:
    its header line, then its rows.

    Example: coffeeshop tables --db sqlite:///analysis.db --table store_monthly --format csv
    """
    from coffeeshop.pipeline.facade import open_store

    chosen = list(dict.fromkeys(table)) if table else list(TableName)
    if output is TableFormat.CSV and len(chosen) != 1:
        raise ConfigError(
            "--format csv writes one table (one header line, as a spreadsheet opens it): add "
            f"--table NAME, one of {', '.join(TableName)}; --format json holds several"
        )
    settings = setup(db=db)
    with open_store(settings.db, read_only=True) as store:
        store.require_schema()
        contents = _contents(store, chosen)
    if output is TableFormat.JSON:
        _print_json(contents, limit)
        return
    for name, (header, rows) in contents.items():
        if output is TableFormat.CSV:
            _print_csv(header, rows[:limit])
        else:
            _print_table(name, header, rows[:limit], total=len(rows))


def _contents(store: Store, names: list[TableName]) -> Contents:
    """The header and rows of each table named, from its descriptor (`store.tables.ROWS`), in
    the API's order (`api/queries.py`)."""
    from coffeeshop.store.tables import ROWS

    described = {rows.name: rows for rows in ROWS if rows.public}
    return {
        name: (described[name].header, described[name].listing(store.stored_rows(described[name])))
        for name in names
    }


def _print_json(contents: Contents, limit: int | None) -> None:
    import json

    typer.echo(
        json.dumps(
            {
                name: [
                    dict(zip(header, map(_json_value, row), strict=True)) for row in rows[:limit]
                ]
                for name, (header, rows) in contents.items()
            },
            ensure_ascii=True,  # control characters in names arrive escaped
            indent=1,
        )
    )


def _json_value(value: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _print_csv(header: list[str], rows: list[list[Any]]) -> None:
    """One table as CSV: its header line, then its rows."""
    import csv
    import io

    buffer = io.StringIO()
    # CRLF, as RFC 4180 and the API's CSV: the csv module then quotes a cell holding a CR too.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(map(_csv_cell, row) for row in rows)
    typer.echo(buffer.getvalue(), nl=False)


def _csv_cell(value: Any) -> str:
    """A name as an RFC 4180 cell (a newline, CR or tab in it kept, the cell quoted), guarded
    against formulas as the API's CSV is; other control characters escaped for the terminal."""
    if not isinstance(value, str):
        return str(value)
    return guard_formula(printable(value, keep=_CSV_KEEPS))


_CSV_KEEPS = "\t\n\r"  # what a quoted CSV cell carries as it is


def _print_table(name: str, header: list[str], rows: list[list[Any]], *, total: int) -> None:
    cells = [header] + [[printable(str(v)) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [
        bool(rows) and all(isinstance(row[i], int | Decimal) for row in rows)
        for i in range(len(header))
    ]
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
