"""The one-command demo: live receipt traffic, the sync engine and the API with its dashboard,
in one process (three threads), over a folder that holds an SQLite database and a JSONL file.

    generator thread  --appends-->  receipts.jsonl  --tailed by-->  engine thread (Syncer)
                                                                          |
    browser  <--polls--  uvicorn thread (API + dashboard)  <--reads--  analysis.db

The first run seeds the file with some history so the charts have shape; a later run reuses
the folder and carries on; `fresh` starts over. SIGINT or SIGTERM stops all three parts
(the engine after its current batch) and `run` returns normally.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coffeeshop.demo.folder import file_size, folder_lock, has_data, remove_files, seed_history
from coffeeshop.demo.options import DEMO_CURRENCY, DEMO_FILES, DemoOptions, demo_store_names
from coffeeshop.errors import CoffeeshopError, ConfigError
from coffeeshop.signals import StopOnSignal

if TYPE_CHECKING:
    from coffeeshop.api.settings import ApiSettings

log = logging.getLogger("coffeeshop.demo.runner")

LIVE_LINES = 10**15  # "forever": the live generator runs until stopped
JOIN_TIMEOUT = 15.0


class PartFailed(CoffeeshopError):
    """A part of the demo (engine, generator, web server) ended before the demo was stopped."""


@dataclass(slots=True)
class Progress:
    """What the engine thread reports after each batch (this run only)."""

    applied: int = 0
    quarantined: int = 0
    batches: int = 0
    # Changes applied by the engine's first pass, up to the end of what the file held (the
    # seeded history, or a reused folder's backlog): not live traffic. None: still applying.
    history: int | None = None

    @property
    def live(self) -> int:
        return self.applied - self.history if self.history is not None else 0


def api_settings(options: DemoOptions) -> ApiSettings:
    """The API's settings for the demo's database: the demo's store names and currency unless
    COFFEESHOP_STORE_NAMES or COFFEESHOP_CURRENCY (environment or `.env`) set the user's."""
    from coffeeshop.api.settings import load_api_settings

    given = load_api_settings(db=options.db_url, async_db="")
    return load_api_settings(
        db=options.db_url,
        async_db="",
        currency=None if given.currency else DEMO_CURRENCY,
        store_names=None if given.store_names.strip() else demo_store_names(options.stores),
    )


class Demo:
    """Runs the demo until `stop` is set (by a signal when `run` installs the handlers)."""

    def __init__(self, options: DemoOptions, *, stop: StopOnSignal | None = None) -> None:
        self.options = options
        self.stop = stop or StopOnSignal(
            log, "%s: stopping (again to force)", on_repeat=self._force_exit
        )
        self.progress = Progress()
        self._errors: list[BaseException] = []
        self._server: Any = None
        self._token_required = False

    # -- the whole run ---------------------------------------------------------------------------

    def run(self, *, handle_signals: bool = True) -> None:
        """Prepare the folder, start the three parts, wait for a signal, stop them all.

        Raises `ConfigError` (one line for the user) when the port is taken, another demo
        uses the folder, or a part fails; returns normally after a signal.
        """
        with self.stop.install() if handle_signals else contextlib.nullcontext():
            from coffeeshop.api.server import check_port

            check_port(self.options.host, self.options.port)  # fail before touching files
            with folder_lock(self.options.directory):
                self._prepare()
                if self.stop.is_set():
                    return
                self._serve()

    def _serve(self) -> None:
        options = self.options
        started = time.monotonic()
        threads = [
            self._thread("engine", self._run_engine),
            self._thread("generator", self._run_generator),
            self._thread("api", self._run_api),
        ]
        try:
            self._wait_for_api()
            self._watch()
        finally:
            self.stop.set()
            if self._server is not None:
                self._server.should_exit = True
            for thread in threads:
                thread.join(JOIN_TIMEOUT)
                if thread.is_alive():
                    log.warning("the %s did not stop within %.0f s", thread.name, JOIN_TIMEOUT)
        minutes, seconds = divmod(round(time.monotonic() - started), 60)
        log.info(
            "stopped after %dm%02ds: %s change(s) applied (%s live), %s quarantined; the folder "
            "%s is kept (run again to continue, or with --fresh to start over)",
            minutes,
            seconds,
            f"{self.progress.applied:,}",
            f"{self.progress.live:,}",
            f"{self.progress.quarantined:,}",
            options.directory,
        )
        if self._errors:
            raise self._errors[0]

    def _watch(self) -> None:
        """A progress line now and then, until stopped (by a signal, or a part that ended):
        the history being applied, then the live traffic (the history not counted in it)."""
        every = self.options.status_every
        progress = self.progress
        last = 0
        while not self.stop.wait(every if every > 0 else None):
            if progress.history is None:
                log.info("applying the history: %s change(s) so far", f"{progress.applied:,}")
                continue
            live = progress.live
            log.info(
                "live: %s change(s) in the last %.0f s; %s live and %s from the history "
                "applied, %s quarantined so far",
                f"{live - last:,}",
                every,
                f"{live:,}",
                f"{progress.history:,}",
                f"{progress.quarantined:,}",
            )
            last = live

    # -- the folder ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Reset (fresh), seed a new folder with history, and create the tables."""
        options = self.options
        if options.fresh:
            removed = remove_files(options.directory, DEMO_FILES)
            log.info("fresh start in %s: removed %s", options.directory, ", ".join(removed) or "-")
        source = options.source_path
        if not has_data(source):
            if options.db_path.exists():  # its checkpoint would not match a new file
                remove_files(options.directory, DEMO_FILES[2:])
            seed_history(self.options, source, self.stop)
        else:
            log.info("reusing %s (%s)", options.directory, file_size(source))
        if self.stop.is_set():
            return
        from coffeeshop.store import Store

        with Store(options.db_url) as store:
            store.upgrade()

    # -- the three parts -------------------------------------------------------------------------

    def _thread(self, name: str, target: Callable[[], None]) -> threading.Thread:
        """Run `target` in a thread; when it ends before the demo stops, the demo stops."""

        def guarded() -> None:
            try:
                target()
            except SystemExit:  # uvicorn exits when it cannot start; it has logged why
                if not self.stop.is_set():
                    self._errors.append(PartFailed(f"the {name} could not start"))
            except Exception as exc:
                log.debug("the %s failed", name, exc_info=True)
                self._errors.append(
                    exc
                    if isinstance(exc, CoffeeshopError)
                    else PartFailed(f"the {name} failed: {exc}")
                )
            else:
                if not self.stop.is_set():
                    self._errors.append(PartFailed(f"the {name} stopped by itself"))
            finally:
                self.stop.set()

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        return thread

    def _run_engine(self) -> None:
        from coffeeshop.config import load_settings
        from coffeeshop.pipeline.engine import SyncReport
        from coffeeshop.pipeline.facade import build_syncer
        from coffeeshop.store import Store

        options = self.options
        settings = load_settings(db=options.db_url, source=str(options.source_path))
        progress = self.progress
        first = Progress()  # what the first pass applied; the live pass's counts add to it

        def on_batch(report: SyncReport) -> None:
            progress.applied = first.applied + report.applied
            progress.quarantined = first.quarantined + report.quarantined
            progress.batches = first.batches + report.batches

        with Store(options.db_url) as store:
            syncer = build_syncer(
                store,
                settings,
                on_batch=on_batch,
                read_ahead=False,  # no second process: a terminal's Ctrl-C would reach it too
            )
            # First what the file holds, then the live traffic: the progress lines tell
            # the history from the live changes.
            on_batch(syncer.run(follow=False, stop=self.stop))
            first.applied, first.quarantined = progress.applied, progress.quarantined
            first.batches = progress.batches
            progress.history = progress.applied
            if not self.stop.is_set():
                on_batch(syncer.run(follow=True, stop=self.stop))

    def _run_generator(self) -> None:
        from coffeeshop.config import load_settings
        from coffeeshop.demo.checks import local_now
        from coffeeshop.demo.generator import ReceiptGenerator
        from coffeeshop.demo.traffic import TrafficModel
        from coffeeshop.demo.writer import write_jsonl, write_live

        options = self.options
        zone = load_settings().zone()  # the zone of the API's "today": COFFEESHOP_TIMEZONE
        generator = ReceiptGenerator(
            seed=time.time_ns(),  # _ids of its own, different from any earlier run's
            stores=options.stores,
            update_share=options.update_share,
            delete_share=options.delete_share,
            invalid_share=options.invalid_share,
            live=True,
            zone=zone,
        )
        if options.rate is None:
            model = TrafficModel(options.per_day, options.stores, floor=options.live_floor)
            write_live(
                options.source_path,
                generator=generator,
                model=model,
                stop=self.stop,
                now=lambda: local_now(zone),
            )
            return
        write_jsonl(
            options.source_path,
            LIVE_LINES,
            generator=generator,
            rate=options.rate,
            stop=self.stop,
        )

    def _run_api(self) -> None:
        import uvicorn

        from coffeeshop.api.app import create_app
        from coffeeshop.api.connections import protocol_options

        options = self.options
        settings = api_settings(options)
        self._token_required = settings.token is not None
        config = uvicorn.Config(
            create_app(settings, bind_host=options.host),
            host=options.host,
            port=options.port,
            **protocol_options(settings.connection_limits),  # the limits `serve` has
            log_config=None,  # the demo's logging, set up by the command
            log_level=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self._server = server = uvicorn.Server(config)
        if self.stop.is_set():
            return
        server.run()  # outside the main thread uvicorn leaves the signals to us

    def _wait_for_api(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.stop.wait(0.05):
            server = self._server
            if server is not None and server.started:
                token = " (the page asks for the API token)" if self._token_required else ""
                rate = self.options.rate
                floor = self.options.live_floor
                traffic = (
                    f"{rate:g} receipts/s"
                    if rate is not None
                    else f"~{self.options.per_day:,} receipts a day in the stores' rhythm "
                    f"(never under {floor:g}/s: at night, the stores open then)"
                )
                log.info(
                    "dashboard on %s%s; live traffic %s into %s; Ctrl-C stops",
                    self.options.url,
                    token,
                    traffic,
                    self.options.source_path,
                )
                return
            if time.monotonic() > deadline:
                raise ConfigError(f"the web server did not start within {timeout:.0f} s")

    def _force_exit(self) -> None:
        """A second signal: the web server stops without waiting for its connections."""
        if self._server is not None:
            self._server.force_exit = True
