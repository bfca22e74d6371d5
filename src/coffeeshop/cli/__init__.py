"""The `coffeeshop` command: one module per command group, each a thin shell over the library
(`coffeeshop.pipeline.facade`). Importing this package registers every command on `app`;
each command module imports only `cli.app`'s `app`, so no import is circular.

Adding a command: a module here whose functions are decorated with `@app.command()` (or a
`typer.Typer` added with `app.add_typer`), and its name in `COMMANDS`.
"""

from collections.abc import Iterator
from importlib import import_module
from typing import Any

from coffeeshop.cli.app import app, main

# In the order `coffeeshop --help` lists them.
COMMANDS = ("sync", "reconcile", "inspect", "generate", "db", "api", "demo", "flows")
for _module in COMMANDS:
    import_module(f"{__name__}.{_module}")


def command_lines() -> list[str]:
    """Every command as a user types it after `coffeeshop` ("db upgrade" for a group's), in
    the order `--help` lists them (the tests and bench/bench_cli.py go through them all)."""
    from typer.main import get_command

    def walk(group: Any, prefix: str) -> Iterator[str]:
        for name, command in group.commands.items():  # a group's, in registration order
            if command.hidden:
                continue
            if hasattr(command, "commands"):
                yield from walk(command, f"{prefix}{name} ")
            else:
                yield prefix + name

    return list(walk(get_command(app), ""))


__all__ = ["COMMANDS", "app", "command_lines", "main"]
