"""Query parameters: a bad one gets a 422 that names it and says why; hostile values (SQL,
path traversal, oversized, control characters) get a 422 too, never a 500, and reach the
database only as bound parameters (the tables are unchanged afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from test_api_support import BACKENDS, api_paths, empty_database, fill, running

pytestmark = pytest.mark.anyio

ENDPOINTS = api_paths("tables")


@pytest.fixture(scope="module", params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("api_params")
    with empty_database(request.param, directory) as database:
        fill(database, directory)
        yield database


@pytest.mark.parametrize(
    ("query", "name", "words"),
    [
        ("/store_monthly?store_id=abc", "store_id", "valid integer"),
        ("/store_monthly?store_id=-1", "store_id", "greater than or equal to 0"),
        ("/store_monthly?month_from=2026-13", "month_from", "must be a month as YYYY-MM"),
        ("/store_monthly?month_to=26-01", "month_to", "must be a month as YYYY-MM"),
        ("/receipts_summary?as_of_from=2026-02-30", "as_of_from", "not a date on the calendar"),
        ("/receipts_summary?as_of_to=yesterday", "as_of_to", "must be a date as YYYY-MM-DD"),
        ("/item_performance?order=price", "order", "'total_sold' or 'item_name'"),
        ("/item_performance?limit=0", "limit", "greater than or equal to 1"),
        ("/item_performance?limit=10001", "limit", "less than or equal to 10000"),
        ("/store_peak_hours?offset=-5", "offset", "greater than or equal to 0"),
        ("/store_monthly?month_form=2026-01", "month_form", "unknown parameter"),
        ("/store_monthly?limit=1&limit=2", "limit", "given 2 times"),
        ("/pipeline?verbose=1", "verbose", "unknown parameter"),
        ("/quarantine?source=", "source", "at least 1 character"),
    ],
)
async def test_a_bad_parameter_gets_422_naming_it_and_why(
    url: str, query: str, name: str, words: str
) -> None:
    async with running(url) as client:
        response = await client.get(query)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"][0]["loc"] == ["query", name]
    assert words in body["detail"][0]["msg"]
    assert body["message"].startswith(f"query parameter {name}: ")
    assert words in body["message"]


async def test_an_unknown_parameter_lists_the_ones_the_endpoint_takes(url: str) -> None:
    async with running(url) as client:
        body = (await client.get("/item_performance?sort=asc")).json()
    assert (
        body["detail"][0]["msg"]
        == "unknown parameter (this endpoint takes: order, limit, offset, format)"
    )


HOSTILE = [
    "1 OR 1=1",
    "1; DROP TABLE store_monthly; --",
    "' OR ''='",
    "2026-01' UNION SELECT item_name FROM item_performance --",
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "\x00\x01\x1b[31m",
    "9" * 5000,
    "A" * 50_000,  # with a 10,000-character name: near the 64 KiB an HTTP client sends
    "1e309",
    "NaN",
    "0x10",
    "１２",  # full-width digits
    "२०२६-०१",  # Devanagari digits in a month's shape
    "Latte\u202e",
    "\ud800",
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_hostile_values_get_422_never_500_and_change_nothing(url: str, endpoint: str) -> None:
    params = {
        "/receipts_summary": ("as_of_from", "as_of_to", "limit", "offset"),
        "/store_monthly": ("store_id", "month_from", "month_to", "limit", "offset"),
        "/item_performance": ("order", "limit", "offset"),
        "/store_peak_hours": ("store_id", "limit", "offset"),
        "/store_hours": ("store_id", "limit", "offset"),
    }[endpoint]
    async with running(url) as client:
        before = (await client.get(endpoint)).text
        for name in (*params, "../../etc/passwd", "1;DROP TABLE x", "x" * 10_000):
            for value in HOSTILE:
                encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
                response = await client.get(f"{endpoint}?{quote(name, safe='')}={encoded}")
                assert response.status_code == 422, (name, value, response.text[:200])
                assert len(response.content) < 4000  # the value is echoed cut short
        assert (await client.get(endpoint)).text == before


async def test_free_text_reaches_the_database_only_as_a_bound_value(url: str) -> None:
    """`source` of /quarantine is free text: SQL in it matches no row and breaks nothing."""
    async with running(url) as client:
        for value in ("x' OR '1'='1", "'; DELETE FROM cs_quarantine; --", '" OR ""="', "\\"):
            response = await client.get("/quarantine", params={"source": value})
            assert response.status_code == 200
            assert response.json() == []
        assert len((await client.get("/quarantine")).json()) == 2


async def test_spellings_of_the_same_query_answer_the_same(url: str) -> None:
    async with running(url) as client:
        plain = await client.get("/store_monthly?store_id=1&limit=5")
        others = [
            "/store_monthly?limit=5&store_id=1",
            "/store_monthly?store_id=%31&limit=5&offset=0",
            "/store_monthly?store_id=01&limit=5",
        ]
        for query in others:
            response = await client.get(query)
            assert response.status_code == 200
            assert response.content == plain.content
            assert response.headers["etag"] == plain.headers["etag"]


@pytest.mark.parametrize(
    ("query", "first", "last"),
    [
        ("/store_monthly?month_from=2026-05&month_to=2026-03", "month_from", "month_to"),
        ("/receipts_summary?as_of_from=2026-11-20&as_of_to=2026-11-01", "as_of_from", "as_of_to"),
    ],
)
async def test_a_range_whose_start_is_after_its_end_is_a_422_naming_both(
    url: str, query: str, first: str, last: str
) -> None:
    async with running(url) as client:
        response = await client.get(query)
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert f"{first} (" in message and f"is after {last} (" in message


async def test_order_by_item_name_is_for_people(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`latte` sorts beside `Latte` and `Latté`, before `Turkey Club`; names equal once case
    and accents are folded keep one exact order."""
    from helpers import receipt, write_lines

    from coffeeshop.pipeline.engine import Syncer
    from coffeeshop.sources.jsonl import JsonlSource
    from coffeeshop.store import Store

    directory = tmp_path_factory.mktemp("names")
    source, db = directory / "r.jsonl", f"sqlite:///{directory / 'names.db'}"
    names = ["Turkey Club", "latte", "Latté", "Latte", "Éclair", "apple pie", "Zucchini Bread"]
    write_lines(source, [receipt(i, items=[(n, 1)]) for i, n in enumerate(names)])
    with Store(db) as store:
        Syncer(store, JsonlSource(source)).run()
    async with running(db) as client:
        ordered = [
            r["item_name"] for r in (await client.get("/item_performance?order=item_name")).json()
        ]
        page = [
            r["item_name"]
            for r in (await client.get("/item_performance?order=item_name&offset=2&limit=2")).json()
        ]
    assert ordered == [
        "apple pie",
        "Éclair",
        "Latte",
        "Latté",
        "latte",
        "Turkey Club",
        "Zucchini Bread",
    ]
    assert page == ordered[2:4]


@pytest.mark.parametrize("path", ["/", "/health", *ENDPOINTS, "/item_performance?limit=2"])
async def test_head_answers_like_get_without_a_body(url: str, path: str) -> None:
    async with running(url) as client:
        got = await client.get(path)
        head = await client.head(path)
    assert got.status_code == 200 and head.status_code == 200, head.text
    assert head.content == b""
    for name in ("content-type", "content-length", "etag"):
        assert head.headers.get(name) == got.headers.get(name)
