"""The owner's questions over any date and hour range, from the counted tables: per store and
day, a month so far against the month before, products sold, receipts per weekday and hour,
and a day against its usual weekday."""

from __future__ import annotations

from fastapi import APIRouter

from coffeeshop.api import ranges
from coffeeshop.api.params import RangeParams
from coffeeshop.api.ranges import DayCheckParams, HourRangeParams, MonthToDateParams
from coffeeshop.api.routes._docs import TABLE_RESPONSES
from coffeeshop.api.routes._query_route import QueryRoute, register
from coffeeshop.api.schemas import (
    DayCheckRow,
    ItemSalesRow,
    MonthToDateRow,
    StoreDailyRow,
    StoreWeekdayHourRow,
)

router = APIRouter(tags=["ranges"], responses=TABLE_RESPONSES)


ROUTES = (
    QueryRoute(
        "/store_daily",
        StoreDailyRow,
        RangeParams,
        ranges.store_daily,
        "Receipts, sales and units per store and day",
        "By day, then store; days without receipts are left out.",
    ),
    QueryRoute(
        "/item_sales",
        ItemSalesRow,
        HourRangeParams,
        ranges.item_sales,
        "Units per product over a range of days and hours, best sellers first",
        "Ties by name. Receipts carry no item prices, so a product's sales are not known.",
    ),
    QueryRoute(
        "/store_weekday_hours",
        StoreWeekdayHourRow,
        HourRangeParams,
        ranges.store_weekday_hours,
        "Receipts per store, weekday and hour, and their average per such weekday",
        "By store, weekday, hour. Without day_from/day_to the range runs from the first to "
        "the last day with receipts (of the store, when given).",
    ),
    QueryRoute(
        "/store_month_to_date",
        MonthToDateRow,
        MonthToDateParams,
        ranges.store_month_to_date,
        "Each store's month so far against the same days of the month before",
        "From the 1st to today (local date in COFFEESHOP_TIMEZONE) or the month's end, "
        "against the same days of the month before; ranked by the change in percent.",
        dated=True,
    ),
    QueryRoute(
        "/day_check",
        DayCheckRow,
        DayCheckParams,
        ranges.day_check,
        f"A day against the same weekday of the {ranges.WEEKS} weeks before, per store and "
        "in total",
        f"Mean, min and max of the {ranges.WEEKS} same weekdays before; `*_outside` when the "
        "day is out of that range. Default day: yesterday (local date in COFFEESHOP_TIMEZONE).",
        dated=True,
    ),
)


for _route in ROUTES:
    register(router, _route)
