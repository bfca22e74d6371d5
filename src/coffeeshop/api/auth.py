"""The optional bearer token (`COFFEESHOP_API_TOKEN`) that protects the data endpoints."""

from __future__ import annotations

import hmac


class BearerAuth:
    def __init__(self, token: str | None) -> None:
        self._token = token.encode("ascii") if token else None

    @property
    def required(self) -> bool:
        return self._token is not None

    def accepts(self, authorization: bytes | str | None) -> bool:
        """True when no token is configured, or `Authorization: Bearer <token>` carries it."""
        if self._token is None:
            return True
        if not authorization:
            return False
        if isinstance(authorization, str):
            authorization = authorization.encode("latin-1", "replace")
        scheme, _, credentials = authorization.strip().partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._token)
