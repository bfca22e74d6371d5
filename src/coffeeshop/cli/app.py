"""The `coffeeshop` Typer app, its entry point, and what every command shares: loading the
settings (and logging), one-line errors, the exit status after a signal.

Only what every command needs is imported here: `coffeeshop --help` must not pay for
SQLAlchemy, pydantic, Prefect, FastAPI or PyMongo. Each command imports its own.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from coffeeshop.cli.logs import configure
from coffeeshop.cli.text import HINTS, printable
from coffeeshop.errors import CoffeeshopError, ConfigError
from coffeeshop.redact import mask_text, mask_url
from coffeeshop.signals import StopOnSignal

if TYPE_CHECKING:
    from coffeeshop.config import Settings


class QuickHelpGroup(TyperGroup):
    """A command group whose unused `--help` costs nothing: Typer builds a pydantic adapter
    (~0.2 s of imports) to coerce an option whose value is None, and a group's `--help` is
    None whenever a subcommand is named, so `coffeeshop tables --help` paid for pydantic.
    A default of False is already a bool, which Typer leaves alone."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


app = typer.Typer(
    cls=QuickHelpGroup,
    help="Coffeeshop Analytics: receipts in, exact analytics tables out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich would add ~0.3 s to every `--help`
)

log = logging.getLogger("coffeeshop")


def command_group(name: str, help: str) -> typer.Typer:
    """A group of commands, `coffeeshop NAME …`, added to `app` (every group is made alike:
    plain help, its own help when called bare)."""
    group = typer.Typer(cls=QuickHelpGroup, help=help, no_args_is_help=True, rich_markup_mode=None)
    app.add_typer(group, name=name)
    return group


def main() -> None:
    """Console-script entry point: library errors become one line and a non-zero exit."""
    import coffeeshop.cli  # noqa: F401  (registers every command on `app`)

    try:
        app()
    except CoffeeshopError as exc:
        # One line, whatever a file name in it holds (printable escapes control characters).
        typer.echo(f"error: {printable(HINTS.complete(mask_text(str(exc))))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


def setup(**overrides: Any) -> Settings:
    """The settings (options over the environment), logging, and the hints' --db/--source."""
    from coffeeshop.config import load_settings

    settings = load_settings(**overrides)
    configure(settings.log_level)
    HINTS.db = safe_url(settings.db)
    HINTS.source = mask_url(settings.source) if settings.source else None
    return settings


def safe_url(url: str) -> str:
    from coffeeshop.store import normalize_url

    return mask_url(normalize_url(url))


def stop_signal() -> StopOnSignal:
    """The event SIGINT/SIGTERM set (handlers installed by `with stop.install()`)."""
    return StopOnSignal(log)


def exit_if_signalled(stop: StopOnSignal) -> None:
    """After a clean stop: exit 130 (SIGINT) or 143 (SIGTERM), as shells expect, so that a
    script can tell an interrupted run from a finished one."""
    if stop.exit_code is not None:
        raise typer.Exit(stop.exit_code)


def refuse_csv(source: str | None) -> None:
    """A CSV export given as the source would have every line quarantined: say so instead."""
    from coffeeshop.sources import is_uri

    if not source or is_uri(source):
        return
    if not os.path.isfile(source):
        return  # the source's own checks report it (and opening a FIFO would block)
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
