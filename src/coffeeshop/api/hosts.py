"""The Host allow-list: the API answers only to names it knows, against DNS rebinding.

A web page on `attacker.example` whose name is made to resolve to 127.0.0.1 is same-origin
with the API as far as the browser is concerned, so without a token (the default, and what
the demo runs) it could read every table. Its requests carry `Host: attacker.example`, which
is what this middleware refuses (`400`). Allowed:

* any IP address written as one (`127.0.0.1`, `192.168.1.20`, `[::1]`): a name cannot be
  rebound to them, so any address the API is reached by works;
* `localhost` (and names under `.localhost`);
* the name given to `serve --host` (a wildcard bind also allows this machine's host name);
* the names of `COFFEESHOP_API_ALLOWED_HOSTS` (`*.example.com` for subdomains, `*` for any,
  e.g. behind a proxy that checks the name itself);
* a request without a Host header (HTTP/1.0 clients; a browser always sends one).

`/health` and `/ready` answer whatever the Host (probes ask by any name; they reveal no
data). Redirects (`/store_monthly/` to `/store_monthly`) are made relative, so a `Location`
never carries the request's Host. The check is a dictionary lookup per request once a name
has been seen.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from starlette.types import Message, Receive, Scope, Send

from coffeeshop.api.middleware import HttpMiddleware

OPEN_PATHS = frozenset({"/health", "/ready"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
MAX_REMEMBERED = 256  # distinct Host values whose verdict is cached

_NAME = re.compile(r"^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_-]{1,63}\.?$")

REFUSED = (
    b"Host not allowed. To reach the API by this name, add it to "
    b"COFFEESHOP_API_ALLOWED_HOSTS (see the README)."
)


def is_host_pattern(value: str) -> bool:
    """A name the allow-list takes: a host name, `*.domain`, or `*`."""
    return value == "*" or bool(_NAME.match(value.lower()))


def allowed_names(configured: Iterable[str], bind_host: str | None) -> list[str]:
    """The configured names plus what `serve --host` implies: its name, or this machine's
    host name for a wildcard bind."""
    names = [name.lower() for name in configured]
    if bind_host is not None:
        if bind_host in WILDCARD_BINDS:
            names.append(socket.gethostname().lower())
        elif not _is_ip(bind_host.strip("[]")):
            names.append(bind_host.lower())
    return names


def host_name(header: str) -> str:
    """The name of a Host header value, lower case, without port, brackets or final dot."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit():
        value = name
    return value.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostAllowList:
    """Decides whether a Host header value is allowed (see the module's docstring)."""

    def __init__(self, names: Iterable[str]) -> None:
        names = [name.lower().rstrip(".") for name in names]
        self.any = "*" in names
        self.exact = frozenset({"localhost", *(n for n in names if not n.startswith("*."))})
        self.suffixes = (".localhost", *(n[1:] for n in names if n.startswith("*.")))
        self._seen: dict[str, bool] = {}

    def allows(self, header: str) -> bool:
        verdict = self._seen.get(header)
        if verdict is None:
            name = host_name(header)
            verdict = self.any or name in self.exact or name.endswith(self.suffixes) or _is_ip(name)
            if len(self._seen) >= MAX_REMEMBERED:
                self._seen.clear()
            self._seen[header] = verdict
        return verdict


@dataclass
class HostCheckMiddleware(HttpMiddleware):
    """`400` for a Host not on the list; relative `Location` on every redirect."""

    allow_list: HostAllowList

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = _header(scope, b"host")
        if (
            host is not None
            and not self.allow_list.allows(host)
            and scope["path"] not in OPEN_PATHS
        ):
            await _refuse(send)
            return

        async def relative_redirects(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                message = {**message, "headers": _relative_location(message["headers"])}
            await send(message)

        await self.app(scope, receive, relative_redirects)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _relative_location(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`Location: http://any.host/path?q` becomes `Location: /path?q`."""
    rewritten = []
    for key, value in headers:
        if key.lower() == b"location":
            parts = urlsplit(value.decode("latin-1"))
            if parts.netloc or parts.scheme:
                path = "/" + parts.path.lstrip("/")  # never `//other.host/...`
                value = urlunsplit(("", "", path, parts.query, parts.fragment)).encode("latin-1")
        rewritten.append((key, value))
    return rewritten


async def _refuse(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(REFUSED)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": REFUSED})
