"""Quarantined input: what was rejected, where it came from, and why."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from coffeeshop.api import queries
from coffeeshop.api.deps import Api, QuarantineQuery, only_known
from coffeeshop.api.params import QuarantineParams
from coffeeshop.api.routes._docs import TABLE_RESPONSES
from coffeeshop.api.schemas import QuarantineEntry

router = APIRouter(tags=["pipeline"], responses=TABLE_RESPONSES)


@router.get(
    "/quarantine",
    response_model=list[QuarantineEntry],
    dependencies=[Depends(only_known(QuarantineParams))],
    summary="Quarantined input, oldest first",
)
async def quarantine(params: QuarantineQuery, request: Request, api: Api) -> Response:
    """100 entries unless `limit` says otherwise; page with `offset`."""
    return await api.cached(
        request, ("quarantine", params.key()), lambda conn: queries.quarantine(conn, params)
    )
