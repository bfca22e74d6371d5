"""`coffeeshop reconcile --workers N / --dask-address tcp://…`: the partitioned reconcile on
Dask (`coffeeshop.orchestration.scaleout`). Prefect and Dask are imported only when asked for."""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from coffeeshop.errors import ConfigError

if TYPE_CHECKING:
    from coffeeshop.config import Settings

WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Read the source in partitions on a local Dask cluster of N worker processes "
        "(env COFFEESHOP_DASK_WORKERS).",
    ),
]
DaskAddressOption = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        help="Run the partitions on an existing Dask cluster: its scheduler, tcp://host:8786 "
        "(env COFFEESHOP_DASK_ADDRESS).",
    ),
]


# What the `dask` extra installs and the Dask paths import (`orchestration.scaleout`).
EXTRA_MODULES = ("prefect_dask", "distributed")


def require_extra(asked_by: str) -> None:
    """`ConfigError` naming the extra when its modules are missing (the package was installed
    without it, as `make demo` does): checked before anything is opened or created."""
    missing = [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"{asked_by} runs on Dask, which is not installed (no module {missing[0]!r}): "
            "pip install 'coffeeshop[dask]' (in a checkout: .venv/bin/pip install -e '.[dask]')"
        )


def wanted(
    workers: int | None, address: str | None, *, workers_option: str = "--workers"
) -> tuple[int | None, str | None] | None:
    """The Dask set-up the options or the environment ask for; None: one process.
    (`workers_option`: the command's option for a local cluster's size.)"""
    env_workers = os.environ.get("COFFEESHOP_DASK_WORKERS") if workers is None else None
    if env_workers is not None and not env_workers.strip().isdigit():
        raise ConfigError(f"bad configuration COFFEESHOP_DASK_WORKERS: {env_workers!r}")
    given = {workers_option: workers, "--dask-address": address}
    given |= {"COFFEESHOP_DASK_WORKERS": env_workers}
    workers = workers or (int(env_workers) if env_workers else None)
    address = address or os.environ.get("COFFEESHOP_DASK_ADDRESS") or None
    asked_by = next((name for name, value in given.items() if value), "COFFEESHOP_DASK_ADDRESS")
    if workers is None and address is None:
        return None
    if workers is not None and address is not None:
        raise ConfigError(
            f"give a local cluster ({workers_option}, COFFEESHOP_DASK_WORKERS) or an existing "
            "one (--dask-address, COFFEESHOP_DASK_ADDRESS), not both"
        )
    require_extra(asked_by)
    return workers, address


def reconcile(settings: Settings, *, repair: bool, workers: int | None, address: str | None) -> Any:
    """The partitioned reconcile; the same report as the single-process one."""
    check_cluster(address)
    check_source(settings)
    return _run(settings, repair=repair, workers=workers, address=address)


def check_cluster(address: str | None) -> None:
    """An existing cluster's scheduler answers (one line, exit 2, before Prefect starts)."""
    if address:
        from coffeeshop.orchestration.scheduler import check_scheduler

        check_scheduler(address)


def check_source(settings: Settings) -> None:
    """Refuse, in one line and before Prefect or Dask start (they take seconds to minutes),
    a source that cannot be read in partitions: a missing file; a kind without partitioned
    reading; a MongoDB server that does not answer, or a standalone one (no change stream to
    hand over to)."""
    from coffeeshop.sources.base import partitioned  # not at import: `--help` stays light

    partitioned(settings.open_source()).check_partitionable(threading.Event())


def _run(settings: Settings, *, repair: bool, workers: int | None, address: str | None) -> Any:
    from coffeeshop.sources import portable_spec

    # Flow parameters are stored in the Prefect database: URLs go through the environment,
    # with the options that name a collection.
    os.environ["COFFEESHOP_DB"] = settings.db
    if settings.source:
        os.environ["COFFEESHOP_SOURCE"] = portable_spec(settings.source)
    os.environ["COFFEESHOP_MONGO_DATABASE"] = settings.mongo_database
    os.environ["COFFEESHOP_MONGO_COLLECTION"] = settings.mongo_collection
    os.environ["COFFEESHOP_FULL_DOCUMENT"] = settings.full_document
    from coffeeshop.orchestration.settings import configure

    configure()  # before Prefect is first imported
    from coffeeshop.orchestration.scaleout import reconcile_on_dask

    return reconcile_on_dask(source=None, db=None, repair=repair, workers=workers, address=address)


BackfillWorkersOption = Annotated[
    int | None,
    typer.Option(
        "--backfill-workers",
        min=1,
        help="First sync of a large source (a JSONL file, or a MongoDB replica set): build "
        "the state from partitions on a local Dask cluster of N processes, then go on from "
        "where they ended (a collection: from its change stream's start point, taken first) "
        "[env: COFFEESHOP_DASK_WORKERS].",
    ),
]
BackfillAddressOption = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        help="First sync of a large source: build the state from partitions on an existing "
        "Dask cluster, its scheduler tcp://host:8786, as --backfill-workers does on a local "
        "one [env: COFFEESHOP_DASK_ADDRESS].",
    ),
]


def backfill(settings: Settings, *, workers: int | None, address: str | None = None) -> Any:
    """The first sync's state, built by the partitioned reconcile's repair (the same rebuild,
    one transaction, written with the database's bulk path, checkpoint at the end of the
    planned ranges, or for a collection at its change stream's start point, taken before the
    ranges were read) so that `sync` continues from there without a gap. None when the
    source already has a checkpoint (not a first sync: the engine's incremental path is the
    right one then)."""
    from coffeeshop.store import Store

    require_extra("--backfill-workers")  # before the database is created
    check_cluster(address)
    check_source(settings)
    with Store(settings.db) as store:
        store.upgrade()
        if store.load_checkpoint(settings.open_source().name) is not None:
            return None
    return _run(settings, repair=True, workers=workers, address=address)
