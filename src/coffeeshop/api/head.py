"""HEAD answered as GET without a body (HTTP's rule), on every path: `/`, `/health` and the
data endpoints. FastAPI routes declared with GET alone answer HEAD with 405, which breaks
uptime checks and `curl -I`. The scope says it was HEAD (`HEAD_KEY`), for an endless stream
that would otherwise run on with nothing sent."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEAD_KEY = "coffeeshop.head"  # True in the scope of a HEAD request answered as GET


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the status line and headers (Content-Length included) stay GET's
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET", HEAD_KEY: True}, receive, headers_only)
