"""`coffeeshop serve`: the read-only REST API under uvicorn.

The API and uvicorn are imported when the command runs, so the other commands start fast.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from coffeeshop.cli.app import app
from coffeeshop.cli.logs import configure_server, server_config

ServeDbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of the analysis database (env SQL_DSN or COFFEESHOP_DB; "
        "without --db, ASYNC_SQL_DSN picks the async URL when set).",
        show_default=False,
    ),
]
ServeWaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        help="Seconds to wait for the database and its tables to appear (when started "
        "together with the first sync); without it a missing one is an error.",
    ),
]


@app.command()
def serve(
    db: ServeDbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (about one per core).")
    ] = 1,
    wait: ServeWaitOption = 0.0,
) -> None:
    """Serve the read-only REST API: the tables, quarantine, pipeline state and metrics.

    JSON with ETags; OpenAPI docs at /docs. A SELECT-only database user is enough.

    COFFEESHOP_API_TOKEN: a bearer token the data endpoints require.

    COFFEESHOP_CORS_ORIGINS: browser origins allowed to call it (comma-separated).

    COFFEESHOP_API_ALLOWED_HOSTS: host names it answers to besides localhost and IP
    addresses (comma-separated; any other Host header gets 400).

    Example: coffeeshop serve --db mysql+pymysql://reader@127.0.0.1:3306/shop --workers 2
    """
    from coffeeshop.api.app import BIND_HOST_VARIABLE, create_app
    from coffeeshop.api.server import check_port
    from coffeeshop.api.server import serve as run_server
    from coffeeshop.api.settings import load_api_settings
    from coffeeshop.store.readiness import check_readable

    # --db on the command line wins over ASYNC_SQL_DSN too: the async URL is derived from it.
    settings = load_api_settings(db=db, async_db="" if db else None)
    configure_server(settings.log_level)
    # Checks URL and driver (a bad one exits 2); the Host check allows the --host name.
    api = create_app(settings, freeze_gc=True, bind_host=host)
    # The API never creates a database: a missing one (or one without the tables) exits 2.
    check_port(host, port)  # first: a port in use is the more immediate problem
    check_readable(settings.db, async_db=settings.async_db, wait=wait)
    # Worker processes build their own app from the environment: hand them these settings.
    os.environ["COFFEESHOP_DB"] = settings.db
    os.environ["ASYNC_SQL_DSN"] = settings.async_db or ""
    os.environ[BIND_HOST_VARIABLE] = host
    options: dict[str, Any] = {
        "access_log": False,
        "server_header": False,
        "log_config": server_config(settings.log_level),
        "log_level": settings.log_level.lower(),
        "timeout_graceful_shutdown": 5,
        "backlog": 2048,
    }
    run_server(api, host=host, port=port, workers=workers, options=options)
