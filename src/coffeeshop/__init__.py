"""Coffeeshop Analytics: receipts in, exact analytics tables out."""

__version__ = "0.1.0"
