"""Per-database behaviour behind one interface (`Dialect`), and the registry of those known.

Adding a database: a module here with a `Dialect` subclass, listed in `KNOWN` below (the
message refusing another database is built from it); its driver as an extra in
`pyproject.toml`, column types that differ in `store/schema.py`, a parameter of
`tests/conftest.py`'s `db_url`, its URL in the README (6 files, counted in the README's
"Adding a database").
"""

from __future__ import annotations

from sqlalchemy.engine import URL

from coffeeshop.errors import ConfigError
from coffeeshop.redact import mask_url
from coffeeshop.store.dialects.base import Dialect
from coffeeshop.store.dialects.mysql import MySQL
from coffeeshop.store.dialects.postgresql import PostgreSQL
from coffeeshop.store.dialects.sqlite import SQLite

KNOWN: tuple[Dialect, ...] = (SQLite(), MySQL(), PostgreSQL())
_BY_BACKEND = {backend: dialect for dialect in KNOWN for backend in dialect.backends}
_ALIASES = {alias: dialect.backends[0] for dialect in KNOWN for alias in dialect.aliases}
SUPPORTED = "use " + " or ".join(
    (", ".join(dialect.example for dialect in KNOWN[:-1]), KNOWN[-1].example)
)


def dialect_named(backend: str) -> Dialect:
    """The dialect of a SQLAlchemy backend name; `KeyError` for one this package lacks."""
    try:
        return _BY_BACKEND[backend]
    except KeyError:
        raise KeyError(f"no coffeeshop dialect for the {backend!r} database") from None


def canonical(url: URL) -> URL:
    """`url` with another spelling of a backend (`postgres://`) replaced by SQLAlchemy's."""
    backend, plus, driver = url.drivername.partition("+")
    if backend in _ALIASES:
        url = url.set(drivername=_ALIASES[backend] + plus + driver)
    return url


def dialect_of(url: URL) -> Dialect:
    """The dialect of `url`; one `ConfigError` line for a database this package lacks."""
    dialect = _BY_BACKEND.get(url.get_backend_name())
    if dialect is None:
        raise ConfigError(
            f"unsupported database {url.get_backend_name()!r} in {mask_url(url)}: {SUPPORTED}"
        )
    return dialect


__all__ = [
    "KNOWN",
    "SUPPORTED",
    "Dialect",
    "canonical",
    "dialect_named",
    "dialect_of",
]
