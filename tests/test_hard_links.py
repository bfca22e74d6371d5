"""An SQLite file with two names (hard links) is refused by every command, with one line and
exit 2. SQLite keeps the write-ahead log and its index per name (`hl.db-wal`, `hl.db-shm`):
before, `serve --db sqlite:///hl.db` silently served stale figures while sync wrote through
the other name (7,530 vs 9,049 units)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from helpers import assert_one_line_error, free_port, run_coffeeshop
from test_api_support import fill

run = functools.partial(run_coffeeshop, log_level=None)


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the database, a second name of it, the source file)."""
    database = tmp_path / "analysis.db"
    source = fill(f"sqlite:///{database}", tmp_path)
    second = tmp_path / "hl.db"
    os.link(database, second)
    return database, second, source


def commands(source: Path) -> list[list[str]]:
    return [
        ["serve", "--port", str(free_port())],
        ["tables"],
        ["quarantine"],
        ["reconcile", "--source", str(source)],
        ["sync", "--once", "--source", str(source)],
    ]


@pytest.mark.parametrize(
    "index", range(5), ids=["serve", "tables", "quarantine", "reconcile", "sync"]
)
@pytest.mark.parametrize("name", ["second", "first"])
def test_a_database_with_two_names_is_refused_in_one_line(
    tmp_path: Path, linked: tuple[Path, Path, Path], index: int, name: str
) -> None:
    database, second, source = linked
    path = second if name == "second" else database
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(*commands(source)[index], "--db", f"sqlite:///{path}", cwd=tmp_path)
    assert_one_line_error(result, "hard links")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no -wal/-shm per name


def test_the_async_url_of_serve_is_checked_too(
    tmp_path: Path, linked: tuple[Path, Path, Path]
) -> None:
    _, second, _ = linked
    result = run(
        "serve",
        "--port",
        str(free_port()),
        cwd=tmp_path,
        env={"SQL_DSN": f"sqlite:///{second}", "ASYNC_SQL_DSN": f"sqlite+aiosqlite:///{second}"},
    )
    assert_one_line_error(result, "hard links")


def test_one_name_again_is_served(tmp_path: Path, linked: tuple[Path, Path, Path]) -> None:
    database, second, _ = linked
    second.unlink()
    result = run("tables", "--db", f"sqlite:///{database}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Latte" in result.stdout
