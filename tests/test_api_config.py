"""The API's configuration (async URL, token, CORS origins) and its exact JSON rendering."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from test_api_support import fill, running

from coffeeshop.api.database import ReadOnlyDatabase, async_url, display_url
from coffeeshop.api.render import dumps
from coffeeshop.api.settings import ApiSettings, as_api_settings, load_api_settings
from coffeeshop.config import Settings
from coffeeshop.errors import ConfigError


def url_of(sync: str, async_: str = "") -> str:
    return async_url(Settings(db=sync, async_db=async_ or None)).render_as_string(
        hide_password=False
    )


@pytest.mark.parametrize(
    ("sync", "expected"),
    [
        (
            "mysql+pymysql://u:p@h:3306/db",
            "mysql+asyncmy://u:p@h:3306/db?charset=utf8mb4",
        ),
        ("mysql://u@h/db", "mysql+asyncmy://u@h/db?charset=utf8mb4"),
        ("mariadb+pymysql://u@h/db", "mysql+asyncmy://u@h/db?charset=utf8mb4"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_the_async_url_is_derived_from_the_sync_one(sync: str, expected: str) -> None:
    assert url_of(sync) == expected


@pytest.mark.parametrize(
    ("sync", "database"),
    [
        ("sqlite:///analysis.db", "file:analysis.db"),
        ("sqlite:////abs/a b.db", "file:/abs/a%20b.db"),
    ],
)
def test_an_sqlite_file_is_opened_as_a_uri_that_never_creates_it(sync: str, database: str) -> None:
    url = async_url(Settings(db=sync))
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == database
    assert dict(url.query) == {"mode": "rw", "uri": "true"}


@pytest.mark.anyio
async def test_an_sqlite_path_with_odd_characters_opens(tmp_path: Path) -> None:
    directory = tmp_path / "a dir?#%"
    directory.mkdir()
    url = f"sqlite:///{directory / 'my db.db'}"
    fill(url, directory)
    async with running(url) as client:
        assert (await client.get("/ready")).status_code == 200
        assert len((await client.get("/store_peak_hours")).json()) == 3


def test_async_sql_dsn_wins_and_keeps_its_driver() -> None:
    assert (
        url_of("sqlite:///x.db", "mysql+asyncmy://r@h/db?charset=utf8mb4")
        == "mysql+asyncmy://r@h/db?charset=utf8mb4"
    )
    assert url_of("sqlite:///x.db", "mysql+pymysql://r@h/db").startswith("mysql+asyncmy://")


def test_bad_urls_are_config_errors_without_the_password() -> None:
    with pytest.raises(ConfigError) as bad:
        url_of("oracle://scott:tiger@h/db")
    assert "tiger" not in str(bad.value)
    with pytest.raises(ConfigError) as bad:
        url_of("sqlite:///x.db", "not a url at all :: with:secret@")
    assert "secret" not in str(bad.value)


def test_the_displayed_url_hides_the_password_and_shows_sqlite_paths() -> None:
    url = async_url(Settings(db="mysql+pymysql://u:hunter2@h/db"))
    assert display_url(url) == "mysql+asyncmy://u:***@h/db?charset=utf8mb4"
    assert ReadOnlyDatabase(url).safe_url == display_url(url)
    sqlite = async_url(Settings(db="sqlite:////data/a b.db"))
    assert display_url(sqlite) == "sqlite+aiosqlite:////data/a b.db"


def test_token_and_cors_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COFFEESHOP_API_TOKEN", " t0ken ")
    monkeypatch.setenv("COFFEESHOP_CORS_ORIGINS", "https://a.example/, http://localhost:5173")
    settings = load_api_settings()
    assert settings.token == "t0ken"
    assert settings.cors_origin_list == ["https://a.example", "http://localhost:5173"]
    assert "t0ken" not in repr(settings)  # a SecretStr
    monkeypatch.setenv("COFFEESHOP_API_TOKEN", "")
    assert load_api_settings().token is None
    monkeypatch.setenv("COFFEESHOP_CORS_ORIGINS", "dashboard.example")
    with pytest.raises(ConfigError, match=r"COFFEESHOP_CORS_ORIGINS: 'dashboard\.example' is not"):
        load_api_settings()
    monkeypatch.setenv("COFFEESHOP_CORS_ORIGINS", "*")
    monkeypatch.setenv("COFFEESHOP_API_TOKEN", "has space")
    with pytest.raises(ConfigError, match="COFFEESHOP_API_TOKEN: must be printable ASCII"):
        load_api_settings()


def test_plain_settings_become_api_settings_with_the_same_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COFFEESHOP_API_TOKEN", "from-env")
    converted = as_api_settings(Settings(db="sqlite:///given.db"))
    assert isinstance(converted, ApiSettings)
    assert converted.db == "sqlite:///given.db" and converted.token == "from-env"


def test_money_keeps_its_digits_and_everything_else_is_plain_json() -> None:
    rows = [
        {"month": "2026-01", "store_id": 1, "sales": Decimal("12.50")},
        {"month": "2026-02", "store_id": 2, "sales": Decimal("99999999999999.99")},
        {"month": "2026-03", "store_id": 3, "sales": Decimal("0.00")},
    ]
    text = dumps(rows).decode()
    assert text == (
        '[{"month":"2026-01","store_id":1,"sales":12.50},'
        '{"month":"2026-02","store_id":2,"sales":99999999999999.99},'
        '{"month":"2026-03","store_id":3,"sales":0.00}]'
    )
    assert json.loads(text, parse_float=Decimal)[1]["sales"] == Decimal("99999999999999.99")
    assert float("99999999999999.99") != Decimal("99999999999999.99")  # a float would lose it


def test_rendering_dates_times_nested_values_and_odd_text() -> None:
    value = {
        "day": dt.date(2026, 11, 25),
        "at": dt.datetime(2026, 11, 25, 8, 15, 42, 123456),
        "aware": dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        "none": None,
        "flags": [True, False],
        "seconds": 1.5,
        "text": 'Crème "brûlée"\n\u2028<script>',
    }
    parsed = json.loads(dumps(value))
    assert parsed["day"] == "2026-11-25"
    assert parsed["at"] == "2026-11-25T08:15:42Z" and parsed["aware"] == "2026-11-25T08:00:00Z"
    assert parsed["text"] == value["text"] and parsed["flags"] == [True, False]
    assert json.loads(dumps(["lone \ud800 surrogate"])) == ["lone \ud800 surrogate"]
    assert dumps([]) == b"[]"
    with pytest.raises(ValueError):
        dumps([Decimal("NaN")])
