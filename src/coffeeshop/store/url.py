"""Database URLs and errors as one line: parsing with the package's drivers, and messages
with no credential in them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from coffeeshop.errors import ConfigError
from coffeeshop.redact import mask_text, mask_url
from coffeeshop.store.dialects import canonical, dialect_of


def normalize_url(raw: str) -> URL:
    """Parse a SQLAlchemy URL, picking the drivers this package ships with (each dialect
    completes its own); `ConfigError` for anything else."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"not a database URL: {mask_url(raw)!r} "
            "(expected e.g. sqlite:///analysis.db or mysql+pymysql://user@host:3306/db)"
        ) from None
    url = canonical(url)  # postgres:// (libpq's and Heroku's spelling)
    return dialect_of(url).normalize(url)


def describe_error(exc: BaseException, safe_url: str, *secrets: str) -> str:
    """One line for a database error, with no credential in it: `safe_url` is already masked
    (`redact.mask_url`); the driver's own text is masked too, and `secrets` (the password
    and secret options of the URL in use) are scrubbed from it wherever they appear."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    detail = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        detail = f"({args[0]}) {args[1]}"
    return f"cannot use database {safe_url}: {mask_text(detail, *secrets)}"
