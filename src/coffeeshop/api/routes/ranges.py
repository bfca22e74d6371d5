"""The owner's questions over any date and hour range, from the counted tables: per store and
day, a month so far against the month before, products sold, receipts per weekday and hour,
and a day against its usual weekday."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from coffeeshop.api import ranges
from coffeeshop.api.deps import Api, only_known
from coffeeshop.api.params import Params, RangeParams
from coffeeshop.api.ranges import DayCheckParams, HourRangeParams, MonthToDateParams
from coffeeshop.api.routes._docs import TABLE_RESPONSES
from coffeeshop.api.schemas import (
    DayCheckRow,
    ItemSalesRow,
    MonthToDateRow,
    StoreDailyRow,
    StoreWeekdayHourRow,
)

router = APIRouter(tags=["ranges"], responses=TABLE_RESPONSES)


@dataclass(frozen=True, slots=True)
class RangeRoute:
    """An endpoint that is one query over its parameters (cached under them)."""

    path: str
    model: type[BaseModel]
    params: type[Params]
    query: Callable[..., Awaitable[Any]]
    summary: str
    doc: str
    dated: bool = False  # the query also takes today's date (local, COFFEESHOP_TIMEZONE)


ROUTES = (
    RangeRoute(
        "/store_daily",
        StoreDailyRow,
        RangeParams,
        ranges.store_daily,
        "Receipts, sales and units per store and day",
        "By day, then store; days without receipts are left out.",
    ),
    RangeRoute(
        "/item_sales",
        ItemSalesRow,
        HourRangeParams,
        ranges.item_sales,
        "Units per product over a range of days and hours, best sellers first",
        "Ties by name. Receipts carry no item prices, so a product's sales are not known.",
    ),
    RangeRoute(
        "/store_weekday_hours",
        StoreWeekdayHourRow,
        HourRangeParams,
        ranges.store_weekday_hours,
        "Receipts per store, weekday and hour, and their average per such weekday",
        "By store, weekday, hour. Without day_from/day_to the range runs from the first to "
        "the last day with receipts (of the store, when given).",
    ),
    RangeRoute(
        "/store_month_to_date",
        MonthToDateRow,
        MonthToDateParams,
        ranges.store_month_to_date,
        "Each store's month so far against the same days of the month before",
        "From the 1st to today (local date in COFFEESHOP_TIMEZONE) or the month's end, "
        "against the same days of the month before; ranked by the change in percent.",
        dated=True,
    ),
    RangeRoute(
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


def _register(route: RangeRoute) -> None:
    name = route.path.removeprefix("/")

    async def endpoint(params: Any, request: Request, api: Api) -> Response:
        if not route.dated:
            return await api.query(request, name, route.query, params)
        today = dt.datetime.now(api.settings.zone()).date()
        return await api.cached(
            request,
            (name, params.key()),
            lambda conn: route.query(conn, params, today),
            variant=today.isoformat(),
            alias=False,  # "today" moves on: never answer it from the fast path
        )

    endpoint.__name__ = name
    endpoint.__doc__ = route.doc
    # the parameters' model is known only here: FastAPI reads it from the annotations
    endpoint.__annotations__ = {
        "params": Annotated[route.params, Query()],
        "request": Request,
        "api": Api,
        "return": Response,
    }
    router.get(
        route.path,
        response_model=list[route.model],  # type: ignore[name-defined]
        dependencies=[Depends(only_known(route.params))],
        summary=route.summary,
    )(endpoint)


for _route in ROUTES:
    _register(_route)
