"""ETags from the data version, 304 on If-None-Match, a new batch moving the ETag, and the
cache that serves repeated requests (the fast path answers exactly what the app would)."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import receipt
from test_api_support import (
    BACKENDS,
    api_paths,
    empty_database,
    exact,
    fill,
    running,
    state_of,
    sync,
    wait_for,
)

from coffeeshop.api.cache import (
    ResponseCache,
    VersionTag,
    accepts_gzip,
    etag_matches,
    make_entry,
)

pytestmark = pytest.mark.anyio

DATA_PATHS = (*api_paths("tables"), "/quarantine")


@pytest.fixture(params=BACKENDS)
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with empty_database(request.param, tmp_path) as url:
        yield url, fill(url, tmp_path)


async def test_every_data_response_has_the_data_version_etag_and_304s_on_it(
    filled: tuple[str, Path],
) -> None:
    url, _ = filled
    async with running(url) as client:
        tag = state_of(client).watcher.tag
        assert tag is not None
        for path in DATA_PATHS:
            first = await client.get(path)
            assert first.headers["etag"] == tag.etag
            assert first.headers["cache-control"] == "no-cache"
            for validator in (tag.etag, tag.etag.removeprefix("W/"), f'"x", {tag.etag}', "*"):
                again = await client.get(path, headers={"if-none-match": validator})
                assert again.status_code == 304, path
                assert again.content == b""
                assert again.headers["etag"] == tag.etag
            other = await client.get(path, headers={"if-none-match": 'W/"cs1-0-0"'})
            assert other.status_code == 200 and other.content == first.content


async def test_a_new_batch_changes_the_etag_and_the_data(filled: tuple[str, Path]) -> None:
    url, source = filled
    async with running(url) as client:
        before = await client.get("/store_peak_hours?store_id=4")
        assert before.json() == []
        await asyncio.to_thread(
            sync, url, source, [receipt(99, store=4, time="10:00", total="1.00")]
        )

        async def moved() -> bool:
            response = await client.get("/store_peak_hours?store_id=4")
            return response.headers["etag"] != before.headers["etag"]

        await wait_for(moved)
        after = await client.get(
            "/store_peak_hours?store_id=4", headers={"if-none-match": before.headers["etag"]}
        )
        assert after.status_code == 200
        assert after.json() == [{"store_id": 4, "peak_hour": 10, "tx_count": 1}]
        pipeline = (await client.get("/pipeline")).json()
        assert pipeline["data_version"] == state_of(client).watcher.tag.data_version  # type: ignore[union-attr]


async def test_repeated_requests_are_served_from_the_cache_with_the_same_bytes(
    filled: tuple[str, Path],
) -> None:
    url, _ = filled
    async with running(url) as client:
        state = state_of(client)
        first = await client.get("/store_monthly?store_id=2")  # validated, read, rendered
        assert state.cache.lookup("/store_monthly", b"store_id=2", state.watcher.tag) is not None
        hits = state.metrics.cache_hit._value.get()
        second = await client.get("/store_monthly?store_id=2")  # answered before routing
        assert state.metrics.cache_hit._value.get() == hits + 1
        assert second.content == first.content
        assert second.headers.raw == first.headers.raw


async def test_gzip_when_accepted_for_large_bodies(filled: tuple[str, Path]) -> None:
    url, source = filled
    products = [(f"Seasonal special number {n}", 1) for n in range(40)]
    sync(url, source, [receipt(50, store=9, items=products)])
    async with running(url) as client:
        plain = await client.get("/item_performance", headers={"accept-encoding": "identity"})
        assert len(plain.content) > 1024  # smaller bodies are never gzipped
        for _ in range(2):  # the app, then the fast path
            squeezed = await client.get("/item_performance", headers={"accept-encoding": "gzip"})
            assert squeezed.headers["content-encoding"] == "gzip"
            assert squeezed.headers["vary"] == "Accept-Encoding"
            assert squeezed.content == plain.content  # httpx decoded it
        small = await client.get("/store_peak_hours", headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in small.headers


async def test_responses_are_consistent_while_a_sync_commits(filled: tuple[str, Path]) -> None:
    """Each response is one snapshot: its ETag's version matches its rows, even mid-sync."""
    url, source = filled
    async with running(url) as client:
        seen: dict[str, object] = {}

        async def reader() -> None:
            for _ in range(40):
                response = await client.get("/item_performance?order=item_name")
                body = exact(response)
                etag = response.headers["etag"]
                assert seen.setdefault(etag, body) == body  # one body per version
                await asyncio.sleep(0.005)

        lines = [receipt(100 + n, store=5, items=[("Mocha", 1)]) for n in range(5)]

        def writer() -> None:
            for line in lines:  # five commits
                sync(url, source, [line])

        await asyncio.gather(reader(), asyncio.to_thread(writer))


# -- units ---------------------------------------------------------------------------------------

TAG = VersionTag(7, dt.datetime(2026, 11, 25, 12, 0, 0))


def test_the_etag_is_weak_and_names_the_version_and_its_time() -> None:
    assert (
        TAG.etag == f'W/"cs2-7-{int(dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC).timestamp()):x}"'
    )
    assert VersionTag(7, dt.datetime(2026, 11, 25, 12, 0, 1)).etag != TAG.etag  # rebuilt database


def test_if_none_match_uses_weak_comparison() -> None:
    etag = b'W/"cs1-7-abc"'
    assert etag_matches(b'W/"cs1-7-abc"', etag)
    assert etag_matches(b'"cs1-7-abc"', etag)
    assert etag_matches(b' "other" , W/"cs1-7-abc" ', etag)
    assert etag_matches(b"*", etag)
    assert not etag_matches(b'"cs1-7-ab"', etag)
    assert not etag_matches(b"", etag)


def test_accept_encoding_parsing() -> None:
    assert accepts_gzip(b"gzip, deflate, br")
    assert accepts_gzip(b"br;q=1.0, gzip;q=0.8")
    assert accepts_gzip(b"*")
    assert not accepts_gzip(b"gzip;q=0")
    assert not accepts_gzip(b"identity")
    assert not accepts_gzip(None)


def test_an_entry_replies_304_gzip_or_plain() -> None:
    body = b"[" + b'{"a":1},' * 300 + b'{"a":1}]'
    entry = make_entry(body, etag=TAG.etag, tag=TAG)
    status, _, sent = entry.reply(TAG.etag.encode(), None)
    assert (status, sent) == (304, b"")
    status, headers, sent = entry.reply(None, b"gzip")
    assert status == 200 and gzip.decompress(sent) == body
    assert (b"content-length", str(len(sent)).encode()) in headers
    status, headers, sent = entry.reply(None, None)
    assert sent == body and (b"content-encoding", b"gzip") not in headers


def test_the_cache_evicts_the_least_recently_used_and_bounds_bytes() -> None:
    cache = ResponseCache(max_entries=2, max_bytes=100)
    for key in ("a", "b"):
        cache.put(key, make_entry(b"x" * 10, etag=TAG.etag, tag=TAG))
    assert cache.get("a", TAG) is not None  # "a" is now the most recent
    cache.put("c", make_entry(b"x" * 10, etag=TAG.etag, tag=TAG))
    assert cache.get("b", TAG) is None and cache.get("a", TAG) is not None
    cache.put("big", make_entry(b"x" * 95, etag=TAG.etag, tag=TAG))
    assert cache.bytes == 95 and len(cache) == 1  # 95 + 10 > 100: the older ones went
    cache.put("huge", make_entry(b"x" * 101, etag=TAG.etag, tag=TAG))
    assert cache.get("huge", TAG) is None  # larger than the whole cache: not kept


def test_entries_of_another_version_are_never_served_and_are_dropped() -> None:
    cache = ResponseCache()
    cache.put("k", make_entry(b"[]", etag=TAG.etag, tag=TAG))
    newer = VersionTag(8, TAG.changed_at)
    assert cache.get("k", newer) is None
    assert cache.get("k", None) is None
    cache.retain(newer)
    assert len(cache) == 0 and cache.bytes == 0


async def test_concurrent_misses_share_one_load_and_a_failure_reaches_all() -> None:
    cache = ResponseCache()
    loads = 0

    async def load() -> object:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)
        return make_entry(b"[1]", etag=TAG.etag, tag=TAG)

    entries = await asyncio.gather(*(cache.get_or_load("k", TAG, load) for _ in range(20)))  # type: ignore[arg-type]
    assert loads == 1 and len({id(e) for e in entries}) == 1

    async def fail() -> object:
        await asyncio.sleep(0.01)
        raise RuntimeError("database gone")

    results = await asyncio.gather(
        *(cache.get_or_load("other", TAG, fail) for _ in range(3)),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert cache.get("other", TAG) is None  # nothing stored; the next request tries again


def test_aliases_are_bounded() -> None:
    cache = ResponseCache(max_aliases=3)
    cache.put("k", make_entry(b"[]", etag=TAG.etag, tag=TAG))
    for n in range(5):
        cache.alias("/p", str(n).encode(), "k")
    assert cache.lookup("/p", b"0", TAG) is None
    assert cache.lookup("/p", b"4", TAG) is not None
