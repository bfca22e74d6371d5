"""Settings of the API: the common ones (`coffeeshop.config.Settings`) plus its own.

`COFFEESHOP_API_TOKEN` (a bearer token for the data endpoints), `COFFEESHOP_CORS_ORIGINS`
(comma-separated origins allowed to call the API from a browser, or `*`) and
`COFFEESHOP_API_REFRESH` (how often the data version is re-read, in seconds).
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator

from coffeeshop.config import Settings, build_settings


class ApiSettings(Settings):
    api_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("COFFEESHOP_API_TOKEN"),
        description="bearer token required by the data endpoints (none: open)",
    )
    cors_origins: str = Field(
        "",
        validation_alias=AliasChoices("COFFEESHOP_CORS_ORIGINS"),
        description="comma-separated origins allowed by CORS, or *",
    )
    api_refresh: float = Field(
        0.15,
        ge=0.01,
        le=60,
        validation_alias=AliasChoices("COFFEESHOP_API_REFRESH"),
        description="seconds between two reads of the data version",
    )

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

    @property
    def cors_origin_list(self) -> list[str]:
        return _split(self.cors_origins)

    @property
    def token(self) -> str | None:
        return self.api_token.get_secret_value() if self.api_token is not None else None


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
