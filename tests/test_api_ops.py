"""Probes and operations: /health, /ready (503 when the database is gone), /pipeline,
/metrics, and connections that refuse to write."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import execute_sql
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from test_api_support import (
    ALL_BACKENDS,
    BACKENDS,
    empty_database,
    fill,
    running,
    state_of,
    wait_for,
)

from coffeeshop.api.database import DatabaseUnavailable
from coffeeshop.store import Store

pytestmark = pytest.mark.anyio


def execute(url: str, sql: str) -> None:
    with Store(url) as store:
        execute_sql(store, sql)


@pytest.fixture(params=BACKENDS)
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database(request.param, tmp_path) as url:
        fill(url, tmp_path)
        yield url


async def test_health_never_needs_the_database(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'nowhere' / 'missing.db'}"
    async with running(missing, api_token="t") as client:
        response = await client.get("/health")
        assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert not (tmp_path / "nowhere").exists()


async def test_a_database_that_is_not_there_is_503_never_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    async with running(f"sqlite:///{path}") as client:
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        for endpoint in ("/store_monthly", "/pipeline", "/quarantine"):
            response = await client.get(endpoint)
            assert response.status_code == 503, endpoint
            assert "unavailable" in response.json()["detail"]
            assert response.headers["retry-after"] == "5"
        metrics = (await client.get("/metrics")).text
        assert "coffeeshop_database_up 0.0" in metrics
    assert not path.exists()  # the API opened it read-only: it never creates a file


async def test_an_unreachable_server_is_503(tmp_path: Path) -> None:
    async with running("mysql+pymysql://nobody@127.0.0.1:1/none") as client:
        assert (await client.get("/ready")).status_code == 503
        assert (await client.get("/store_peak_hours")).status_code == 503


async def test_a_database_without_coffeeshop_tables_is_503_with_advice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    execute(url, "CREATE TABLE unrelated (x INTEGER)")
    async with running(url) as client:
        ready = await client.get("/ready")
        assert ready.status_code == 503 and "coffeeshop sync" in ready.json()["detail"]
        assert "coffeeshop sync" in (await client.get("/store_monthly")).json()["detail"]


async def test_ready_turns_503_when_the_database_goes_and_200_when_it_is_back(
    filled: str, tmp_path: Path
) -> None:
    async with running(filled) as client:
        assert (await client.get("/ready")).json()["status"] == "ready"
        cached = await client.get("/store_peak_hours")
        if filled.startswith("sqlite"):
            db = Path(filled.removeprefix("sqlite:///"))
            db.rename(db.with_suffix(".gone"))
            await state_of(client).database.stop()  # drop pooled handles of the moved file
            state_of(client).database.start()
        else:
            # in a thread: it waits for the API's open snapshots, which need the event loop
            await asyncio.to_thread(execute, filled, "RENAME TABLE cs_state TO cs_state_gone")
        assert (await client.get("/ready")).status_code == 503

        async def pipeline_down() -> bool:
            return (await client.get("/pipeline")).status_code == 503

        await wait_for(pipeline_down)
        # What was read before stays served (it is the data of its version); the rest is 503.
        assert (await client.get("/store_peak_hours")).content == cached.content
        assert (await client.get("/store_monthly?store_id=2")).status_code == 503
        if filled.startswith("sqlite"):
            db.with_suffix(".gone").rename(db)
        else:
            await asyncio.to_thread(execute, filled, "RENAME TABLE cs_state_gone TO cs_state")
        assert (await client.get("/ready")).status_code == 200

        async def pipeline_up() -> bool:
            return (await client.get("/pipeline")).status_code == 200

        await wait_for(pipeline_up)


async def test_pipeline_reports_the_last_batch_lag_and_counts(filled: str) -> None:
    async with running(filled) as client:
        body = (await client.get("/pipeline")).json()
    assert body["data_version"] >= 2
    assert body["database"].startswith(("sqlite+aiosqlite:///", "mysql+asyncmy://"))
    [source] = body["sources"]
    assert source["source"].startswith("jsonl:") and source["source"].endswith("receipts.jsonl")
    assert (source["applied"], source["quarantined"], source["batches"]) == (7, 2, 2)
    assert source["behind"] == 0 and source["source_time"] is None
    committed = dt.datetime.fromisoformat(source["committed_at"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.UTC) - committed).total_seconds()) < 120
    assert 0 <= source["seconds_since_commit"] < 120
    assert body["totals"] == {
        "applied": 7,
        "quarantined": 2,
        "batches": 2,
        "behind": 0,
        "last_committed_at": source["committed_at"],
        "seconds_since_commit": body["totals"]["seconds_since_commit"],
    }


async def test_metrics_in_prometheus_text_format(filled: str) -> None:
    async with running(filled) as client:
        await client.get("/store_monthly?store_id=1")
        await client.get("/store_monthly?store_id=1")
        await client.get("/store_monthly?store_id=x")
        await client.get("/no/such/path")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["coffeeshop_api_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("/store_monthly", "200")] == 2
    assert requests[("/store_monthly", "422")] == 1
    assert requests[("unmatched", "404")] == 1  # never one series per raw path
    latency = families["coffeeshop_api_request_duration_seconds"]
    assert {s.labels["route"] for s in latency.samples} >= {"/store_monthly", "unmatched"}
    cache = {
        s.labels["result"]: s.value
        for s in families["coffeeshop_api_cache_lookups"].samples
        if s.name.endswith("_total")
    }
    assert cache["hit"] >= 1 and cache["miss"] >= 1
    assert families["coffeeshop_database_up"].samples[0].value == 1
    assert families["coffeeshop_data_version"].samples[0].value >= 2
    assert families["coffeeshop_receipts_applied"].samples[0].value == 7
    assert families["coffeeshop_receipts_quarantined"].samples[0].value == 2
    assert families["coffeeshop_freshness_seconds"].samples[0].value >= 0
    [fresh] = families["coffeeshop_source_freshness_seconds"].samples
    assert fresh.labels["source"].endswith("receipts.jsonl")


async def test_openmetrics_when_asked_for(filled: str) -> None:
    async with running(filled) as client:
        response = await client.get(
            "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


@pytest.mark.parametrize("kind", ALL_BACKENDS)
async def test_the_api_connections_refuse_to_write(kind: str, tmp_path: Path) -> None:
    """Even with a database user allowed to write, the API's sessions are read-only."""
    with empty_database(kind, tmp_path) as url:
        fill(url, tmp_path)
        async with running(url) as client:
            database = state_of(client).database
            with pytest.raises(DatabaseUnavailable):
                async with database.snapshot() as conn:
                    await conn.execute(text("UPDATE cs_state SET data_version = 0"))
            with pytest.raises(DatabaseUnavailable):
                async with database.snapshot() as conn:
                    await conn.execute(text("CREATE TABLE intruder (x INTEGER)"))
            assert (await client.get("/ready")).json()["data_version"] >= 2


async def test_docs_and_openapi_are_served(filled: str) -> None:
    async with running(filled) as client:
        assert "swagger" in (await client.get("/docs")).text.lower()
        schema = (await client.get("/openapi.json")).json()
    summary = schema["components"]["schemas"]["ReceiptsSummaryRow"]
    assert summary["properties"]["spend_per_rcpt"]["type"] == "number"
    assert summary["properties"]["as_of"]["format"] == "date"
    parameters = {p["name"] for p in schema["paths"]["/store_monthly"]["get"]["parameters"]}
    assert parameters == {"store_id", "month_from", "month_to", "limit", "offset", "format"}
