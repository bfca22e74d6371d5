"""The address of an existing Dask cluster's scheduler, checked before anything starts.

Prefect-free (the commands call it before Prefect is imported): a malformed address, or one
where nothing accepts a connection within `CONNECT_TIMEOUT` seconds, is one line (exit 2)
instead of Dask's connect retries followed by Prefect's tracebacks.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from coffeeshop.errors import ConfigError

__all__ = ["CONNECT_TIMEOUT", "check_scheduler"]

CONNECT_TIMEOUT = 10.0  # seconds for the scheduler to accept a connection
_SCHEMES = ("tcp", "tls", "ucx", "inproc")


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse an address that is not `tcp://host:port` (or tls://, ucx://, inproc://), and a
    TCP/TLS one where nothing accepts a connection within `timeout`."""
    parts = urlsplit(address)
    if parts.scheme not in _SCHEMES or "://" not in address:
        raise ConfigError(
            f"bad Dask scheduler address {address!r}: expected tcp://host:port (or tls://…)"
        )
    if parts.scheme not in ("tcp", "tls"):
        return
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ConfigError(f"bad Dask scheduler address {address!r}: expected tcp://host:port")
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise ConfigError(f"no Dask scheduler at {address}: {reason}") from None
