"""The demo's folder: one demo at a time, the history a new folder is seeded with, file helpers."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from coffeeshop.demo.options import LOCK_FILE
from coffeeshop.errors import ConfigError

if TYPE_CHECKING:
    from coffeeshop.demo.runner import DemoOptions

log = logging.getLogger("coffeeshop.demo.runner")

HISTORY_SEED = 1  # the same history on every machine


@contextlib.contextmanager
def folder_lock(directory: Path) -> Iterator[None]:
    """One demo per folder: a second one would write the same file and database."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot use the folder {directory}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another demo is running in {directory}; stop it first, or pass --dir OTHER_FOLDER"
            ) from None
        yield
    finally:
        os.close(fd)


def seed_history(options: DemoOptions, source: Path, stop: threading.Event) -> None:
    """Write the history a new folder starts with: the last days up to now, in `.part` first."""
    from coffeeshop.config import load_settings
    from coffeeshop.demo.checks import local_now
    from coffeeshop.demo.generator import ReceiptGenerator
    from coffeeshop.demo.traffic import TrafficModel
    from coffeeshop.demo.writer import write_jsonl

    days = options.history_days
    zone = load_settings().zone()  # the zone of the API's "today": COFFEESHOP_TIMEZONE
    now = local_now(zone)
    start = now.date() - dt.timedelta(days=days)
    # The last `days` days and today up to now, as many receipts as the live rhythm has.
    history = options.history
    if history is None:
        model = TrafficModel(options.per_day, options.stores)  # the rhythm, without a floor
        history = round(model.expected(dt.datetime.combine(start, dt.time()), now))
    generator = ReceiptGenerator(
        seed=HISTORY_SEED,
        stores=options.stores,
        start=start,
        days=days + 1,
        until=now,
        update_share=options.update_share,
        delete_share=options.delete_share,
        invalid_share=options.invalid_share,
        zone=zone,
    )
    part = source.with_name(f"{source.name}.part")
    written = write_jsonl(part, history, generator=generator, append=False, stop=stop)
    if stop.is_set():
        part.unlink(missing_ok=True)
        return
    part.replace(source)  # a whole history or none: an interrupted seed starts over
    log.info(
        "seeded %s with %s lines: %s receipts over the last %d days and today, %d stores",
        source,
        f"{written:,}",
        f"{history:,}",
        days,
        options.stores,
    )


def has_data(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def remove_files(directory: Path, names: tuple[str, ...]) -> list[str]:
    removed = []
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
            removed.append(name)
    return removed


def file_size(path: Path) -> str:
    size = path.stat().st_size
    if size < 1024 * 1024:
        return f"{size / 1024:,.1f} KiB"
    return f"{size / 1024 / 1024:,.1f} MiB"
