"""What a demo run is given: its folder and the files in it, the address of the dashboard, and
the shape of its traffic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coffeeshop.demo.traffic import LIVE_FLOOR, STORES, profile_of

DB_FILE = "analysis.db"
SOURCE_FILE = "receipts.jsonl"
LOCK_FILE = ".demo.lock"
# What `fresh` removes: the demo's own files, never anything else in the folder.
DEMO_FILES = (
    SOURCE_FILE,
    f"{SOURCE_FILE}.part",
    DB_FILE,
    f"{DB_FILE}-wal",
    f"{DB_FILE}-shm",
    f"{DB_FILE}-journal",
    f"{DB_FILE}.lock",
)


# What the dashboard shows unless COFFEESHOP_CURRENCY / COFFEESHOP_STORE_NAMES say otherwise.
DEMO_CURRENCY = "EUR"


def demo_store_names(stores: int) -> str:
    """`1=Airport,2=Central Station,…`: the names of the stores' profiles (beyond the twelve,
    a repeated profile's name gets a number: `13=Airport 2`)."""
    names = []
    for store in range(1, stores + 1):
        copy = (store - 1) // len(STORES) + 1
        name = profile_of(store).name
        names.append(f"{store}={name}" if copy == 1 else f"{store}={name} {copy}")
    return ",".join(names)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    directory: Path
    host: str = "127.0.0.1"
    port: int = 8000
    fresh: bool = False
    # Receipts on an average day: the seeded history and the live traffic follow the same
    # rhythm (`generator.TrafficModel`), so live receipts continue the history believably.
    per_day: int = 1000
    rate: float | None = None  # a steady rate (receipts/s) instead of the rhythm, for tests
    live_floor: float = LIVE_FLOOR  # the rhythm's live rate never goes below (receipts/s)
    history: int | None = None  # receipts seeded on a first run (None: what per_day gives)
    history_days: int = 60
    stores: int = 12
    invalid_share: float = 0.02
    update_share: float = 0.01
    delete_share: float = 0.005
    status_every: float = 30.0  # seconds between two progress lines

    @property
    def db_path(self) -> Path:
        return self.directory / DB_FILE

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path.resolve()}"

    @property
    def source_path(self) -> Path:
        return self.directory / SOURCE_FILE

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"
