"""The optional bearer token and CORS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_api_support import empty_database, fill, running

from coffeeshop.api.auth import BearerAuth

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-token-for-tests"
PROTECTED = (
    "/receipts_summary",
    "/store_monthly",
    "/item_performance",
    "/store_peak_hours",
    "/quarantine",
    "/pipeline",
    "/metrics",
)


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with empty_database("sqlite", tmp_path) as database:
        fill(database, tmp_path)
        yield database


async def test_data_endpoints_want_the_token_and_probes_do_not(url: str) -> None:
    async with running(url, api_token=TOKEN) as client:
        for path in PROTECTED:
            for headers in (
                {},
                {"authorization": "Bearer wrong"},
                {"authorization": f"Basic {TOKEN}"},
                {"authorization": TOKEN},
                {"authorization": f"Bearer {TOKEN}x"},
            ):
                response = await client.get(path, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.headers["www-authenticate"] == "Bearer"
                assert TOKEN not in response.text
            ok = await client.get(path, headers={"authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200, path
            assert ok.headers.get("cache-control", "private, no-cache") == "private, no-cache"
            lower = await client.get(path, headers={"authorization": f"bearer {TOKEN}"})
            assert lower.status_code == 200  # the scheme is case-insensitive
        for path in ("/health", "/ready"):
            assert (await client.get(path)).status_code == 200


async def test_a_cached_response_still_wants_the_token(url: str) -> None:
    async with running(url, api_token=TOKEN) as client:
        good = {"authorization": f"Bearer {TOKEN}"}
        assert (await client.get("/store_monthly?limit=1", headers=good)).status_code == 200
        assert (await client.get("/store_monthly?limit=1", headers=good)).status_code == 200
        assert (await client.get("/store_monthly?limit=1")).status_code == 401
        revalidate = {"if-none-match": "*"}
        assert (await client.get("/store_monthly?limit=1", headers=revalidate)).status_code == 401


async def test_the_token_must_come_before_parameters_are_checked(url: str) -> None:
    async with running(url, api_token=TOKEN) as client:
        assert (await client.get("/store_monthly?store_id=x")).status_code == 401


async def test_without_a_token_everything_is_open_and_the_schema_has_no_security(url: str) -> None:
    async with running(url) as client:
        assert (await client.get("/store_monthly")).status_code == 200
        schema = (await client.get("/openapi.json")).json()
        assert "securitySchemes" not in schema.get("components", {})
    async with running(url, api_token=TOKEN) as client:
        schema = (await client.get("/openapi.json")).json()
        assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert "security" in schema["paths"]["/store_monthly"]["get"]
        assert "security" not in schema["paths"]["/health"]["get"]


async def test_cors_allows_the_configured_origins_and_exposes_the_etag(url: str) -> None:
    origin = "https://dashboard.example.com"
    async with running(url, cors_origins=f"{origin}, http://localhost:5173") as client:
        for _ in range(2):  # the app, then the fast path
            response = await client.get("/store_peak_hours", headers={"origin": origin})
            assert response.headers["access-control-allow-origin"] == origin
            assert "etag" in response.headers["access-control-expose-headers"].lower()
        preflight = await client.options(
            "/store_peak_hours",
            headers={
                "origin": origin,
                "access-control-request-method": "GET",
                "access-control-request-headers": "authorization, if-none-match",
            },
        )
        assert preflight.status_code == 200
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        other = await client.get("/store_peak_hours", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    async with running(url) as client:  # no origins configured: no CORS headers at all
        plain = await client.get("/store_peak_hours", headers={"origin": origin})
        assert "access-control-allow-origin" not in plain.headers


def test_bearer_auth_compares_the_whole_token() -> None:
    auth = BearerAuth("abc")
    assert auth.accepts(b"Bearer abc") and auth.accepts("BEARER abc")
    assert not auth.accepts(b"Bearer ab") and not auth.accepts(b"Bearer abcd")
    assert not auth.accepts(None) and not auth.accepts(b"") and not auth.accepts(b"Bearer")
    assert BearerAuth(None).accepts(None)
