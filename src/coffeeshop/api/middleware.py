"""An ASGI middleware that acts on HTTP requests only: anything else (lifespan, websockets)
passes straight through to the app it wraps."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass
class HttpMiddleware(ABC):
    """Subclasses (dataclasses: `app` first, then their options) implement `http`."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    @abstractmethod
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer (or pass on) one HTTP request."""
