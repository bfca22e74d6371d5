"""`coffeeshop demo`: live traffic, the engine and the dashboard in one command. The work is in
`coffeeshop.demo.runner`; this is the command-line shell."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coffeeshop.cli.app import app
from coffeeshop.cli.logs import configure_server
from coffeeshop.errors import ConfigError

# Quiet parts: the demo prints its own progress lines instead of one per batch or request.
QUIET = {
    # a warning per batch with an invalid receipt: by design here
    "coffeeshop.pipeline.engine": "ERROR",
    "coffeeshop.api": "WARNING",
    "uvicorn": "WARNING",
    "uvicorn.error": "WARNING",
    "uvicorn.access": "WARNING",
}


DirOption = Annotated[
    Path,
    typer.Option("--dir", help="Folder for analysis.db and receipts.jsonl (created, then reused)."),
]
PerDayOption = Annotated[
    int,
    typer.Option(
        min=1,
        help="Receipts on an average day: the seeded history and the live traffic "
        "(which follows the stores' hours and weekdays, never under 0.4 receipts/s).",
    ),
]
RateOption = Annotated[
    float | None,
    typer.Option(
        min=0.1, max=10_000, help="A steady live rate (receipts/s) instead of the rhythm."
    ),
]
HistoryOption = Annotated[
    int | None,
    typer.Option(min=0, help="Receipts seeded on a first run (default: what --per-day gives)."),
]


@app.command()
def demo(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the dashboard.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start over: delete the folder's demo data first.")
    ] = False,
    directory: DirOption = Path("demo"),
    per_day: PerDayOption = 1000,
    rate: RateOption = None,
    history: HistoryOption = None,
) -> None:
    """Run the live demo: receipts stream into a file, the engine syncs them into SQLite, and
    the dashboard at http://HOST:PORT/ shows the tables as they change. Ctrl-C stops it all.

    The folder keeps the data between runs: a second run continues where the first stopped.

    Example: coffeeshop demo --port 8000 --dir demo --fresh
    """
    from coffeeshop.config import load_settings
    from coffeeshop.demo.runner import Demo, DemoOptions

    level = load_settings().log_level
    quiet = {name: quieter if level != "DEBUG" else level for name, quieter in QUIET.items()}
    configure_server(level, short=True, quiet=quiet)
    options = DemoOptions(
        directory=directory,
        host=host,
        port=port,
        fresh=fresh,
        per_day=per_day,
        rate=rate,
        history=history,
    )
    try:
        Demo(options).run()
    except ConfigError as exc:
        if not str(exc).startswith("cannot listen on"):
            raise
        raise ConfigError(
            f"{exc}: choose another port with --port N (with make: `make demo PORT=N`)"
        ) from None
