"""The one place the commands configure logging: the format of every line on stderr, the
levels of the chattier parts, and the hints completed with the command's own options."""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import Mapping
from typing import Any

from coffeeshop.cli.text import HINTS, HintFilter, PrintableFilter

LONG = {
    "format": "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s",
    "datefmt": "%Y-%m-%dT%H:%M:%S",
}
SHORT = {"format": "%(asctime)s %(name)s: %(message)s", "datefmt": "%H:%M:%S"}


def configure(level: str) -> None:
    """A command's logging: LONG lines on stderr at `level` (unless the process has set up
    logging already), the hints in coffeeshop's lines completed (`HINTS`) on that handler."""
    root = logging.getLogger()
    existing = list(root.handlers)  # a host's (or a test's) handlers are left as they are
    logging.basicConfig(
        level=level, format=LONG["format"], datefmt=LONG["datefmt"], stream=sys.stderr
    )
    for handler in root.handlers:
        if handler not in existing and not any(isinstance(f, HintFilter) for f in handler.filters):
            handler.addFilter(HintFilter(HINTS))
            handler.addFilter(PrintableFilter())  # (after the hints: they hold the file names)


def server_config(
    level: str, *, short: bool = False, quiet: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A `logging.config` dictionary for a process that runs uvicorn (also in each of its
    worker processes): one format for uvicorn and coffeeshop, LONG or SHORT; uvicorn at
    `level` but its access log at WARNING; each logger in `quiet` at its own level."""
    loggers = {
        "uvicorn": level,
        "uvicorn.error": level,
        "uvicorn.access": "WARNING",
        **(quiet or {}),
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": SHORT if short else LONG},
        "filters": {"printable": {"()": PrintableFilter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "filters": ["printable"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {name: {"level": value} for name, value in loggers.items()},
    }


def configure_server(
    level: str, *, short: bool = False, quiet: Mapping[str, str] | None = None
) -> None:
    """Configure this process's logging with `server_config`."""
    logging.config.dictConfig(server_config(level, short=short, quiet=quiet))
