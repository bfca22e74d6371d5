"""Which history a checkpoint belongs to, and whether the collection exists at all.

A resume token alone does not say that the server still holds the history it points into:
a collection dropped and created again, a restore, or a node restarted without its data
can accept an old token and go on as if nothing had happened. So every position also keeps
the *identity* of its history: the collection's UUID (`listCollections` `info.uuid`,
new whenever the collection is created again or restored without `--preserveUUID`) and the
replica set's name (`hello` `setName`). It is checked when a run starts and when the change
stream is opened again after a failure: a different identity is a lost history
(`SourceHistoryLost`: the engine rebuilds, or stops per `--on-history-lost`). A checkpoint
written before identities were kept is accepted, and the identity recorded from then on.

A namespace that does not exist (a misspelt `--database` or `--collection`) is refused with
one line, unless the source was told to wait for it to be created.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Any

from coffeeshop.errors import ConfigError, SourceHistoryLost
from coffeeshop.retry import StopSignal
from coffeeshop.sources.base import SourceBatch
from coffeeshop.sources.mongo.errors import Stopped

log = logging.getLogger("coffeeshop.mongo")

WAIT_SECONDS = 5.0  # between two looks for a collection that does not exist yet


def collection_info(client: Any, database: str, collection: str) -> dict[str, Any] | None:
    """The collection's `listCollections` entry; None when it does not exist."""
    infos = list(client[database].list_collections(filter={"name": collection}))
    return dict(infos[0]) if infos else None


def hello_of(client: Any) -> dict[str, Any]:
    """The server's `hello` reply (`isMaster` on MongoDB 4.4.0 and 4.4.1, which lack it)."""
    from pymongo.errors import OperationFailure

    try:
        return dict(client.admin.command("hello"))
    except OperationFailure as exc:
        if exc.code != 59:  # CommandNotFound
            raise
        return dict(client.admin.command("isMaster"))


def identity(info: dict[str, Any], hello: dict[str, Any]) -> dict[str, str]:
    """What identifies the history of the collection described by `info`."""
    found: dict[str, str] = {}
    uuid = (info.get("info") or {}).get("uuid")
    if uuid is not None:
        found["uuid"] = bytes(uuid).hex()
    if hello.get("setName"):
        found["set"] = str(hello["setName"])
    return found


def check(name: str, recorded: dict[str, str] | None, current: dict[str, str]) -> None:
    """Raise `SourceHistoryLost` when the recorded identity is not the current one."""
    if recorded is None:
        if current:
            log.info(
                "the checkpoint of %s does not record which collection it belongs to (an "
                "older version): recording it now (%s)",
                name,
                _said(current),
            )
        return
    changed = [key for key in recorded if key in current and recorded[key] != current[key]]
    if changed:
        raise SourceHistoryLost(
            f"{name} is not the collection of the checkpoint ({_said(current)}; the checkpoint "
            f"has {_said(recorded)}): it was dropped and created again, restored, or the "
            "server lost its data"
        )


def namespace_info(
    client: Any,
    database: str,
    collection: str,
    *,
    name: str,
    wait: bool,
    call: Callable[[Callable[[], Any], str], Any],
    stop: StopSignal,
) -> dict[str, Any]:
    """The collection's `listCollections` entry. A namespace that does not exist is refused
    (`ConfigError`), or with `wait` looked for every `WAIT_SECONDS` until it is created.
    `call` runs a server call with the source's retries."""
    waited = False
    while True:
        info = call(lambda: collection_info(client, database, collection), "list the collections")
        if info is not None:
            return info
        if not wait:
            names = call(
                lambda: list(client[database].list_collection_names()), "list the collections"
            )
            raise missing(name, database, collection, names)
        if not waited:
            log.warning("%s does not exist yet: waiting for it to be created", name)
            waited = True
        if stop.wait(WAIT_SECONDS):
            raise Stopped


def check_post_images(info: dict[str, Any], name: str, collection: str) -> None:
    """`whenAvailable` reads post-images: refuse a collection that does not record them."""
    options = info.get("options") or {}
    if not (options.get("changeStreamPreAndPostImages") or {}).get("enabled"):
        raise ConfigError(
            f"--full-document whenAvailable needs post-images, but {name} does not "
            f'record them: run `db.runCommand({{collMod: "{collection}", '
            "changeStreamPreAndPostImages: {enabled: true}})` (MongoDB 6.0+), or use "
            "--full-document updateLookup"
        )


def missing(name: str, database: str, collection: str, names: list[str]) -> ConfigError:
    """The one line refusing a namespace that does not exist."""
    there = ", ".join(sorted(names)[:10]) or "none"
    return ConfigError(
        f"{name}: collection {collection!r} does not exist in database {database!r} "
        f"(its collections: {there}); check --database and --collection, or pass "
        "--wait-for-collection to wait until it is created"
    )


def verify(
    client: Any,
    database: str,
    collection: str,
    hello: Callable[[], dict[str, Any]],
    recorded: dict[str, str],
    name: str,
) -> None:
    """After a reconnect: the collection must still be the one of `recorded`."""
    info = collection_info(client, database, collection)
    if info is None:
        raise SourceHistoryLost(f"{name} no longer exists (it was dropped)")
    check(name, recorded, identity(info, hello() if "set" in recorded else {}))


def stamped(batch: SourceBatch, current: dict[str, str]) -> SourceBatch:
    """The batch with the history's identity kept in its position."""
    if batch.position is None or not current:
        return batch
    return dataclasses.replace(batch, position=with_identity(batch.position, current))


def with_identity(position: str, current: dict[str, str]) -> str:
    if not current:
        return position
    state = json.loads(position)
    state["history"] = current
    return json.dumps(state, separators=(",", ":"))


def _said(found: dict[str, str]) -> str:
    parts = []
    if "uuid" in found:
        parts.append(f"collection UUID {found['uuid']}")
    if "set" in found:
        parts.append(f"replica set {found['set']!r}")
    return ", ".join(parts) or "no identity"
