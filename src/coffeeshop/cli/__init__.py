"""The `coffeeshop` command: one module per command group, each a thin shell."""

from coffeeshop.cli.main import app, main

__all__ = ["app", "main"]
