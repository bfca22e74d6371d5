"""The owner's questions over any date and hour range, from the counted tables: per store and
day, a month so far against the month before, products sold, receipts per weekday and hour,
and a day against its usual weekday."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from coffeeshop.api import ranges
from coffeeshop.api.deps import Api, only_known
from coffeeshop.api.ranges import DayCheckParams, HourRangeParams, MonthToDateParams, RangeParams
from coffeeshop.api.routes._docs import TABLE_RESPONSES
from coffeeshop.api.schemas import (
    DayCheckRow,
    ItemSalesRow,
    MonthToDateRow,
    StoreDailyRow,
    StoreWeekdayHourRow,
)

router = APIRouter(tags=["ranges"], responses=TABLE_RESPONSES)


@router.get(
    "/store_daily",
    response_model=list[StoreDailyRow],
    dependencies=[Depends(only_known(RangeParams))],
    summary="Receipts, sales and units per store and day",
)
async def store_daily(
    params: Annotated[RangeParams, Query()], request: Request, api: Api
) -> Response:
    """By day, then store; days without receipts are left out."""
    return await api.query(request, "store_daily", ranges.store_daily, params)


@router.get(
    "/item_sales",
    response_model=list[ItemSalesRow],
    dependencies=[Depends(only_known(HourRangeParams))],
    summary="Units per product over a range of days and hours, best sellers first",
)
async def item_sales(
    params: Annotated[HourRangeParams, Query()], request: Request, api: Api
) -> Response:
    """Ties by name. Receipts carry no item prices, so a product's sales are not known."""
    return await api.query(request, "item_sales", ranges.item_sales, params)


@router.get(
    "/store_weekday_hours",
    response_model=list[StoreWeekdayHourRow],
    dependencies=[Depends(only_known(HourRangeParams))],
    summary="Receipts per store, weekday and hour, and their average per such weekday",
)
async def store_weekday_hours(
    params: Annotated[HourRangeParams, Query()], request: Request, api: Api
) -> Response:
    """By store, weekday, hour. Without day_from/day_to the range runs from the first to the
    last day with receipts (of the store, when given)."""
    return await api.query(request, "store_weekday_hours", ranges.store_weekday_hours, params)


@router.get(
    "/store_month_to_date",
    response_model=list[MonthToDateRow],
    dependencies=[Depends(only_known(MonthToDateParams))],
    summary="Each store's month so far against the same days of the month before",
)
async def store_month_to_date(
    params: Annotated[MonthToDateParams, Query()], request: Request, api: Api
) -> Response:
    """From the 1st to today (local date in COFFEESHOP_TIMEZONE) or the month's end, against
    the same days of the month before; ranked by the change in percent."""
    today = dt.datetime.now(api.settings.zone()).date()
    return await api.cached(
        request,
        ("store_month_to_date", params.key()),
        lambda conn: ranges.store_month_to_date(conn, params, today),
        variant=today.isoformat(),
        alias=False,  # "today" moves on
    )


@router.get(
    "/day_check",
    response_model=list[DayCheckRow],
    dependencies=[Depends(only_known(DayCheckParams))],
    summary="A day against the same weekday of the 8 weeks before, per store and in total",
)
async def day_check(
    params: Annotated[DayCheckParams, Query()], request: Request, api: Api
) -> Response:
    """Mean, min and max of the 8 same weekdays before; `*_outside` when the day is out of
    that range. Default day: yesterday (local date in COFFEESHOP_TIMEZONE)."""
    today = dt.datetime.now(api.settings.zone()).date()
    return await api.cached(
        request,
        ("day_check", params.key()),
        lambda conn: ranges.day_check(conn, params, today),
        variant=today.isoformat(),
        alias=False,
    )
