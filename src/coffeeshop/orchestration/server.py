"""The Prefect API the commands talk to: PREFECT_API_URL, a Prefect server on this machine
(shared when one is running, else started for the duration and stopped after), or the
temporary API Prefect starts on its own; and Prefect's failures to reach it, as one line."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import httpx
from prefect.settings import PREFECT_API_URL, temporary_settings

from coffeeshop.errors import CoffeeshopError
from coffeeshop.orchestration.settings import EPHEMERAL_TIMEOUT

__all__ = [
    "DEFAULT_PORT",
    "PrefectUnavailable",
    "check_api",
    "first_line",
    "local_server_env",
    "one_line_prefect_errors",
    "prefect_api",
    "run_api",
]

log = logging.getLogger("coffeeshop.orchestration.server")

DEFAULT_PORT = 4200  # the local Prefect server `flows serve` starts without PREFECT_API_URL
SERVER_START_TIMEOUT = 90.0


class PrefectUnavailable(CoffeeshopError):
    """The Prefect API cannot be reached or started."""


def first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


@contextlib.contextmanager
def prefect_api(*, port: int = DEFAULT_PORT) -> Iterator[str]:
    """The Prefect API to serve against: PREFECT_API_URL when set; else a Prefect server on
    127.0.0.1:`port` (one already running there, or one started for the duration). Schedules
    need it: the temporary API Prefect starts on its own runs no scheduler."""
    configured = check_api()
    if configured:
        yield configured
        return
    url = f"http://127.0.0.1:{port}/api"
    with _local_server(url, port), temporary_settings(updates={PREFECT_API_URL: url}):
        yield url


@contextlib.contextmanager
def run_api(*, port: int = DEFAULT_PORT) -> Iterator[str | None]:
    """The Prefect API for `coffeeshop flows run`: PREFECT_API_URL when set, else a Prefect
    server already running on 127.0.0.1:`port` (no start-up to wait for), else None: Prefect
    starts its temporary API (see EPHEMERAL_TIMEOUT)."""
    configured = check_api()
    if configured:
        yield configured
        return
    url = f"http://127.0.0.1:{port}/api"
    if _healthy(url):
        print(f"using the Prefect server running at {url}", file=sys.stderr, flush=True)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
        return
    yield None


@contextlib.contextmanager
def one_line_prefect_errors() -> Iterator[None]:
    """Prefect's own failures to start or reach its API, as one line naming what helps."""
    try:
        yield
    except RuntimeError as exc:
        if "ephemeral Prefect API" not in str(exc):
            raise
        raise PrefectUnavailable(
            f"Prefect's temporary API did not start within {os.environ.get(EPHEMERAL_TIMEOUT)} s "
            f"(a busy machine?): raise {EPHEMERAL_TIMEOUT}, or run `prefect server start` "
            "and set PREFECT_API_URL=http://127.0.0.1:4200/api"
        ) from None
    except httpx.HTTPError as exc:
        raise PrefectUnavailable(
            f"the Prefect API stopped answering ({type(exc).__name__}: {first_line(exc)}); "
            "check PREFECT_API_URL"
        ) from None


def check_api() -> str | None:
    """The configured PREFECT_API_URL (None: Prefect starts a temporary one), checked to answer."""
    configured = PREFECT_API_URL.value()
    if configured and not _healthy(configured):
        raise PrefectUnavailable(
            f"the Prefect API at {configured} (PREFECT_API_URL) does not answer; start it, "
            "or unset PREFECT_API_URL to use a temporary local one"
        )
    return configured or None


@contextlib.contextmanager
def _local_server(url: str, port: int) -> Iterator[None]:
    if _healthy(url):  # a Prefect server is already running there: share it
        yield
        return
    log.info("starting a Prefect server (scheduler and UI) at http://127.0.0.1:%d", port)
    command = [sys.executable, "-m", "prefect", "server", "start"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--analytics-off"]
    # Its own session: a SIGTERM to the process group of `flows serve` (systemd, `timeout`)
    # must not stop the API before the runs in flight have reported their end to it; this
    # process stops it last, below.
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, env=local_server_env(url), start_new_session=True
    )
    try:
        _wait_until_healthy(url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def local_server_env(url: str) -> dict[str, str]:
    """The environment of the Prefect server `flows serve` starts: its UI calls this API (by
    default it calls port 4200, whatever port the server listens on), and nothing it serves
    reaches beyond this machine (no analytics, no promotional content, no telemetry)."""
    return os.environ | {
        "PREFECT_UI_API_URL": url,
        "PREFECT_SERVER_UI_API_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "DO_NOT_TRACK": "1",
    }


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not _healthy(url):
        if process.poll() is not None:
            raise PrefectUnavailable(
                f"the Prefect server on {url} exited with status {process.returncode} "
                "(is the port taken? see its output above)"
            )
        if time.monotonic() > deadline:
            raise PrefectUnavailable(f"the Prefect server on {url} did not start in time")
        time.sleep(0.2)


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
