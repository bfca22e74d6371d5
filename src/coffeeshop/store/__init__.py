"""The analysis database: tables, per-dialect upserts, checkpoint, quarantine, writer lock."""

from coffeeshop.store.database import BatchResult, Checkpoint, Store
from coffeeshop.store.url import normalize_url

__all__ = ["BatchResult", "Checkpoint", "Store", "normalize_url"]
