"""The Prefect API the commands talk to: PREFECT_API_URL; the Prefect server `flows serve`
starts for its database (in that database's own Prefect home, `orchestration.home`, stopped
with it), which `flows run` and `flows trigger` find; a Prefect server on 127.0.0.1:--port;
or the temporary API Prefect starts on its own. And Prefect's failures to reach it, as one
line."""

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

from coffeeshop.errors import CoffeeshopError, ConfigError
from coffeeshop.orchestration.home import ServerHome
from coffeeshop.orchestration.local_server import LOCAL_HOSTS
from coffeeshop.orchestration.settings import EPHEMERAL_TIMEOUT

__all__ = [
    "DEFAULT_PORT",
    "PrefectUnavailable",
    "check_api",
    "first_line",
    "healthy",
    "local_server_env",
    "one_line_prefect_errors",
    "prefect_api",
    "run_api",
    "served_api",
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
def prefect_api(*, port: int, home: ServerHome) -> Iterator[str]:
    """The Prefect API to serve against: PREFECT_API_URL when set; else a Prefect server
    started for the duration on 127.0.0.1:`port` in the database's own Prefect `home`, its
    URL recorded there while it runs. Schedules need a server: the temporary API Prefect
    starts on its own runs no scheduler."""
    configured = check_api()
    if configured:
        yield configured
        return
    url = f"http://127.0.0.1:{port}/api"
    with (
        _local_server(url, port, home),
        home.recording(url),
        temporary_settings(updates={PREFECT_API_URL: url}),
    ):
        yield url


@contextlib.contextmanager
def run_api(*, port: int, home: ServerHome) -> Iterator[str | None]:
    """The Prefect API for `coffeeshop flows run`: PREFECT_API_URL when set; else the server
    of a `coffeeshop flows serve` of the same database; else a Prefect server already running
    on 127.0.0.1:`port` (no start-up to wait for either way); else None: Prefect starts its
    temporary API (see EPHEMERAL_TIMEOUT)."""
    configured = check_api()
    if configured:
        yield configured
        return
    served = served_api(home)
    url = served or f"http://127.0.0.1:{port}/api"
    if served or healthy(url):
        whose = "of `coffeeshop flows serve` " if served else ""
        print(f"using the Prefect server {whose}running at {url}", file=sys.stderr, flush=True)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
        return
    yield None


def served_api(home: ServerHome) -> str | None:
    """The API URL of the `flows serve` server of `home`'s database, when the `flows serve`
    that recorded it still runs (after a SIGKILL its record stays, and another server may
    answer on that port since) and it answers."""
    url, pid = home.recorded_url(), home.recorded_pid()
    if url is None or pid is None or not _running(pid):
        return None
    return url if healthy(url) else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


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
    if configured and not healthy(configured):
        raise PrefectUnavailable(
            f"the Prefect API at {configured} (PREFECT_API_URL) does not answer; start it, "
            "or unset PREFECT_API_URL to use a temporary local one"
        )
    return configured or None


@contextlib.contextmanager
def _local_server(url: str, port: int, home: ServerHome) -> Iterator[None]:
    serving = served_api(home)
    if serving:  # two servers on one Prefect home (one SQLite file) would corrupt it
        raise ConfigError(
            f"`coffeeshop flows serve` (pid {home.recorded_pid()}) already serves this "
            f"database, with its Prefect server at {serving}"
        )
    if healthy(url):
        raise ConfigError(
            f"a Prefect server already answers on port {port} (another project's?): give "
            f"`--port` a free port, or serve on that server with PREFECT_API_URL={url}"
        )
    home.create()
    log.info("starting a Prefect server (scheduler and UI) at http://127.0.0.1:%d", port)
    command = [sys.executable, "-m", "coffeeshop.orchestration.local_server", str(port)]
    # Its own session: a SIGTERM to the process group of `flows serve` (systemd, `timeout`)
    # must not stop the API before the runs in flight have reported their end to it; this
    # process stops it last, below.
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        env=local_server_env(url, home),
        start_new_session=True,
    )
    try:
        _wait_untilhealthy(url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def local_server_env(url: str, home: ServerHome) -> dict[str, str]:
    """The environment of the Prefect server `flows serve` starts: the database's own Prefect
    home (its runs only, in the UI too); its UI calls this API (by default it calls port 4200,
    whatever port the server listens on); a browser may call it from its own origin only, and
    a changing request needs Prefect's CSRF token (a page elsewhere cannot start a run); and
    nothing it serves reaches beyond this machine (no analytics, no promotional content, no
    telemetry)."""
    port = url.split(":")[2].split("/")[0]
    origins = ",".join(f"http://{host}:{port}" for host in LOCAL_HOSTS)
    return os.environ | {
        "PREFECT_HOME": str(home.prefect_home),
        "PREFECT_UI_API_URL": url,
        "PREFECT_SERVER_UI_API_URL": url,
        "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": origins,
        "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "DO_NOT_TRACK": "1",
    }


def _wait_untilhealthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not healthy(url):
        if process.poll() is not None:
            raise PrefectUnavailable(
                f"the Prefect server on {url} exited with status {process.returncode} "
                "(is the port taken? see its output above)"
            )
        if time.monotonic() > deadline:
            raise PrefectUnavailable(f"the Prefect server on {url} did not start in time")
        time.sleep(0.2)


def healthy(api_url: str) -> bool:
    """Whether a Prefect API answers at `api_url`."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
