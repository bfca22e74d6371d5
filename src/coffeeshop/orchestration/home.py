"""The home of the Prefect server `coffeeshop flows serve` starts: one per analysis database.

Each database gets a directory of its own under the state directory (`COFFEESHOP_STATE_DIR`,
else `$XDG_STATE_HOME/coffeeshop`, else `~/.local/state/coffeeshop`), named after the
database's identity (its file's real path, or its server, port and database name; never a
password). The served server's Prefect home (its own Prefect database of runs and logs) lives
there, so its UI shows this database's runs only, and so does `server.json`, the URL it
answers on while it runs: `coffeeshop flows run` and `coffeeshop flows trigger` read it to find
the server serving their database. Nothing here imports Prefect.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from coffeeshop.redact import mask_url
from coffeeshop.store import normalize_url
from coffeeshop.store.dialects import dialect_of

__all__ = ["STATE_DIR", "ServerHome", "home_of", "state_dir"]

STATE_DIR = "COFFEESHOP_STATE_DIR"


def state_dir() -> Path:
    """Where coffeeshop keeps its state between runs (see the module's docstring)."""
    configured = os.environ.get(STATE_DIR)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "coffeeshop"


def database_identity(db: str) -> tuple[str, str]:
    """(a readable name, the identity) of the database `db` names: the same database under
    another spelling of its URL (a relative path, another driver, a password) is the same."""
    url = normalize_url(db)
    backend = url.get_backend_name()
    dialect = dialect_of(url)
    if dialect.local_file:  # a file: its real path, however the URL spells it
        path = Path(dialect.file_path(url) or "").expanduser().resolve()
        return path.stem, f"{backend}:{path}"
    name = url.database or ""
    return name, f"{backend}://{url.username or ''}@{url.host or ''}:{url.port or ''}/{name}"


@dataclass(frozen=True)
class ServerHome:
    """The directory of one database's served Prefect server."""

    path: Path
    database: str  # the database's URL, masked: what the directory is for

    @property
    def prefect_home(self) -> Path:
        return self.path / "prefect"

    @property
    def record_file(self) -> Path:
        return self.path / "server.json"

    def create(self) -> None:
        """The directories, readable by their owner only (run logs name files and hosts)."""
        self.prefect_home.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def recording(self, api_url: str) -> Iterator[None]:
        """`api_url` recorded as this database's server while inside."""
        record = {"api_url": api_url, "pid": os.getpid(), "database": self.database}
        temporary = self.record_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(record) + "\n")
        temporary.replace(self.record_file)
        try:
            yield
        finally:
            if self.recorded_pid() == os.getpid():
                self.record_file.unlink(missing_ok=True)

    def recorded_url(self) -> str | None:
        """The URL the server serving this database recorded (it may have died since)."""
        value = self._read().get("api_url")
        return value if isinstance(value, str) else None

    def recorded_pid(self) -> int | None:
        value = self._read().get("pid")
        return value if isinstance(value, int) else None

    def _read(self) -> dict[str, object]:
        try:
            loaded = json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}


def home_of(db: str) -> ServerHome:
    """The served server's home for the database `db` names (not created)."""
    name, identity = database_identity(db)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:40] or "db"
    return ServerHome(state_dir() / "flows" / f"{slug}-{digest}", mask_url(db))
