"""MongoDB source positions: the checkpoint text, with BSON values as Extended JSON.

- `{"mode": "snapshot", "resume": TOKEN, "after": ID}`: reading the snapshot; the stream
  will start at TOKEN; a restart continues the snapshot after ID (None: from the start).
- `{"mode": "stream", "resume": TOKEN}`: streaming; TOKEN is the resume token after the
  last applied change, or the post-batch token of an idle poll.
- `{"mode": "poll", "marks": [[TIME, {TYPE: ID}], ...], "swept": TIME}`: polling a
  standalone server (see `poll`); `{"mode": "poll", "after": ID}` (older) is read too.
"""

from __future__ import annotations

import json
from typing import Any

from coffeeshop.sources.mongo.codec import from_text, id_bytes, to_text
from coffeeshop.sources.mongo.poll import type_of


def decoded(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """A checkpoint with its BSON values (stored as Extended JSON text) decoded."""
    if state is None:
        return None
    state = dict(state)
    for field in ("resume", "after", "marks"):
        if state.get(field) is not None:
            state[field] = decode(state[field])
    if state["mode"] == "poll":
        marks = [(float(at), dict(highs)) for at, highs in state.get("marks") or []]
        after = state.pop("after", None)
        if after is not None and type_of(after) is not None:  # a position of version 1
            marks = [(0.0, {type_of(after): after})]
        state["marks"] = marks
        state.setdefault("swept", None)  # None: read the whole collection first
    return state


def poll_position(marks: list[tuple[float, dict[str, Any]]], swept: float | None) -> str:
    state = {"mode": "poll", "marks": encode([[at, highs] for at, highs in marks])}
    state["swept"] = swept  # type: ignore[assignment]
    return json.dumps(state, separators=(",", ":"))


def id_key(doc_id: Any) -> bytes:
    return id_bytes(doc_id)


def position(mode: str, *, resume: Any = None, after: Any = None) -> str:
    state: dict[str, Any] = {"mode": mode}
    if resume is not None:
        state["resume"] = encode(resume)
    if mode != "stream":
        state["after"] = encode(after) if after is not None else None
    return json.dumps(state, separators=(",", ":"))


def encode(value: Any) -> str:
    """A BSON value (resume token, _id) as canonical Extended JSON, inside the position."""
    return to_text(value)


def decode(text: str) -> Any:
    return from_text(text)
