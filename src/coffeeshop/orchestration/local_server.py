"""The Prefect server `coffeeshop flows serve` starts: Prefect's own application (API, UI,
scheduler and the other services, as `prefect server start` runs it) on 127.0.0.1:PORT, which
answers only requests addressed to it by name (Host `127.0.0.1` or `localhost`: a page that
rebinds its own name to 127.0.0.1 gets 400). Its other protections are Prefect settings in its
environment (`server.local_server_env`): CORS for its own origin only, CSRF protection on.

Run as `python -m coffeeshop.orchestration.local_server PORT`. It runs in a session of its own
(a signal to the group of `flows serve` must not stop it before the runs have reported their
end), so it stops itself when the process that started it is gone (even killed with SIGKILL).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

__all__ = ["LOCAL_HOSTS", "main"]

LOCAL_HOSTS = ("127.0.0.1", "localhost")


def main(argv: list[str]) -> None:
    port = int(argv[1])
    import uvicorn
    from prefect.server.api.server import create_app
    from prefect.settings import PREFECT_SERVER_API_KEEPALIVE_TIMEOUT
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    _stop_when_orphaned(os.getppid())
    app = TrustedHostMiddleware(create_app(final=True), allowed_hosts=list(LOCAL_HOSTS))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_keep_alive=PREFECT_SERVER_API_KEEPALIVE_TIMEOUT.value(),
    )


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM to this process (uvicorn stops gracefully) once `parent` has exited."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


if __name__ == "__main__":
    main(sys.argv)
