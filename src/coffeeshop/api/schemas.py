"""Response shapes, for the OpenAPI document only: the endpoints send prerendered bytes, so
these models are never used to validate or serialize a response on the hot path. Tests check
that every response conforms to them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

Money = Annotated[
    Decimal,
    WithJsonSchema(
        {"type": "number", "description": "Exact decimal with 2 places, written with its digits."}
    ),
]


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReceiptsSummaryRow(Row):
    as_of: dt.date = Field(description="The day of this snapshot (local date).")
    spend_per_rcpt: Money = Field(description="All-time average total_price per receipt.")
    items_per_rcpt: Money = Field(description="All-time average units per receipt.")
    this_week_sales: Money = Field(description="Sales of the week of as_of (Monday first).")
    last_week_sales: Money = Field(description="Sales of the week before.")


class StoreMonthlyRow(Row):
    month: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM")
    store_id: int
    sales: Money


class ItemPerformanceRow(Row):
    item_name: str
    total_sold: int = Field(description="Units sold, all time.")


class StorePeakHoursRow(Row):
    store_id: int
    peak_hour: int = Field(ge=0, le=23, description="Hour of day with the most receipts.")
    tx_count: int = Field(description="Receipts in that hour, all time.")


class StoreHourRow(Row):
    store_id: int
    hour: int = Field(ge=0, le=23, description="Hour of day (local time of the receipt).")
    receipts: int = Field(ge=1, description="Receipts in that hour, all time.")


class QuarantineEntry(Row):
    id: int
    receipt_id: str | None = Field(description="The receipt's _id, when it could be read.")
    reason: str = Field(description="What was wrong, field by field.")
    source: str
    position: str = Field(description="Where in the source (e.g. line and byte offset).")
    raw: str = Field(
        description="The input as received: its first 1,000 characters (the whole text is "
        "at /quarantine/{id}/raw)."
    )
    raw_length: int = Field(description="Length of the whole raw text, in characters.")
    raw_truncated: bool = Field(description="True when `raw` holds only the first part.")
    received_at: dt.datetime


class SourceStatus(Row):
    source: str
    committed_at: dt.datetime = Field(description="When its last batch was committed (UTC).")
    seconds_since_commit: float
    behind: int | None = Field(
        description="What the source still held beyond that batch when read (bytes of a file)."
    )
    source_time: dt.datetime | None = Field(
        description="The source's own time of the newest applied change, when it has one."
    )
    applied: int
    quarantined: int
    batches: int


class PipelineTotals(Row):
    applied: int
    quarantined: int
    batches: int
    behind: int | None
    last_committed_at: dt.datetime | None
    seconds_since_commit: float | None


class PipelineStatus(Row):
    data_version: int = Field(description="Bumped by every commit that changes the tables.")
    changed_at: dt.datetime = Field(description="When the data version last moved (UTC).")
    checked_at: dt.datetime = Field(description="When this status was read (UTC).")
    database: str = Field(description="The database URL, password hidden.")
    totals: PipelineTotals
    sources: list[SourceStatus]


class Health(Row):
    status: Literal["ok"]


class Ready(Row):
    status: Literal["ready"]
    data_version: int


class NotReady(Row):
    status: Literal["unavailable"]
    detail: str


class Problem(Row):
    detail: str


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description='Where, e.g. ["query", "limit"].')
    msg: str = Field(description="What is wrong with it.")
    type: str
    input: str | None = Field(None, description="The value given (cut at 100 characters).")


class ValidationProblem(BaseModel):
    message: str = Field(description="One line naming each bad parameter and why.")
    detail: list[ValidationIssue]


class DailySalesRow(Row):
    day: dt.date = Field(description="The receipts' transactionDate.")
    receipts: int = Field(ge=1, description="Current valid receipts of that day.")
    sales: Money = Field(description="Their total_price, summed exactly.")


class ComparisonRow(Row):
    period: Literal["today", "same_day_last_week", "week_to_date", "same_period_last_week"]
    label: str = Field(description="The period in words.")
    first_day: dt.date
    last_day: dt.date = Field(description="Counted up to the end of `until_hour` on this day.")
    until_hour: int = Field(ge=0, le=23, description="The hour of `at` (local time).")
    receipts: int
    sales: Money
    units: int = Field(description="Sum of product_quantity over the receipts' items.")
    spend_per_rcpt: Money = Field(description="sales / receipts, half-up (0 without receipts).")
    items_per_rcpt: Money = Field(description="units / receipts, half-up (0 without receipts).")


class QuarantineReasonRow(Row):
    reason: str = Field(description="The reason (or its field, with by=field).")
    entries: int = Field(ge=1)
    latest_id: int = Field(description="The newest entry's id (see /quarantine).")


class DisplaySettings(Row):
    currency: str | None = Field(description="ISO 4217 code (COFFEESHOP_CURRENCY), or null.")
    store_names: dict[str, str] = Field(description="Store id -> name (COFFEESHOP_STORE_NAMES).")
    timezone: str = Field(description="The zone of 'today' (COFFEESHOP_TIMEZONE).")
    now: str = Field(description="The local time now in that zone, YYYY-MM-DDTHH:MM:SS.")


class StoreDailyRow(Row):
    day: dt.date = Field(description="The receipts' transactionDate.")
    store_id: int
    receipts: int = Field(ge=1, description="Current valid receipts of the store that day.")
    sales: Money = Field(description="Their total_price, summed exactly.")
    units: int = Field(description="Sum of product_quantity over their items.")


class ItemSalesRow(Row):
    product: str
    units: int = Field(ge=1, description="Units sold in the range (days, hours, store).")


class StoreWeekdayHourRow(Row):
    store_id: int
    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 = Monday … 7 = Sunday.")
    hour: int = Field(ge=0, le=23, description="Hour of day (local time of the receipt).")
    receipts: int = Field(ge=1, description="Receipts in that hour on those weekdays.")
    days: int = Field(ge=1, description="How many such weekdays the range holds.")
    average_receipts: Money = Field(description="receipts / days, half-up.")


class MonthToDateRow(Row):
    store_id: int
    rank: int = Field(ge=1, description="By change_pct, largest first; no earlier sales last.")
    month: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM")
    day_from: dt.date = Field(description="The month's 1st.")
    day_to: dt.date = Field(description="Today, or the month's last day.")
    so_far: bool = Field(description="The month is not over: its figures are partial.")
    receipts: int
    sales: Money
    previous_day_from: dt.date = Field(description="The previous month's 1st.")
    previous_day_to: dt.date = Field(description="The same day of the previous month.")
    previous_receipts: int
    previous_sales: Money
    change: Money = Field(description="sales - previous_sales.")
    change_pct: Money | None = Field(
        description="change in percent of previous_sales, half-up; null without earlier sales."
    )


class DayCheckRow(Row):
    store_id: int | None = Field(description="The store; null for all stores together.")
    day: dt.date
    so_far: bool = Field(description="The day is today (or later): its figures are partial.")
    weeks: int = Field(description="Same weekdays compared (the weeks before the day).")
    receipts: int
    receipts_mean: Money
    receipts_min: int
    receipts_max: int
    receipts_outside: bool = Field(description="receipts is below min or above max.")
    sales: Money
    sales_mean: Money
    sales_min: Money
    sales_max: Money
    sales_outside: bool = Field(description="sales is below min or above max.")
