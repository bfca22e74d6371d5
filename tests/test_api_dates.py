"""Every date and month parameter of every endpoint at the edges of the calendar: a 422 that
says the range, never a 500 (before: `/sales_comparison?day=9999-12-31` answered 500 and logged
a traceback of ~80 lines per request). The endpoints and their parameters come from the app's
own OpenAPI document, so a new endpoint or parameter is covered without editing this list."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from test_api_support import BACKENDS, empty_database, fill, running, settings

from coffeeshop.api import create_app
from coffeeshop.api.params import _DAY, _MONTH, FIRST_DAY, LAST_DAY

pytestmark = pytest.mark.anyio

DAY_EDGES = ("0001-01-01", "0001-01-07", "9999-12-31", "9999-12-25")
MONTH_EDGES = ("0001-01", "9999-12")
# Inside the range, up to its first and last days: answered (200), never a 500.
INSIDE = {
    "day": ("2026-11-20", FIRST_DAY.isoformat(), LAST_DAY.isoformat()),
    "month": ("2026-11", FIRST_DAY.isoformat()[:7], LAST_DAY.isoformat()[:7]),
}


def date_parameters() -> list[tuple[str, str, str]]:
    """(path, parameter, "day" or "month") of every GET query parameter that takes one."""
    document = create_app(settings("sqlite:///unused.db")).openapi()
    found = []
    for path, operations in document["paths"].items():
        for parameter in operations.get("get", {}).get("parameters", []):
            if parameter["in"] != "query":
                continue
            schemas = [parameter["schema"], *parameter["schema"].get("anyOf", [])]
            patterns = {s.get("pattern") for s in schemas} | {s.get("format") for s in schemas}
            if _DAY in patterns or "date" in patterns:
                found.append((path, parameter["name"], "day"))
            elif _MONTH in patterns:
                found.append((path, parameter["name"], "month"))
    return found


PARAMETERS = date_parameters()


def test_the_openapi_document_lists_the_date_parameters() -> None:
    """The derivation finds the parameters known today (so it cannot silently find none)."""
    names = {(path, name) for path, name, _ in PARAMETERS}
    assert {
        ("/sales_comparison", "day"),
        ("/daily_sales", "day_from"),
        ("/store_monthly", "month_to"),
        ("/receipts_summary", "as_of_from"),
    } <= names


@pytest.fixture(scope="module", params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("api_dates")
    with empty_database(request.param, directory) as database:
        fill(database, directory)
        yield database


@pytest.mark.parametrize(("path", "name", "kind"), PARAMETERS)
async def test_the_edges_of_the_calendar_get_422_never_500(
    url: str, path: str, name: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    edges: Any = DAY_EDGES if kind == "day" else MONTH_EDGES
    async with running(url) as client:
        for value in edges:
            response = await client.get(path, params={name: value})
            assert response.status_code == 422, (path, name, value, response.text[:300])
            assert "between" in response.text, response.text[:300]
        for value in INSIDE[kind]:
            inside = await client.get(path, params={name: value})
            assert inside.status_code == 200, (path, name, value, inside.text[:300])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
