"""Errors that reach a user: each carries one clear line saying what is wrong and what to do.

Each also says whether another attempt may succeed (`transient`): decided where the error
arises (a database error by its dialect, in `store.errors`; a MongoDB error by
`sources.mongo.errors`), so that every retry (the engine's, the Prefect tasks', the Dask
tasks') retries the transient ones only, and fails at once on the others."""

from __future__ import annotations


class CoffeeshopError(Exception):
    """Base of every error the CLI reports as one line with a non-zero exit."""

    exit_code = 2
    transient = False  # whether another attempt may succeed (see `is_transient`)


class ConfigError(CoffeeshopError):
    """Bad configuration: a wrong URL, a missing file, an unknown time zone."""


class StoreError(CoffeeshopError):
    """The analysis database cannot be used (unreachable, refused, too new a schema).

    `transient`: the failure may pass (a lost connection, a deadlock, a locked file); the
    database's dialect decides (`store.errors.mapped_errors`). A missing database, refused
    credentials or a too-new schema are not."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient  # pickled with the error (`__dict__`): Dask keeps it


class FileRequestRefused(StoreError):
    """The database server asked the client for a file that is not the one of the
    `LOAD DATA LOCAL INFILE` statement in flight (a rogue or impostor server): nothing was
    sent, and the statement failed."""


class DatabaseMissing(StoreError):
    """A command that only reads was pointed at a database that does not exist or has no
    coffeeshop tables: it says so instead of creating anything."""


class SourceMismatch(CoffeeshopError):
    """The database holds the receipts of another source: one source per database, so a
    sync or a repair from this one would mix them up or drop the others' receipts."""


class WriterBusy(CoffeeshopError):
    """Another process holds the single-writer lock of this database."""

    exit_code = 3


class SourceChanged(CoffeeshopError):
    """The source no longer matches the committed checkpoint (truncated, replaced)."""


class CheckpointMoved(CoffeeshopError):
    """The checkpoint in the database changed under this writer; it must re-read it."""

    transient = True  # the next attempt starts from the new checkpoint

    def __init__(
        self, message: str, *, version: int | None = None, position: str | None = None
    ) -> None:
        super().__init__(message)
        self.version = version  # what the database holds now (None: no checkpoint row)
        self.position = position


class SourceUnavailable(CoffeeshopError):
    """The source cannot be reached (after retrying): MongoDB down, DNS failure."""

    transient = True  # the source may be back for the next attempt


class SourceHistoryLost(CoffeeshopError):
    """The source can no longer resume from the checkpoint (oplog rolled past it, the
    collection was dropped or renamed): only a fresh snapshot can make the tables right."""


class SourceSwitched(SourceHistoryLost):
    """The source can now be read a better way (a MongoDB server that polling read now has
    change streams): the tables are rebuilt from a fresh read taken at the switch, as after
    a lost history, but this is no failure."""


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt may succeed: an error of this package that says so. Anything
    else (bad configuration, a bug) fails at once."""
    return isinstance(exc, CoffeeshopError) and exc.transient
