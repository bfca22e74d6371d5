"""`GET /events`: the data version pushed as Server-Sent Events (see `coffeeshop.api.events`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from coffeeshop.api.deps import Api, only_known
from coffeeshop.api.events import (
    BUSY_RETRY_AFTER,
    MEDIA_TYPE,
    STREAM_HEADERS,
)
from coffeeshop.api.head import HEAD_KEY
from coffeeshop.api.params import Params
from coffeeshop.api.routes._docs import DATA_RESPONSES

router = APIRouter(tags=["pipeline"], responses=DATA_RESPONSES)


@router.get(
    "/events",
    dependencies=[Depends(only_known(Params))],
    response_class=StreamingResponse,
    responses={
        200: {"content": {MEDIA_TYPE: {}}, "description": "An endless event stream."},
        503: {"description": "This worker has all its streams open: poll /pipeline instead."},
    },
    summary="Server-Sent Events: the data version, each time it changes",
)
async def events(request: Request, api: Api) -> Response:
    """`event: version` with the data version as its id and `/pipeline`'s body as its data,
    at once and after every commit that changed the tables (at most one event per 20 ms: the
    latest); `: heartbeat` comment lines in between. Poll `/pipeline` when this answers 503."""
    slots = api.streams
    if request.scope.get(HEAD_KEY):
        return Response(media_type=MEDIA_TYPE, headers=STREAM_HEADERS)
    if slots.open >= slots.cap or slots.closing:
        return Response(
            "Too many event streams open: poll /pipeline instead.\n",
            status_code=503,
            media_type="text/plain",
            headers={"Retry-After": str(BUSY_RETRY_AFTER)},
        )
    return StreamingResponse(
        slots.stream(api.watcher, api.pipeline_status),
        media_type=MEDIA_TYPE,
        headers=STREAM_HEADERS,
    )
