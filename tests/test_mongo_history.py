"""Which history a MongoDB checkpoint belongs to, namespaces that do not exist, masking and
wording (issue 23, items 2, 4, 9 and 10), with the scripted fake of `fake_mongo`.

The fake's `recreate()` is what a restore, a dropped and re-created collection or a restarted
node without its data look like to the source: the same replica set, old resume tokens still
accepted, no drop event, different documents, and a new collection UUID.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from fake_mongo import FakeClient, insert
from helpers import receipt, reference_tables
from pymongo.errors import AutoReconnect, OperationFailure
from typer.testing import CliRunner

from coffeeshop.errors import ConfigError, SourceHistoryLost
from coffeeshop.pipeline.engine import Syncer, SyncReport
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.mongo import MongoSource
from coffeeshop.sources.mongo.errors import describe
from coffeeshop.store import Store

TODAY = dt.date(2026, 11, 25)
URI = "mongodb://fake-host:27017/"
NAME = "mongodb:fake-host:27017/coffeeshop.receipt"


def doc(n: int, total: str = "1.00") -> dict[str, Any]:
    return receipt(ObjectId(f"{n:024x}"), store=1 + n % 3, total=total)


def source(client: FakeClient, **options: Any) -> MongoSource:
    return MongoSource(URI, client_factory=lambda: client, **options)


def sync(
    url: str,
    src: MongoSource,
    *,
    rebuild: bool = True,
    follow: bool = False,
    stop: threading.Event | None = None,
) -> SyncReport:
    with Store(url) as store:
        return Syncer(
            store,
            src,
            limits=BatchLimits(max_events=100, max_wait=30.0, poll_interval=0.01),
            today=lambda: TODAY,
            read_ahead=False,
            rebuild_on_history_lost=rebuild,
        ).run(follow=follow, stop=stop)


def position(url: str) -> dict[str, Any]:
    with Store(url) as store:
        found = store.load_checkpoint(NAME)
    assert found is not None
    return dict(json.loads(found.position))


def tables(url: str) -> Any:
    with Store(url) as store:
        return store.read_tables(TODAY)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'analysis.db'}"


class RecordingStop(threading.Event):
    """A stop whose timed waits return at once; `on_wait` runs at each (time passes)."""

    def __init__(self, on_wait: Any = None) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.on_wait = on_wait

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return super().wait()
        self.waits.append(timeout)
        if self.on_wait is not None:
            self.on_wait()
        return self.is_set()


# -- item 2: a replaced history is noticed ------------------------------------------------------


def test_the_checkpoint_keeps_the_collection_uuid_and_the_replica_set(url: str) -> None:
    client = FakeClient([doc(1)], [insert(doc(2)), None])
    sync(url, source(client))
    assert position(url)["history"] == {"uuid": client.collection.uuid.hex, "set": "rs0"}


@pytest.mark.parametrize("rebuild", [True, False], ids=["rebuild", "stop"])
def test_a_recreated_collection_that_accepts_the_old_token_is_history_lost(
    url: str, caplog: pytest.LogCaptureFixture, rebuild: bool
) -> None:
    client = FakeClient([doc(1), doc(2), doc(3)], [insert(doc(4)), None])
    sync(url, source(client))
    fresh = [doc(7, "7.00"), doc(8, "8.00")]
    client.collection.recreate(fresh)  # the old resume token is still accepted
    caplog.clear()
    if not rebuild:
        with pytest.raises(SourceHistoryLost) as info:
            sync(url, source(client), rebuild=False)
        message = str(info.value)
        assert "is not the collection of the checkpoint" in message
        assert "coffeeshop reconcile --repair" in message and "\n" not in message
        assert tables(url) == reference_tables([doc(1), doc(2), doc(3), doc(4)], TODAY)
        return
    report = sync(url, source(client))
    assert report.rebuilds == 1
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"{NAME} is not the collection of the checkpoint" in error
    assert client.collection.uuid.hex in error
    assert tables(url) == reference_tables(fresh, TODAY)
    assert position(url)["history"]["uuid"] == client.collection.uuid.hex


def test_another_replica_set_behind_the_same_uri_is_history_lost(url: str) -> None:
    client = FakeClient([doc(1)], [None])
    sync(url, source(client))
    client.set_name = "rs-restored"
    with pytest.raises(SourceHistoryLost, match="replica set 'rs-restored'"):
        sync(url, source(client), rebuild=False)


def test_a_collection_recreated_while_the_stream_reconnects_is_history_lost(url: str) -> None:
    fresh = [doc(9, "9.00")]
    script: list[Any] = [insert(doc(2)), AutoReconnect("connection reset"), insert(doc(3)), None]
    client = FakeClient([doc(1)], script)
    stop = RecordingStop(on_wait=lambda: client.collection.recreate(fresh))
    report = sync(url, source(client), stop=stop)
    assert stop.waits  # the stream backed off once, then checked the collection
    assert report.rebuilds == 1
    # the fresh collection, and the insert made into it after the reconnect
    assert [d["_id"] for d in client.collection.docs] == [doc(9)["_id"], doc(3)["_id"]]
    assert tables(url) == reference_tables(client.collection.docs, TODAY)


def test_a_checkpoint_without_an_identity_is_accepted_and_the_identity_recorded(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = FakeClient([doc(1)], [None, insert(doc(2)), None])
    sync(url, source(client))
    with Store(url) as store:  # as written by an earlier version: no "history"
        found = store.load_checkpoint(NAME)
        assert found is not None
        old = json.loads(found.position)
        del old["history"]
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE cs_checkpoint SET position = ?", (json.dumps(old, separators=(",", ":")),)
            )
    caplog.set_level(logging.INFO, logger="coffeeshop")
    report = sync(url, source(client))
    assert report.rebuilds == 0 and report.applied == 1
    assert any("recording it now" in r.getMessage() for r in caplog.records)
    assert position(url)["history"] == {"uuid": client.collection.uuid.hex, "set": "rs0"}


# -- item 4: a namespace that does not exist ----------------------------------------------------


@pytest.mark.parametrize(
    ("database", "collection"), [("coffeshop", "receipt"), ("coffeeshop", "receipts")]
)
def test_a_misspelt_namespace_is_refused_in_one_line(
    url: str, database: str, collection: str
) -> None:
    client = FakeClient([doc(1)], [None])
    src = source(client, database=database, collection=collection)
    with pytest.raises(ConfigError) as info:
        sync(url, src)
    message = str(info.value)
    assert f"collection {collection!r} does not exist in database {database!r}" in message
    assert "--wait-for-collection" in message and "\n" not in message
    assert client.collection.watch_calls == [] and client.collection.find_calls == []


def test_a_misspelt_collection_on_a_standalone_server_is_refused(url: str) -> None:
    from fake_mongo import mongomock_client

    client = mongomock_client()
    client["coffeeshop"]["receipt"].insert_one(doc(1))
    src = MongoSource(URI, collection="reciept", client_factory=lambda: client)
    with pytest.raises(ConfigError, match="its collections: receipt"):
        sync(url, src)


def test_waiting_for_a_collection_until_it_is_created(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = FakeClient([doc(1)], [None], namespace=("coffeeshop", "later"))
    looks = {"n": 0}

    def created_on_the_third_look() -> None:
        looks["n"] += 1
        if looks["n"] == 2:
            client.namespace = ("coffeeshop", "receipt")

    stop = RecordingStop(on_wait=created_on_the_third_look)
    report = sync(url, source(client, wait_for_collection=True), stop=stop)
    assert stop.waits[:2] == [5.0, 5.0]
    assert report.applied == 1
    waiting = [r.getMessage() for r in caplog.records if "waiting for it" in r.getMessage()]
    assert waiting == [f"{NAME} does not exist yet: waiting for it to be created"]


def test_sync_help_names_the_wait_option_and_what_polling_sees() -> None:
    from coffeeshop.cli import app

    result = CliRunner().invoke(app, ["sync", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--wait-for-collection" in text
    assert "new documents only" not in text
    assert "updates and deletes by a read of the whole collection every 5 minutes" in text


# -- item 9: one masking path -------------------------------------------------------------------

SECRET_URI = (
    "mongodb://app:s3cret@fake-host:27017/?authSource=admin&tls=true"
    "&tlsCertificateKeyFilePassword=s3cret&authMechanismProperties=AWS_SESSION_TOKEN:s3cret"
)


def test_the_history_lost_message_never_holds_a_secret_uri_option(url: str) -> None:
    client = FakeClient([doc(1)], [None, OperationFailure("history gone", code=286), None])

    def secret_source() -> MongoSource:
        return MongoSource(SECRET_URI, client_factory=lambda: client)

    sync(url, secret_source())
    with pytest.raises(SourceHistoryLost) as info:
        sync(url, secret_source(), rebuild=False)
    message = str(info.value)
    assert "s3cret" not in message
    assert "tlsCertificateKeyFilePassword=***" in message
    assert "--source 'mongodb://app:***@fake-host:27017/?authSource=admin" in message
    assert "s3cret" not in secret_source().repair_args


def test_a_driver_error_quoting_the_uri_is_masked() -> None:
    exc = OperationFailure(f"cannot parse {SECRET_URI}", code=2)
    assert "s3cret" not in describe(exc)


# -- item 10: wording ---------------------------------------------------------------------------


def test_resuming_says_streaming_changes_not_the_checkpoint_json(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = FakeClient([doc(1)], [None, insert(doc(2)), None])
    sync(url, source(client))
    caplog.clear()
    caplog.set_level(logging.INFO, logger="coffeeshop")
    sync(url, source(client))
    lines = [r.getMessage() for r in caplog.records]
    assert f"resuming {NAME} by streaming changes after the checkpoint's resume token" in lines
    assert f"{NAME}: streaming changes" in lines
    assert not any('{"mode"' in line for line in lines), lines
