"""The four analytics tables, with the original paths, fields and JSON types.

With no parameters each returns all rows, as the original did. Responses come from the
cache while the data version stands (see `coffeeshop.api.cache`)."""

from __future__ import annotations

from fastapi import APIRouter

from coffeeshop.api import queries, schemas
from coffeeshop.api.params import ItemParams, StoreMonthlyParams, StoreParams, SummaryParams
from coffeeshop.api.routes._docs import TABLE_RESPONSES
from coffeeshop.api.routes._query_route import QueryRoute, register

router = APIRouter(tags=["tables"], responses=TABLE_RESPONSES)

ROUTES = (
    QueryRoute(
        "/receipts_summary",
        schemas.ReceiptsSummaryRow,
        SummaryParams,
        queries.receipts_summary,
        "Daily snapshots of spend and items per receipt, this and last week's sales",
        "One row per day the engine ran, oldest first. Money is an exact JSON number.",
    ),
    QueryRoute(
        "/store_monthly",
        schemas.StoreMonthlyRow,
        StoreMonthlyParams,
        queries.store_monthly,
        "Sales per store per month",
        "Ordered by month, then store. A range whose start is after its end is a 422.",
    ),
    QueryRoute(
        "/item_performance",
        schemas.ItemPerformanceRow,
        ItemParams,
        queries.item_performance,
        "Units sold per product, all time",
        "Best sellers first (`order=total_sold`, the default), or by name (`order=item_name`).",
    ),
    QueryRoute(
        "/store_peak_hours",
        schemas.StorePeakHoursRow,
        StoreParams,
        queries.store_peak_hours,
        "Each store's busiest hour of day",
        "Ordered by store. A tie between hours goes to the earliest.",
    ),
)

for _route in ROUTES:
    register(router, _route)
