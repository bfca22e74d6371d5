"""The owner's view beyond the four tables: daily sales, honest week and day comparisons,
quarantine counts by reason, and the display settings (currency, store names)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from coffeeshop.api import insights
from coffeeshop.api.deps import Api, only_known
from coffeeshop.api.insights import ComparisonParams, DailySalesParams, ReasonParams
from coffeeshop.api.routes._docs import DATA_RESPONSES, TABLE_RESPONSES
from coffeeshop.api.routes._query_route import QueryRoute, document, register
from coffeeshop.api.schemas import (
    ComparisonRow,
    DailySalesRow,
    DisplaySettings,
    QuarantineReasonRow,
)

router = APIRouter(tags=["insights"], responses=TABLE_RESPONSES)
settings_router = APIRouter(tags=["insights"], responses=DATA_RESPONSES)

register(
    router,
    QueryRoute(
        "/daily_sales",
        DailySalesRow,
        DailySalesParams,
        insights.daily_sales,
        "Receipts and sales per day (the daily trend)",
        "Oldest first; days without receipts are left out. All stores from the per-day state the\n"
        "engine keeps; one store (`store_id`) from its current receipts.",
    ),
)


@router.get(
    "/sales_comparison",
    response_model=list[ComparisonRow],
    dependencies=[Depends(only_known(ComparisonParams))],
    summary="Today and this week so far, against the same part of last week",
)
async def sales_comparison(
    params: Annotated[ComparisonParams, Query()], request: Request, api: Api
) -> Response:
    """Four rows: `today` (until the end of the current hour) and `same_day_last_week` (the
    same weekday a week ago, until the same hour); `week_to_date` (Monday to now) and
    `same_period_last_week` (Monday a week ago to the same weekday and hour). A partial week is
    never compared with a whole one. Receipts count by their own date and hour."""
    now = dt.datetime.now(api.settings.zone()).replace(tzinfo=None)
    day = dt.date.fromisoformat(params.day) if params.day is not None else now.date()
    default_hour = now.hour if params.day is None else 23
    until = params.hour if params.hour is not None else default_hour
    hour = dt.datetime.combine(day, dt.time(until))
    store_id = params.store_id
    return await api.cached(
        request,
        ("sales_comparison", store_id),
        lambda conn: insights.sales_comparison(conn, hour, store_id),
        variant=hour.strftime("%Y%m%dT%H"),
        alias=params.day is not None,  # "now" moves on: never answer it from the fast path
    )


register(
    router,
    QueryRoute(
        "/quarantine_reasons",
        QuarantineReasonRow,
        ReasonParams,
        insights.quarantine_reasons,
        "Quarantined entries counted by reason",
        "Most frequent first (ties by reason).",
    ),
)


@document(
    settings_router, "/display", DisplaySettings, "How the dashboard shows money, stores and time"
)
def display(api: Api) -> dict[str, Any]:
    settings = api.settings
    zone = settings.zone()
    return {
        "currency": settings.currency,
        "store_names": {str(k): v for k, v in sorted(settings.store_name_map.items())},
        "timezone": settings.timezone or str(zone),
        "now": dt.datetime.now(zone).replace(tzinfo=None).isoformat(timespec="seconds"),
    }
