"""A run's temporary files (`coffeeshop.scratch`): a full temporary directory is one line
and exit status 2, never a traceback (issue 18.10), and the files a run killed with SIGKILL
left behind are removed by the next run, never those of a run still alive (issue 18.12).

The full disk is real: the command runs in a mount namespace of its own (`unshare`) with
TMPDIR on a 64 KiB tmpfs that is already full, so nothing is mounted outside the test."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from helpers import receipt, write_lines
from test_bulk import backfill, contents, sync_once, url_for

from coffeeshop import scratch
from coffeeshop.pipeline.reconcile import reconcile
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

TODAY = dt.date(2026, 11, 25)
UNSHARE = ("unshare", "--user", "--map-root-user", "--mount")
BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]
# Mounts a 64 KiB tmpfs on $1 in a private mount namespace, fills it but for a page (a full
# disk still takes the few bytes Python's `tempfile` writes to check the directory), then
# runs the rest.
FULL_TMPDIR = (
    'mount -t tmpfs -o size=64k tmpfs "$1" && head -c 61440 /dev/zero > "$1/fill" && '
    'shift && exec "$@"'
)


def grown_source(tmp_path: Path, url: str) -> Path:
    """A source synced into `url`, then grown by more receipts than a page of scratch holds."""
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(i, store=i % 3, total=f"{i}.5") for i in range(20)])
    sync_once(url, path)
    write_lines(path, [receipt(i, total=2, items=[(f"Latte {i}", 1)]) for i in range(20, 2000)])
    return path


def in_full_tmpdir(tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    full = tmp_path / "full-tmp"
    full.mkdir()
    if shutil.which("unshare") is None:
        pytest.fail("this test needs unshare(1) (util-linux) for a private tmpfs mount")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = subprocess.run(
        [*UNSHARE, "sh", "-c", FULL_TMPDIR, "sh", str(full), *command],
        env={
            **env,
            "TMPDIR": str(full),
            "COFFEESHOP_LOG_LEVEL": "WARNING",
            "PREFECT_HOME": str(tmp_path / "prefect"),
        },
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert "mount:" not in result.stderr, "no private tmpfs could be mounted: " + result.stderr
    return result


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_full_tmpdir_under_reconcile_repair_is_one_line_and_exit_2(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = url_for(backend, tmp_path, request, "analysis")
    path = grown_source(tmp_path, url)
    before = contents(url)
    result = in_full_tmpdir(
        tmp_path, sys.executable, "-m", "coffeeshop", "reconcile", "--repair",
        "--source", str(path), "--db", url,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no space left in the temporary directory" in lines[0], lines
    assert "TMPDIR" in lines[0] and "nothing was changed" in lines[0]
    assert contents(url) == before


def test_a_full_tmpdir_under_a_repair_on_dask_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """`--workers`: Prefect's temporary API server (SQLite scratch files in TMPDIR) used to
    fail its start-up for 180 s, then the command exited 1 with a traceback."""
    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    path = grown_source(tmp_path, url)
    before = contents(url)
    result = in_full_tmpdir(
        tmp_path, sys.executable, "-m", "coffeeshop", "reconcile", "--repair", "--workers", "1",
        "--source", str(path), "--db", url,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "no space left in the temporary directory" in last, result.stderr
    assert "Prefect's temporary API server" in last and "TMPDIR" in last
    assert contents(url) == before


BULK_REPAIR = textwrap.dedent(
    """
    import datetime as dt, sys
    from coffeeshop.errors import CoffeeshopError
    from coffeeshop.pipeline.partitioned import finish, gather_in_process
    from coffeeshop.sources.jsonl import JsonlSource
    from coffeeshop.store import Store

    url, path = sys.argv[1:3]
    today = dt.date(2026, 11, 25)
    try:
        with Store(url, bulk_load=True) as store:
            gathered = gather_in_process(path, 2)
            finish(store, JsonlSource(path), gathered, today=today, repair=True)
    except CoffeeshopError as exc:  # as `coffeeshop.cli.app.main` reports it
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
    """
)


@pytest.mark.mariadb
def test_a_full_tmpdir_under_a_bulk_load_is_one_line_and_changes_nothing(
    mysql_url: str, tmp_path: Path
) -> None:
    """The partitioned repair's bulk path (LOAD DATA files) on a full temporary directory:
    the database server is fine, only the load file cannot be written."""
    path = grown_source(tmp_path, mysql_url)
    before = contents(mysql_url)
    result = in_full_tmpdir(tmp_path, sys.executable, "-c", BULK_REPAIR, mysql_url, str(path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "a bulk load's files" in lines[0], lines
    assert contents(mysql_url) == before


# -- leftovers of a run killed with SIGKILL ---------------------------------------------------

DIE_IN_BULK_LOAD = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    from coffeeshop.pipeline.partitioned import finish, gather_in_process
    from coffeeshop.sources.jsonl import JsonlSource
    from coffeeshop.store import Store

    def die(stage):
        if stage == "bulk":  # the load file is written and loaded, the transaction open
            os.kill(os.getpid(), signal.SIGKILL)

    url, path = sys.argv[1:3]
    with Store(url, bulk_load=True, fault=die) as store:
        gathered = gather_in_process(path, 2)
        finish(store, JsonlSource(path), gathered, today=dt.date(2026, 11, 25), repair=True)
    """
)
DIE_IN_RECONCILE = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    from coffeeshop.pipeline.reconcile import reconcile
    from coffeeshop.sources.jsonl import JsonlSource
    from coffeeshop.store import Store

    class Dying(JsonlSource):
        def close(self):  # the whole source is folded into the scratch snapshot
            os.kill(os.getpid(), signal.SIGKILL)

    url, path = sys.argv[1:3]
    with Store(url) as store:
        reconcile(store, Dying(path), today=dt.date(2026, 11, 25), repair=True)
    """
)


def killed_run(script: str, tmpdir: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**os.environ, "TMPDIR": str(tmpdir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr


def left(tmpdir: Path) -> list[Path]:
    """What runs left in `tmpdir`: not a MariaDB database's commit signal file
    (`store.signal`), which lives there on purpose, for as long as the database."""
    return sorted(
        p
        for p in tmpdir.iterdir()
        if p.name.startswith(("coffeeshop-", ".coffeeshop"))
        and not p.name.startswith("coffeeshop-signal-")
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_files_of_a_run_killed_with_sigkill_are_removed_by_the_next_run(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """MariaDB: killed during a bulk load (its LOAD DATA file); SQLite (no bulk path):
    killed during a repair, with the source folded into its scratch snapshot."""
    url = url_for(backend, tmp_path, request, "analysis")
    path = grown_source(tmp_path, url)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    script = DIE_IN_BULK_LOAD if backend == "mariadb" else DIE_IN_RECONCILE
    killed_run(script, tmpdir, url, str(path))
    leftovers = left(tmpdir)
    assert len(leftovers) == 1 and any(f.stat().st_size > 0 for f in leftovers[0].iterdir())
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    with caplog.at_level(logging.WARNING):
        if backend == "mariadb":
            backfill(url, path)
        else:
            with Store(url) as store:
                reconcile(store, JsonlSource(path), today=TODAY, repair=True)
    assert left(tmpdir) == []
    removed = [r.getMessage() for r in caplog.records if "did not finish" in r.getMessage()]
    assert len(removed) == 1 and str(leftovers[0]) in removed[0], removed
    synced = f"sqlite:///{tmp_path / 'synced.db'}"
    sync_once(synced, path)
    assert contents(url)[0] == contents(synced)[0]


HOLD = textwrap.dedent(
    """
    import sys
    from coffeeshop import scratch

    with scratch.directory(sys.argv[1]) as path:
        (path / "part.tsv").write_bytes(b"x" * 1000)
        print(path, flush=True)
        sys.stdin.read()  # alive until the test closes our stdin
    """
)


def test_the_scratch_directory_of_a_live_run_is_never_removed(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    live = subprocess.Popen(
        [sys.executable, "-c", HOLD, "load"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert live.stdout is not None
        live_path = Path(live.stdout.readline().strip())
        killed_run(HOLD.replace("sys.stdin.read()", "import os; os.kill(os.getpid(), 9)"),
                   tmp_path, "reconcile")  # fmt: skip
        dead_path = next(p for p in left(tmp_path) if p != live_path)
        other = tmp_path / "coffeeshop-metrics-1234-abcd"  # not a kind of scratch directory
        other.mkdir()
        assert scratch.remove_leftovers(tmp_path) == [dead_path]
        assert (live_path / "part.tsv").read_bytes() == b"x" * 1000
        assert other.is_dir() and not dead_path.exists()
    finally:
        live.communicate(timeout=60)
    assert live.returncode == 0 and not live_path.exists()  # it removed its own at the end
