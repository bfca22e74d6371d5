"""Per-database behaviour behind one interface (`Dialect`), and the registry of those known.

Adding a database: a module here with a `Dialect` subclass (found there: `KNOWN` is every
module's dialect, and the message refusing another database, the store, the engine's retries,
the API and the tests' `db_url` fixture are built from it); its driver as an extra in
`pyproject.toml`; its URL in the README (counted in the README's "Adding a database").
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from sqlalchemy.engine import URL

from coffeeshop.errors import ConfigError
from coffeeshop.redact import mask_url
from coffeeshop.store.dialects.base import Dialect

# Modules of this package that hold no dialect (the interface; MySQL's guarded file upload,
# imported only when a bulk load runs: importing it loads the driver).
_NOT_DIALECTS = frozenset({"base", "local_infile"})


def _discover() -> tuple[Dialect, ...]:
    """One instance of each concrete `Dialect` defined in a module of this package, in the
    order of their modules' names."""
    found: list[Dialect] = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name in _NOT_DIALECTS or module.name.startswith("_"):
            continue
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        found += [
            value()
            for value in vars(loaded).values()
            if inspect.isclass(value)
            and issubclass(value, Dialect)
            and value.__module__ == loaded.__name__
            and not inspect.isabstract(value)
        ]
    return tuple(found)


KNOWN: tuple[Dialect, ...] = _discover()
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
