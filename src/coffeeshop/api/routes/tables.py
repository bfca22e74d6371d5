"""The four analytics tables, with the original paths, fields and JSON types.

With no parameters each returns all rows, as the original did. Responses come from the
cache while the data version stands (see `coffeeshop.api.cache`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from coffeeshop.api import queries
from coffeeshop.api.deps import (
    Api,
    ItemQuery,
    StoreMonthlyQuery,
    StoreQuery,
    SummaryQuery,
    only_known,
)
from coffeeshop.api.params import ItemParams, StoreMonthlyParams, StoreParams, SummaryParams
from coffeeshop.api.routes._docs import TABLE_RESPONSES
from coffeeshop.api.schemas import (
    ItemPerformanceRow,
    ReceiptsSummaryRow,
    StoreMonthlyRow,
    StorePeakHoursRow,
)

router = APIRouter(tags=["tables"], responses=TABLE_RESPONSES)


@router.get(
    "/receipts_summary",
    response_model=list[ReceiptsSummaryRow],
    dependencies=[Depends(only_known(SummaryParams))],
    summary="Daily snapshots of spend and items per receipt, this and last week's sales",
)
async def receipts_summary(params: SummaryQuery, request: Request, api: Api) -> Response:
    """One row per day the engine ran, oldest first. Money is an exact JSON number."""
    return await api.query(request, "receipts_summary", queries.receipts_summary, params)


@router.get(
    "/store_monthly",
    response_model=list[StoreMonthlyRow],
    dependencies=[Depends(only_known(StoreMonthlyParams))],
    summary="Sales per store per month",
)
async def store_monthly(params: StoreMonthlyQuery, request: Request, api: Api) -> Response:
    """Ordered by month, then store. A range whose start is after its end is a 422."""
    return await api.query(request, "store_monthly", queries.store_monthly, params)


@router.get(
    "/item_performance",
    response_model=list[ItemPerformanceRow],
    dependencies=[Depends(only_known(ItemParams))],
    summary="Units sold per product, all time",
)
async def item_performance(params: ItemQuery, request: Request, api: Api) -> Response:
    """Best sellers first (`order=total_sold`, the default), or by name (`order=item_name`)."""
    return await api.query(request, "item_performance", queries.item_performance, params)


@router.get(
    "/store_peak_hours",
    response_model=list[StorePeakHoursRow],
    dependencies=[Depends(only_known(StoreParams))],
    summary="Each store's busiest hour of day",
)
async def store_peak_hours(params: StoreQuery, request: Request, api: Api) -> Response:
    """Ordered by store. A tie between hours goes to the earliest."""
    return await api.query(request, "store_peak_hours", queries.store_peak_hours, params)
