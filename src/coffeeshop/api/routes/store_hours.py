"""Receipts per store and hour of day: the whole grid behind `store_peak_hours`."""

from __future__ import annotations

from fastapi import APIRouter

from coffeeshop.api import queries
from coffeeshop.api.params import StoreParams
from coffeeshop.api.routes._docs import TABLE_RESPONSES
from coffeeshop.api.routes._query_route import QueryRoute, register
from coffeeshop.api.schemas import StoreHourRow

router = APIRouter(tags=["tables"], responses=TABLE_RESPONSES)

register(
    router,
    QueryRoute(
        "/store_hours",
        StoreHourRow,
        StoreParams,
        queries.store_hours,
        "Receipts per store per hour of day (the heat map)",
        "All time, ordered by store, then hour; hours without receipts are left out. Its\n"
        "maximum per store is that store's row of `/store_peak_hours`.",
    ),
)
