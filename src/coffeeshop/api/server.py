"""Run the API under uvicorn, in one process or several.

Several workers each listen on their own socket bound with SO_REUSEPORT (Linux), so the
kernel spreads connections evenly over them. uvicorn's own `--workers` shares one socket,
and under load one worker can end up with nearly all the connections (60 of 64 in the
benchmark), which doubles its latency. Elsewhere uvicorn's multiprocess mode is used.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from typing import Any

from coffeeshop.api.connections import ConnectionLimits, protocol_options
from coffeeshop.errors import ConfigError

log = logging.getLogger("coffeeshop.api")

APP_FACTORY = "coffeeshop.api.app:create_app_from_env"
STARTUP_FAILURE = 3  # uvicorn's exit status when a worker cannot start


def serve(app: Any, *, host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Serve `app` (workers == 1) or `APP_FACTORY` in `workers` processes, until a signal.

    Every connection gets the limits of `coffeeshop.api.connections` from the app's settings
    (request timeout, head size, connection cap)."""
    check_port(host, port)
    import uvicorn

    limits: ConnectionLimits = app.state.api.settings.connection_limits
    options = {**protocol_options(limits), **options}
    log.info(
        "limits: a request within %g s, heads up to %d bytes, %d connections per worker",
        limits.request_timeout,
        limits.max_header_bytes,
        options["http"].keywords["max_connections"],
    )

    if workers == 1:
        uvicorn.run(app, host=host, port=port, **options)
        return
    with multiprocess_metrics():
        if not _balanced_sockets_supported():
            uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, **options)
            return
        Supervisor(host=host, port=port, workers=workers, options=options).run()


def check_port(host: str, port: int) -> None:
    """Fail with one line when something already listens there (SO_REUSEPORT would not)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def multiprocess_metrics() -> Iterator[None]:
    """A fresh directory for prometheus-client's multiprocess mode, removed at exit, unless
    PROMETHEUS_MULTIPROC_DIR is already set (then its owner wipes it between runs)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    path = tempfile.mkdtemp(prefix="coffeeshop-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(path, ignore_errors=True)


def _balanced_sockets_supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class Supervisor:
    """Starts the workers, restarts one that dies, and stops them all on SIGINT/SIGTERM."""

    def __init__(self, *, host: str, port: int, workers: int, options: dict[str, Any]) -> None:
        self.host = host
        self.port = port
        self.count = workers
        self.options = options
        self._context = multiprocessing.get_context("spawn")
        self._stopping = False

    def run(self) -> None:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        processes = [self._start() for _ in range(self.count)]
        log.info(
            "%d workers on http://%s:%d (one SO_REUSEPORT socket each)",
            self.count,
            self.host,
            self.port,
        )
        try:
            while not self._stopping:
                time.sleep(0.2)
                for n, process in enumerate(processes):
                    if process.is_alive() or self._stopping:
                        continue
                    if process.exitcode == STARTUP_FAILURE:
                        log.error("a worker could not start; stopping")
                        self._stopping = True
                        break
                    log.warning(
                        "worker %s exited (%s); starting another", process.pid, process.exitcode
                    )
                    processes[n] = self._start()
        finally:
            self._stop(processes)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stopping = True

    def _start(self) -> BaseProcess:
        process = self._context.Process(
            target=run_worker, args=(self.host, self.port, self.options), daemon=False
        )
        process.start()
        return process

    def _stop(self, processes: list[BaseProcess]) -> None:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes:
            process.join(timeout=max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def run_worker(host: str, port: int, options: dict[str, Any]) -> None:
    """One worker process: its own listening socket, the app built from the environment."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])
