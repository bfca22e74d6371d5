"""Settings: the original variable names, COFFEESHOP_* names, .env, and one-line errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coffeeshop.config import DEFAULT_DB, load_settings
from coffeeshop.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "SQL_DSN",
        "COFFEESHOP_DB",
        "COFFEESHOP_SOURCE",
        "MONGO_URI",
        "COFFEESHOP_TIMEZONE",
        "COFFEESHOP_BATCH_SIZE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_need_no_configuration() -> None:
    settings = load_settings()
    assert settings.db == DEFAULT_DB == "sqlite:///analysis.db"
    assert settings.source is None and settings.batch_size == 5000


def test_the_original_names_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQL_DSN", "mysql+pymysql://u@h/db")
    monkeypatch.setenv("MONGO_URI", "mongodb://h/coffeeshop")
    settings = load_settings()
    assert settings.db == "mysql+pymysql://u@h/db"
    assert settings.source == "mongodb://h/coffeeshop"


def test_options_beat_the_environment_which_beats_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SQL_DSN=sqlite:///from-dotenv.db\nCOFFEESHOP_BATCH_SIZE=10\n")
    assert load_settings().db == "sqlite:///from-dotenv.db"
    assert load_settings().batch_size == 10
    monkeypatch.setenv("COFFEESHOP_DB", "sqlite:///from-env.db")
    assert load_settings().db == "sqlite:///from-env.db"
    assert load_settings(db="sqlite:///from-option.db").db == "sqlite:///from-option.db"
    assert load_settings(db=None).db == "sqlite:///from-env.db"  # an option not given


def test_today_is_the_local_date_in_the_configured_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COFFEESHOP_TIMEZONE", "Pacific/Kiritimati")  # UTC+14
    ahead = load_settings().today()
    monkeypatch.setenv("COFFEESHOP_TIMEZONE", "Pacific/Pago_Pago")  # UTC-11
    behind = load_settings().today()
    assert ahead == dt.datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    assert 1 <= (ahead - behind).days <= 2  # 25 hours apart: never the same local date


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("COFFEESHOP_TIMEZONE", "Nowhere/Special", "unknown IANA time zone 'Nowhere/Special'"),
        ("COFFEESHOP_BATCH_SIZE", "0", "COFFEESHOP_BATCH_SIZE"),
        ("COFFEESHOP_BATCH_SIZE", "many", "COFFEESHOP_BATCH_SIZE"),
    ],
)
def test_bad_values_are_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert fragment in message and "\n" not in message
