"""Quarantined input: what was rejected, where it came from, and why.

The list carries the first `RAW_PREVIEW` characters of each entry's raw text (an entry can be
megabytes); one entry's whole text is streamed by `/quarantine/{id}/raw`, a piece at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.responses import StreamingResponse

from coffeeshop.api import queries
from coffeeshop.api.deps import Api, QuarantineQuery, only_known
from coffeeshop.api.params import Params, QuarantineParams
from coffeeshop.api.routes._docs import DATA_RESPONSES, TABLE_RESPONSES
from coffeeshop.api.schemas import Problem, QuarantineEntry

router = APIRouter(tags=["pipeline"], responses=DATA_RESPONSES)


@router.get(
    "/quarantine",
    response_model=list[QuarantineEntry],
    responses=TABLE_RESPONSES,
    dependencies=[Depends(only_known(QuarantineParams))],
    summary="Quarantined input, oldest first",
)
async def quarantine(params: QuarantineQuery, request: Request, api: Api) -> Response:
    """100 entries unless `limit` says otherwise (at most 1,000); page with `offset`.

    `raw` holds the first 1,000 characters of the input; `raw_length` is its whole length
    and `raw_truncated` says whether it was cut: `/quarantine/{id}/raw` has all of it."""
    return await api.query(request, "quarantine", queries.quarantine, params)


class NoParams(Params):
    pass


EntryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The entry's `id`.")]


@router.get(
    "/quarantine/{entry_id}/raw",
    response_class=StreamingResponse,
    dependencies=[Depends(only_known(NoParams))],
    summary="One quarantined entry's whole raw text",
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "The raw input as received, as UTF-8 text, streamed.",
        },
        404: {"model": Problem, "description": "No quarantine entry has this id."},
    },
)
async def quarantine_raw(entry_id: EntryId, api: Api) -> StreamingResponse:
    """The whole raw text of one entry, however long, streamed in pieces of 256 Ki
    characters (each read in its own short query, so a slow client holds no database
    connection)."""
    length = await api.database.read(lambda conn: queries.quarantine_raw_length(conn, entry_id))
    if length is None:
        raise HTTPException(status_code=404, detail=f"no quarantine entry with id {entry_id}")

    async def piece_at(start: int) -> str | None:
        return await api.database.read(
            lambda conn: queries.quarantine_raw_piece(conn, entry_id, start, queries.RAW_CHUNK)
        )

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(1, length + 1, queries.RAW_CHUNK):
            piece = await piece_at(start)
            if not piece:  # the entry went away meanwhile (a rebuild)
                return
            yield piece.encode("utf-8", "backslashreplace")

    return StreamingResponse(
        pieces(),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Raw-Length": str(length)},
    )
