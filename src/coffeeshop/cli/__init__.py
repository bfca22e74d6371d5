"""The `coffeeshop` command: one module per command group, each a thin shell over the library
(`coffeeshop.pipeline.facade`). Importing this package registers every command on `app`;
each command module imports only `cli.app`'s `app`, so no import is circular.

Adding a command: a module here whose functions are decorated with `@app.command()` (or a
`typer.Typer` added with `app.add_typer`), and its name in `COMMANDS`.
"""

from importlib import import_module

from coffeeshop.cli.app import app, main

# In the order `coffeeshop --help` lists them.
COMMANDS = ("sync", "reconcile", "inspect", "generate", "db", "api", "demo", "flows")
for _module in COMMANDS:
    import_module(f"{__name__}.{_module}")

__all__ = ["COMMANDS", "app", "main"]
