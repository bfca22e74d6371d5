"""Settings from the environment, a `.env` file and command-line options.

The original deployment's names keep working: `SQL_DSN`, `ASYNC_SQL_DSN`, `MONGO_URI`.
Everything else is `COFFEESHOP_*`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from coffeeshop.errors import ConfigError

if TYPE_CHECKING:
    from coffeeshop.sources.base import Source

DEFAULT_DB = "sqlite:///analysis.db"


def setting(name: str, default: Any, description: str | None = None, **limits: Any) -> Any:
    """A settings field read from the environment variable `name`, with its default, its
    description and pydantic's `limits` (ge, le, …)."""
    return Field(default, validation_alias=AliasChoices(name), description=description, **limits)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    db: str = Field(
        DEFAULT_DB,
        validation_alias=AliasChoices("COFFEESHOP_DB", "SQL_DSN"),
        description="SQLAlchemy URL of the analysis database",
    )
    async_db: str | None = Field(None, validation_alias=AliasChoices("ASYNC_SQL_DSN"))
    source: str | None = Field(
        None,
        validation_alias=AliasChoices("COFFEESHOP_SOURCE", "MONGO_URI"),
        description="a JSONL file path, or a source URI such as mongodb://…",
    )
    mongo_database: str = Field("coffeeshop", validation_alias="COFFEESHOP_MONGO_DATABASE")
    mongo_collection: str = Field("receipt", validation_alias="COFFEESHOP_MONGO_COLLECTION")
    full_document: str = Field(
        "updateLookup",
        pattern="^(updateLookup|whenAvailable)$",
        validation_alias="COFFEESHOP_FULL_DOCUMENT",
    )
    wait_for_collection: bool = Field(
        False,
        validation_alias="COFFEESHOP_WAIT_FOR_COLLECTION",
        description="MongoDB: wait for a collection that does not exist yet (else refused)",
    )
    on_history_lost: str = Field(
        "rebuild", pattern="^(rebuild|stop)$", validation_alias="COFFEESHOP_ON_HISTORY_LOST"
    )
    timezone: str | None = Field(None, validation_alias=AliasChoices("COFFEESHOP_TIMEZONE"))
    batch_size: int = Field(5000, ge=1, le=100_000, validation_alias="COFFEESHOP_BATCH_SIZE")
    batch_wait: float = Field(0.2, gt=0, le=60, validation_alias="COFFEESHOP_BATCH_WAIT")
    poll_interval: float = Field(0.05, gt=0, le=60, validation_alias="COFFEESHOP_POLL_INTERVAL")
    log_level: str = Field("INFO", validation_alias="COFFEESHOP_LOG_LEVEL")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Berlin)") from None
        return value or None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR, got {value!r}")
        return level

    def open_source(self) -> Source:
        """The configured source, of the kind its spec names (`coffeeshop.sources`)."""
        from coffeeshop.sources import SourceOptions, open_source

        options = SourceOptions(
            database=self.mongo_database,
            collection=self.mongo_collection,
            full_document=self.full_document,
            wait_for_collection=self.wait_for_collection,
        )
        return open_source(self.source, options)

    def zone(self) -> dt.tzinfo:
        if self.timezone:
            return ZoneInfo(self.timezone)
        local = dt.datetime.now().astimezone().tzinfo
        assert local is not None
        return local

    def today(self) -> dt.date:
        """The local date in `COFFEESHOP_TIMEZONE` (default: the machine's zone)."""
        return dt.datetime.now(self.zone()).date()


S = TypeVar("S", bound=Settings)


def load_settings(**overrides: Any) -> Settings:
    """Settings with command-line `overrides` (None means "not given") on top."""
    return build_settings(Settings, **overrides)


def build_settings(model: type[S], **overrides: Any) -> S:
    """`model` (Settings or a subclass) from the environment with `overrides` (None means
    "not given") on top; a bad value is one `ConfigError` naming its environment variable."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return model(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        # A value given on the command line is reported as its option, not its variable.
        name = _OPTIONS.get(field, "") if field in given else _env_name(model, field)
        name = name or _env_name(model, field)
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"bad configuration {name}: {message}") from None


_OPTIONS = {  # settings fields set by a command-line option of the same meaning
    "db": "--db",
    "source": "--source",
    "batch_size": "--batch-size",
    "batch_wait": "--batch-wait",
    "mongo_database": "--database",
    "mongo_collection": "--collection",
    "full_document": "--full-document",
    "on_history_lost": "--on-history-lost",
    "wait_for_collection": "--wait-for-collection",
}


def _env_name(model: type[Settings], field: str) -> str:
    info = model.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices):
        return "/".join(str(choice) for choice in alias.choices)
    if isinstance(alias, str):
        return alias
    return field
