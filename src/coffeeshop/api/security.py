"""Browser-facing security headers on every response: a Content-Security-Policy, no
framing (the dashboard keeps the bearer token in its tab; a page that frames it could trick a
user into clicking in it), and no content-type sniffing (`X-Content-Type-Options: nosniff`:
quarantined raw input is served as text and must stay text).

Pages and assets come from the API's own origin only: no CDN, no inline script. The API docs
(Swagger UI, ReDoc) also need inline styles (both set `style` elements at run time) and ReDoc
a worker it starts from a `blob:` URL; the dashboard does not, so its policy does not allow
them. JSON responses carry the same headers: harmless there, and one rule for everything.

The middleware sits inside the cache's fast path, which must stay cheap: cached entries carry
`SECURITY_HEADERS` in their prebuilt header lists (`cache.make_entry`), and the middleware adds
the headers to every other response, unless it already has them.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]

_SELF_ONLY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
DOCS_PAGES = ("/docs", "/redoc")


def policy(**overrides: str) -> str:
    directives = {**_SELF_ONLY, **{k.replace("_", "-"): v for k, v in overrides.items()}}
    return "; ".join(f"{name} {value}" for name, value in directives.items())


DEFAULT_POLICY = policy()
DOCS_POLICY = policy(style_src="'self' 'unsafe-inline'", worker_src="'self' blob:")


def _headers(csp: str) -> Headers:
    return [
        (b"content-security-policy", csp.encode()),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        # Never guess a type from the bytes: `/quarantine/{id}/raw` is hostile input as
        # `text/plain`, which a sniffing browser could otherwise run as HTML or script.
        (b"x-content-type-options", b"nosniff"),
    ]


SECURITY_HEADERS = _headers(DEFAULT_POLICY)


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP response (the docs pages get `DOCS_POLICY`)."""

    def __init__(self, app: ASGIApp, *, docs_pages: Iterable[str] = DOCS_PAGES) -> None:
        self.app = app
        self.default = SECURITY_HEADERS
        self.by_path = {path: _headers(DOCS_POLICY) for path in docs_pages}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.by_path.get(scope["path"], self.default)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                if not any(name == b"x-frame-options" for name, _ in headers):
                    # A new list: a response's header list may be shared (the cache's are).
                    message["headers"] = [*headers, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
