"""Settings of the API: the common ones (`coffeeshop.config.Settings`) plus its own.

`COFFEESHOP_API_TOKEN` (a bearer token for the data endpoints), `COFFEESHOP_CORS_ORIGINS`
(comma-separated origins allowed to call the API from a browser, or `*`) and
`COFFEESHOP_API_REFRESH` (how often the data version is re-read, in seconds),
`COFFEESHOP_API_ALLOWED_HOSTS` (host names answered besides localhost and IP addresses, see
`coffeeshop.api.hosts`), and the connection limits `COFFEESHOP_API_REQUEST_TIMEOUT`,
`COFFEESHOP_API_KEEP_ALIVE`, `COFFEESHOP_API_MAX_HEADER_BYTES`,
`COFFEESHOP_API_MAX_CONNECTIONS` and `COFFEESHOP_API_SEND_TIMEOUT` (see
`coffeeshop.api.connections`), and `COFFEESHOP_API_MAX_STREAMS` (open `/events` streams, see
`coffeeshop.api.routes.events`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import SecretStr, field_validator

from coffeeshop.api.connections import ConnectionLimits
from coffeeshop.api.hosts import is_host_pattern
from coffeeshop.config import Settings, build_settings, setting


class ApiSettings(Settings):
    api_token: SecretStr | None = setting(
        "COFFEESHOP_API_TOKEN", None, "bearer token required by the data endpoints (none: open)"
    )
    cors_origins: str = setting(
        "COFFEESHOP_CORS_ORIGINS", "", "comma-separated origins allowed by CORS, or *"
    )
    api_refresh: float = setting(
        "COFFEESHOP_API_REFRESH",
        0.05,
        "seconds between two reads of the data version",
        ge=0.01,
        le=60,
    )

    api_request_timeout: float = setting(
        "COFFEESHOP_API_REQUEST_TIMEOUT",
        10.0,
        "seconds a client has to send a whole request, from connecting or from "
        "the end of its previous response (else the connection is closed)",
        gt=0,
        le=3600,
    )
    api_keep_alive: int = setting(
        "COFFEESHOP_API_KEEP_ALIVE",
        5,
        "seconds an idle keep-alive connection stays open after a response",
        ge=1,
        le=3600,
    )
    api_max_header_bytes: int = setting(
        "COFFEESHOP_API_MAX_HEADER_BYTES",
        64 * 1024,
        "largest request line plus headers accepted (larger: 431)",
        ge=4096,
        le=16 * 1024 * 1024,
    )
    api_max_connections: int = setting(
        "COFFEESHOP_API_MAX_CONNECTIONS",
        1000,
        "open connections per worker (lowered to fit the open-file limit)",
        ge=1,
        le=1_000_000,
    )

    api_send_timeout: float = setting(
        "COFFEESHOP_API_SEND_TIMEOUT",
        30.0,
        "seconds a response may go without any of it being read by the client "
        "(else the connection is closed and the rest of the response dropped)",
        gt=0,
        le=3600,
    )
    api_max_streams: int = setting(
        "COFFEESHOP_API_MAX_STREAMS",
        100,
        "open /events streams per worker (more: 503, and the dashboard polls instead); "
        "kept below the connection cap so streams never take every connection",
        ge=0,
        le=100_000,
    )
    allowed_hosts: str = setting(
        "COFFEESHOP_API_ALLOWED_HOSTS",
        "",
        "comma-separated host names the API answers to besides localhost, IP "
        "addresses and the address it listens on (`*.example.com` for subdomains, `*` for any)",
    )

    currency: str | None = setting(
        "COFFEESHOP_CURRENCY",
        None,
        "ISO 4217 code the dashboard shows money in (e.g. EUR); none: plain numbers",
    )
    store_names: str = setting(
        "COFFEESHOP_STORE_NAMES",
        "",
        "store names for the dashboard: `1=Downtown,2=Airport`, or @FILE "
        "(a JSON object, or one `ID=NAME` per line)",
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        code = value.strip().upper()
        if len(code) != 3 or not code.isascii() or not code.isalpha():
            raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. EUR, USD, GBP)")
        return code

    @field_validator("store_names")
    @classmethod
    def _store_names(cls, value: str) -> str:
        parse_store_names(value)  # a bad mapping or an unreadable file fails at start
        return value

    @property
    def store_name_map(self) -> dict[int, str]:
        return parse_store_names(self.store_names)

    @field_validator("api_token")
    @classmethod
    def _non_empty_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        token = value.get_secret_value().strip()
        if not token.isascii() or not token.isprintable() or " " in token:
            raise ValueError("must be printable ASCII without spaces")
        return SecretStr(token)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in _split(value):
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(
                    f"{origin!r} is not an origin "
                    "(expected e.g. https://dashboard.example.com, or *)"
                )
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: str) -> str:
        for name in _split(value):
            if not is_host_pattern(name):
                raise ValueError(
                    f"{name!r} is not a host name (expected e.g. analytics.example.com, "
                    "*.example.com, or *)"
                )
        return value

    @property
    def allowed_host_list(self) -> list[str]:
        return [name.lower() for name in _split(self.allowed_hosts)]

    @property
    def cors_origin_list(self) -> list[str]:
        return _split(self.cors_origins)

    @property
    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            request_timeout=self.api_request_timeout,
            keep_alive=self.api_keep_alive,
            max_header_bytes=self.api_max_header_bytes,
            max_connections=self.api_max_connections,
            send_timeout=self.api_send_timeout,
        )

    @property
    def token(self) -> str | None:
        return self.api_token.get_secret_value() if self.api_token is not None else None


MAX_STORE_NAME = 60


def parse_store_names(value: str) -> dict[int, str]:
    """`1=Downtown,2=Airport` (commas or new lines), or `@path` to a file holding a JSON object
    `{"1": "Downtown"}` or one `ID=NAME` per line (`#` starts a comment)."""
    text = value.strip()
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the store names file {path}: {exc}") from None
        if text.lstrip().startswith("{"):
            try:
                loaded = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"{path} is not valid JSON: {exc}") from None
            if not isinstance(loaded, dict):
                raise ValueError(f"{path} must hold a JSON object of store id -> name")
            return _store_pairs([(str(k), v) for k, v in loaded.items()])
        separator = r"\n"  # in a file, a name may hold a comma
    else:
        separator = r"[,\n]"
    entries = [e for e in re.split(separator, text) if e.strip() and not e.strip().startswith("#")]
    pairs = []
    for entry in entries:
        key, sep, name = entry.partition("=")
        if not sep:
            raise ValueError(f"store names: {entry.strip()!r} is not ID=NAME")
        pairs.append((key, name))
    return _store_pairs(pairs)


def _store_pairs(pairs: list[tuple[str, Any]]) -> dict[int, str]:
    names: dict[int, str] = {}
    for key, name in pairs:
        key = key.strip()
        if not key.isdigit() or not key.isascii():
            raise ValueError(f"store names: {key!r} is not a store id (an integer >= 0)")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_STORE_NAME:
            raise ValueError(
                f"store names: the name of store {key} must be 1-{MAX_STORE_NAME} characters"
            )
        names[int(key)] = name.strip()
    return names


def _split(value: str) -> list[str]:
    return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]


def load_api_settings(**overrides: Any) -> ApiSettings:
    """API settings with command-line `overrides` (None means "not given") on top."""
    return build_settings(ApiSettings, **overrides)


def as_api_settings(settings: Settings) -> ApiSettings:
    """`settings` as `ApiSettings`; the API's own fields come from the environment when a plain
    `Settings` is given."""
    if isinstance(settings, ApiSettings):
        return settings
    return load_api_settings(**settings.model_dump(exclude_unset=False))
