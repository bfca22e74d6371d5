"""The partitioned reconcile end to end: Prefect tasks on a real local Dask cluster (one per
module: it takes seconds to start), against a temporary Prefect API, on SQLite and MariaDB;
a worker killed mid-partition; and `coffeeshop reconcile --dask-address` as a user runs it."""

from __future__ import annotations

# ruff: noqa: E402 (Prefect is configured before it is first imported)
from coffeeshop.orchestration.settings import configure

configure()  # Prefect reads its settings, and starts its analytics, when first imported

import datetime as dt
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster
from helpers import execute_sql, receipt, run_coffeeshop, write_lines
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness
from sqlalchemy import select

from coffeeshop.core.plan import QuarantineEntry
from coffeeshop.orchestration.scaleout import reconcile_on_dask
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.pipeline.reconcile import ReconcileReport, reconcile
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store, schema


def today() -> dt.date:
    """The flow's "today": COFFEESHOP_TIMEZONE is UTC in this module (see `cluster`)."""
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[str]:
    with prefect_test_harness(server_startup_timeout=600):  # a loaded machine: minutes
        url = PREFECT_API_URL.value()
        assert url
        yield url


@pytest.fixture(scope="module")
def cluster(prefect_api: str) -> Iterator[LocalCluster]:
    """Two single-threaded worker processes that report to the test's Prefect API."""
    os.environ["PREFECT_API_URL"] = prefect_api  # the worker processes inherit it
    os.environ["COFFEESHOP_TIMEZONE"] = "UTC"
    try:
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local:
            yield local
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        os.environ.pop("COFFEESHOP_TIMEZONE", None)


def history(n: int) -> list[Any]:
    out: list[Any] = [
        receipt(i, store=i % 4, total=f"{i % 50}.25", items=[("Latte", 1 + i % 3), ("Tè", 1)])
        for i in range(n)
    ]
    out += [receipt(i, store=9, total=1) for i in range(0, n, 7)]  # replaced later
    out += [{"operationType": "delete", "documentKey": {"_id": i}} for i in range(0, n, 11)]
    out += [receipt(n + 1, total="oops"), "not json", receipt(3.0, total=2)]
    return out


def sync(url: str, path: Path) -> None:
    with Store(url) as store:
        Syncer(store, JsonlSource(path), today=today).run()


def summary(report: ReconcileReport) -> tuple[Any, ...]:
    return (
        report.receipts,
        report.quarantined,
        report.position,
        report.counts,
        [str(d) for d in report.differences],
        report.repaired,
    )


def single(url: str, path: Path, repair: bool = False) -> ReconcileReport:
    with Store(url) as store:
        return reconcile(store, JsonlSource(path), today=today(), repair=repair)


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_reconcile_on_dask_equals_single_process_and_repairs(
    backend: str, cluster: LocalCluster, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'a.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("mysql_url")
    )
    path = tmp_path / "r.jsonl"
    write_lines(path, history(300))
    sync(url, path)
    with Store(url) as store:
        execute_sql(store, "UPDATE cs_receipts SET cents = cents + 1 WHERE receipt_id = '5'")
        execute_sql(store, "DELETE FROM store_monthly WHERE store_id = 1")
    expected = single(url, path)
    assert expected.total_differences == 2
    got = reconcile_on_dask(
        source=str(path),
        db=url,
        repair=False,
        workers=None,
        address=cluster.scheduler_address,
        partitions=5,
    )
    assert summary(got) == summary(expected)
    repaired = reconcile_on_dask(
        source=str(path),
        db=url,
        repair=True,
        workers=None,
        address=cluster.scheduler_address,
        partitions=3,
    )
    assert repaired.repaired
    assert single(url, path).total_differences == 0


def quarantine_of(url: str) -> list[tuple[Any, ...]]:
    with Store(url) as store, store.engine.connect() as conn:
        q = schema.quarantine
        columns = (q.c.key, q.c.receipt_id, q.c.reason, q.c.source, q.c.position, q.c.raw)
        return [tuple(row) for row in conn.execute(select(*columns).order_by(q.c.id))]


def test_the_quarantine_stays_on_the_workers_and_is_written_as_the_single_process_writes_it(
    cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invalid receipts (kept by the buckets that resolved them) and unreadable lines (by the
    ranges that read them), more than a chunk of each per bucket and range: the repair writes
    the same `cs_quarantine` rows, in the same order, as the single-process repair, and the
    coordinator holds none of them when its rebuild starts (they stream into it)."""
    path = tmp_path / "r.jsonl"
    lines: list[Any] = []
    for i in range(3_000):
        lines.append(receipt(i, store=i % 4, total="oops" if i % 3 == 0 else "4.5"))
        if i % 3 == 1:
            lines.append(f"not json {i}")
    write_lines(path, lines)  # 1,000 invalid receipts, 1,000 unreadable lines
    url, other = (f"sqlite:///{tmp_path / name}.db" for name in ("a", "b"))
    expected = single(other, path, repair=True)
    held: list[int] = []
    rebuild = Store.rebuild

    def counting(self: Store, *args: Any, **kwargs: Any) -> int:
        gc.collect()
        held.append(sum(isinstance(o, QuarantineEntry) for o in gc.get_objects()))
        return rebuild(self, *args, **kwargs)

    monkeypatch.setattr(Store, "rebuild", counting)
    got = reconcile_on_dask(
        source=str(path),
        db=url,
        repair=True,
        workers=None,
        address=cluster.scheduler_address,
        partitions=3,  # 3 buckets of ~333 invalid receipts, 3 ranges of ~333 unreadable lines
    )
    assert got.repaired and got.quarantined == expected.quarantined == 2_000
    assert held == [0]
    assert quarantine_of(url) == quarantine_of(other)


def test_a_worker_killed_mid_partition_reruns_that_partition(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    path = tmp_path / "r.jsonl"
    write_lines(path, history(40_000))
    sync(url, path)
    expected = summary(single(url, path))
    client = Client(cluster.scheduler_address)
    pids: dict[str, int] = client.run(os.getpid)
    killed: list[str] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for worker, keys in client.processing().items():
                if any("read-range" in str(key) or "read_partition" in str(key) for key in keys):
                    os.kill(pids[worker], signal.SIGKILL)
                    killed.append(worker)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    got = reconcile_on_dask(
        source=str(path),
        db=url,
        repair=False,
        workers=None,
        address=cluster.scheduler_address,
        partitions=2,
    )
    killer.join()
    client.close()
    assert killed, "no worker was seen reading a partition"
    assert summary(got) == expected


def test_the_command_prints_what_the_single_process_command_prints(
    cluster: LocalCluster, prefect_api: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    path = tmp_path / "r.jsonl"
    write_lines(path, history(200))
    sync(url, path)
    with Store(url) as store:
        execute_sql(store, "DELETE FROM item_performance")
    env = {**os.environ, "PREFECT_API_URL": prefect_api}

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "coffeeshop",
                "reconcile",
                "--source",
                str(path),
                "--db",
                url,
                *extra,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )

    plain = run()
    on_dask = run("--dask-address", cluster.scheduler_address)
    assert plain.returncode == on_dask.returncode == 1, on_dask.stderr[-2000:]
    assert on_dask.stdout == plain.stdout
    repaired = run("--dask-address", cluster.scheduler_address, "--repair")
    assert repaired.returncode == 0 and repaired.stdout.rstrip().endswith("; repaired")
    assert run().returncode == 0
    bad = run("--dask-address", "localhost:1")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_backfill_builds_the_first_state_on_dask_and_sync_continues_without_a_gap(
    cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import reference_tables

    from coffeeshop.cli import dask as cli_dask
    from coffeeshop.config import load_settings

    url = f"sqlite:///{tmp_path / 'a.db'}"
    path = tmp_path / "r.jsonl"
    first = history(500)
    write_lines(path, first)
    monkeypatch.setenv("COFFEESHOP_DB", url)  # backfill hands them to the flow this way
    monkeypatch.setenv("COFFEESHOP_SOURCE", str(path))
    settings = load_settings(source=str(path), db=url)
    built = cli_dask.backfill(settings, workers=None, address=cluster.scheduler_address)
    assert built is not None and built.repaired
    more = [receipt(1, total=99), {"operationType": "delete", "documentKey": {"_id": 2}}]
    more += [receipt(10_000 + i, total=1) for i in range(5)]
    write_lines(path, more)
    sync(url, path)  # continues from the backfill's checkpoint
    with Store(url) as store:
        assert store.read_tables(today()) == reference_tables(first + more, today())
    assert cli_dask.backfill(settings, workers=None, address=cluster.scheduler_address) is None


def test_a_mongodb_source_runs_on_dask_and_its_backfill_hands_over_to_the_stream(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flow and its tasks for a `mongodb://` source on a `DaskTaskRunner` (workers in this
    process, so they reach the scripted fake through the URI's client factory, as real
    workers reach the server): the report equals the single-process reconcile's, and
    `sync --backfill-workers`'s backfill then hands over to the change stream."""
    from fake_mongo import FakeClient, insert
    from test_mongo_partitions import URI, mixed_docs

    from coffeeshop.cli import dask as cli_dask
    from coffeeshop.config import load_settings
    from coffeeshop.sources.mongo import MongoSource

    client = FakeClient(mixed_docs(), [])
    monkeypatch.setattr(MongoSource, "_default_client", lambda self: client)
    monkeypatch.setenv("COFFEESHOP_TIMEZONE", "UTC")
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as local:
        # backfill hands these to the flow through the environment: set here, so that they
        # are restored afterwards (a delenv of an unset name records nothing to restore)
        for name, value in (
            ("DB", url),
            ("SOURCE", URI),
            ("MONGO_DATABASE", "coffeeshop"),
            ("MONGO_COLLECTION", "receipt"),
            ("FULL_DOCUMENT", "updateLookup"),
        ):
            monkeypatch.setenv(f"COFFEESHOP_{name}", value)
        settings = load_settings(source=URI, db=url)
        built = cli_dask.backfill(settings, workers=None, address=local.scheduler_address)
        assert (
            built is not None
            and built.repaired
            and built.receipts == len(client.collection.docs) - 2
        )
        client.collection.script.append(insert(receipt("after", total="3.00")))
        with Store(url) as store:
            Syncer(store, MongoSource(URI), today=today, read_ahead=False).run()
        expected = summary(single_mongo(url))
        got = reconcile_on_dask(
            source=URI, db=url, repair=False, workers=None, address=local.scheduler_address
        )
    assert summary(got) == expected and got.total_differences == 0


def single_mongo(url: str) -> ReconcileReport:
    from test_mongo_partitions import URI

    from coffeeshop.sources.mongo import MongoSource

    with Store(url) as store:
        return reconcile(store, MongoSource(URI), today=today())


# -- clean failures, nothing written ------------------------------------------------------------


@pytest.mark.parametrize("command", ["reconcile", "sync"])
def test_no_scheduler_at_the_address_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    from helpers import free_port

    path = tmp_path / "r.jsonl"
    write_lines(path, history(20))
    db = tmp_path / "a.db"
    address = f"tcp://127.0.0.1:{free_port()}"
    args = ["--source", str(path), "--db", f"sqlite:///{db}", "--dask-address", address]
    got = run_coffeeshop(command, *args, cwd=tmp_path, log_level=None)
    assert got.returncode == 2, got.stderr[-3000:]
    assert got.stderr.strip() == f"error: no Dask scheduler at {address}: Connection refused"
    assert not db.exists()  # refused before anything was created


@pytest.mark.parametrize("worker_sees", ["no file", "another file"])
def test_a_worker_without_the_coordinators_file_fails_the_repair_at_once_and_writes_nothing(
    worker_sees: str, cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real workers: the ranges of the second "worker" name a path where it finds no file, or
    another file (its own directory), as a worker on another machine would."""
    import dataclasses

    from coffeeshop.errors import ConfigError, SourceChanged
    from coffeeshop.sources import partitions

    url = f"sqlite:///{tmp_path / 'a.db'}"
    path = tmp_path / "r.jsonl"
    write_lines(path, history(2000))
    write_lines(tmp_path / "first.jsonl", history(2000)[:100])
    sync(url, tmp_path / "first.jsonl")  # another state: a repair would write
    with Store(url) as store:
        before = (store.read_tables(today()), list(store.iter_receipts()))
    elsewhere = tmp_path / "worker-2"
    elsewhere.mkdir()
    if worker_sees == "another file":
        write_lines(elsewhere / "r.jsonl", history(2100))
    planned = partitions.plan_file

    def on_two_machines(source: str, parts: int) -> list[Any]:
        ranges = planned(source, parts)
        other = str(elsewhere / "r.jsonl")
        return [dataclasses.replace(r, path=other) if r.index % 2 else r for r in ranges]

    monkeypatch.setattr(partitions, "plan_file", on_two_machines)
    expected = ConfigError if worker_sees == "no file" else SourceChanged
    with pytest.raises(expected) as caught:
        reconcile_on_dask(
            source=str(path),
            db=url,
            repair=True,
            workers=None,
            address=cluster.scheduler_address,
            partitions=4,
        )
    assert str(elsewhere / "r.jsonl") in str(caught.value) and "\n" not in str(caught.value)
    with Store(url) as store:
        assert (store.read_tables(today()), list(store.iter_receipts())) == before


def test_sync_backfills_on_an_existing_cluster_by_option_or_environment(
    cluster: LocalCluster, prefect_api: str, tmp_path: Path
) -> None:
    from helpers import reference_tables

    path = tmp_path / "r.jsonl"
    lines = history(300)
    write_lines(path, lines)
    env = {"PREFECT_API_URL": prefect_api, "COFFEESHOP_TIMEZONE": "UTC"}
    for n, how in enumerate((["--dask-address", cluster.scheduler_address], [])):
        url = f"sqlite:///{tmp_path / f'{n}.db'}"
        extra = {} if how else {"COFFEESHOP_DASK_ADDRESS": cluster.scheduler_address}
        args = ["--source", str(path), "--db", url, *how]
        got = run_coffeeshop("sync", *args, cwd=tmp_path, env={**env, **extra}, log_level=None)
        assert got.returncode == 0, got.stderr[-3000:]
        assert "from partitions on Dask" in got.stderr
        with Store(url) as store:
            assert store.read_tables(today()) == reference_tables(lines, today())


def test_a_flow_run_whose_coordinator_was_killed_is_marked_crashed_by_the_next_run(
    prefect_api: str,
) -> None:
    """Only a run whose owner was on this machine and is gone: never a live one, never one of
    another machine."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.states import Running

    from coffeeshop.orchestration import orphans
    from coffeeshop.orchestration.scaleout import reconcile_partitioned_flow

    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    owners = {"killed": orphans.owner_tags(killed.pid)}
    killed.kill()
    killed.wait()
    owners["alive"] = orphans.owner_tags()  # this process
    owners["elsewhere"] = [orphans.TAG, f"{orphans.OWNER}other-host|b|pid:[1]|{killed.pid}|1"]
    assert owners["killed"] and owners["alive"]
    with get_client(sync_client=True) as client:
        ids = {
            who: client.create_flow_run(
                reconcile_partitioned_flow, name=f"left-{who}", tags=tags, state=Running()
            ).id
            for who, tags in owners.items()
        }
        marked = orphans.mark_crashed(reconcile_partitioned_flow.name)
        states = {who: client.read_flow_run(run_id).state for who, run_id in ids.items()}
    assert marked == ["left-killed"]
    crashed = states["killed"]
    assert crashed is not None and crashed.type == StateType.CRASHED
    assert f"pid {killed.pid}" in (crashed.message or "")
    assert all(
        s is not None and s.type == StateType.RUNNING for w, s in states.items() if w != "killed"
    )


def test_without_the_dask_extra_the_dask_options_are_one_line_exit_2_and_create_nothing(
    tmp_path: Path,
) -> None:
    """issue 20.1: after `make demo` (the package without its `dask` extra) the README's Dask
    commands named no traceback's `prefect_dask` but the extra, exit 2, and `--backfill-workers`
    left no half-created database. The extra's modules are made unimportable the way Python
    itself blocks an import (None in sys.modules, from a sitecustomize on PYTHONPATH); the rest
    of the install is the real one."""
    from helpers import assert_one_line_error

    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import sys\n"
        "for name in ('prefect_dask', 'distributed', 'dask'):\n"
        "    sys.modules[name] = None\n"
    )
    path = tmp_path / "r.jsonl"
    write_lines(path, history(20))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "COFFEESHOP"))}
    env |= {"PYTHONPATH": str(shim), "PREFECT_HOME": str(tmp_path / ".prefect")}
    commands = {
        "reconcile --workers": ["reconcile", "--workers", "4"],
        "reconcile --dask-address": ["reconcile", "--dask-address", "tcp://127.0.0.1:1"],
        "sync --backfill-workers": ["sync", "--once", "--backfill-workers", "2"],
    }
    for what, args in commands.items():
        db = tmp_path / f"{what.replace(' ', '_')}.db"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "coffeeshop",
                *args,
                "--source",
                str(path),
                "--db",
                f"sqlite:///{db}",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        assert_one_line_error(result, "pip install 'coffeeshop[dask]'")
        assert result.stderr.count("\n") == 1, (what, result.stderr)
        assert not db.exists(), what
    env["COFFEESHOP_DASK_WORKERS"] = "2"  # also what the served nightly reconcile reads
    for args in (["reconcile"], ["flows", "serve"], ["flows", "run", "reconcile"]):
        result = subprocess.run(
            [sys.executable, "-m", "coffeeshop", *args, "--source", str(path)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        assert_one_line_error(result, "COFFEESHOP_DASK_WORKERS")
        assert "pip install 'coffeeshop[dask]'" in result.stderr
    assert not (tmp_path / "analysis.db").exists()


def test_a_dask_command_without_a_prefect_api_ends_without_an_api_logging_error(
    tmp_path: Path,
) -> None:
    """issue 20.12 (and 22.4): a Dask-backed command without PREFECT_API_URL starts a temporary
    Prefect API for its run; its stderr ended with `--- Error logging to API ---` (the run's
    log lines still queued when that API stopped), after a wait of over a minute."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    path = tmp_path / "r.jsonl"
    write_lines(path, history(200))
    sync(url, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "COFFEESHOP"))}
    env |= {"PREFECT_HOME": str(tmp_path / ".prefect"), "COFFEESHOP_TIMEZONE": "UTC"}
    command = ["reconcile", "--source", str(path), "--db", url, "--workers", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "coffeeshop", *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 difference(s)" in result.stdout
    assert "Error logging to API" not in result.stderr, result.stderr[-3000:]
    assert "All connection attempts failed" not in result.stderr, result.stderr[-3000:]
