"""Receipts per store and hour of day: the whole grid behind `store_peak_hours`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from coffeeshop.api import queries
from coffeeshop.api.deps import Api, StoreQuery, only_known
from coffeeshop.api.params import StoreParams
from coffeeshop.api.routes._docs import TABLE_RESPONSES
from coffeeshop.api.schemas import StoreHourRow

router = APIRouter(tags=["tables"], responses=TABLE_RESPONSES)


@router.get(
    "/store_hours",
    response_model=list[StoreHourRow],
    dependencies=[Depends(only_known(StoreParams))],
    summary="Receipts per store per hour of day (the heat map)",
)
async def store_hours(params: StoreQuery, request: Request, api: Api) -> Response:
    """All time, ordered by store, then hour; hours without receipts are left out. Its
    maximum per store is that store's row of `/store_peak_hours`."""
    return await api.query(request, "store_hours", queries.store_hours, params)
