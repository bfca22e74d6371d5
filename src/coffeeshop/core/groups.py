"""Counted tables, each declared once: a `Group` names its key (dimensions of a receipt) and
its values (measures of a receipt or of each of its item lines). Everything else is derived
from the declaration: the sums a batch's `Delta` and a partitioned read's `Partial` carry
(`GroupSums`), the table's schema, its add/subtract maintenance, reconcile's descriptor and
the CLI's listing (`coffeeshop.store.tables.counted`).

Pure: no I/O. Sums are integers (money in cents), so adding a receipt and subtracting it again
leaves exactly nothing; a group whose first value (its count) is zero has no row.

Adding a counted table (the README's "Adding a table": 8 files, counted): one `Group` in
`GROUPS` below; its reference formula in `core/recompute.py` (a field of `Tables` named as the
group); a step that creates and fills it in `store/migrations.py` (`SCHEMA_VERSION` follows);
its endpoint in `api/ranges.py`, `api/routes/ranges.py` and
`api/schemas.py`; a case in `tests/test_api_ranges.py`; its line in the README.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

# What a key can be made of: a receipt's context, in this order (see `GroupSums.add`).
DIMENSIONS = ("store_id", "day", "month", "hour")
LINE_DIMENSION = "product"  # an item line's product name (per-line groups only)
# Dimensions computed from another one of the context: name -> (source dimension, function).
DERIVED: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "weekday": ("day", dt.date.isoweekday),  # ISO weekday, 1 = Monday
}
# What a receipt contributes: its count, its total in cents, its units (per receipt); one
# receipt and the line's quantity (per line).
MEASURES = ("receipts", "cents", "units")
LINE_MEASURES = ("receipts", "units")


@dataclass(frozen=True, slots=True)
class Group:
    """One counted table: `table` keyed by `key` (dimensions), holding `values` (measures,
    the first of which is its count: a row whose count is zero goes). `per_line`: a row per
    item line of a receipt (the key may hold `product`), else a row per receipt."""

    name: str  # its field in `Tables` and in `GroupSums`
    table: str
    key: tuple[str, ...]
    values: tuple[str, ...]
    per_line: bool = False
    _at: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        dimensions = (*DIMENSIONS, LINE_DIMENSION) if self.per_line else DIMENSIONS
        measures = LINE_MEASURES if self.per_line else MEASURES
        unknown = [d for d in self.key if d not in dimensions and d not in DERIVED] + [
            m for m in self.values if m not in measures
        ]
        if unknown or not self.key or not self.values:
            raise ValueError(f"group {self.name}: cannot key or sum by {unknown or 'nothing'}")
        object.__setattr__(self, "_at", _key_getter(self.key, dimensions))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its declaration (the getters are derived again): partial sums travel
        to and from Dask workers, and a key getter can be a closure."""
        return (Group, (self.name, self.table, self.key, self.values, self.per_line))

    def key_of(self, context: tuple[Any, ...]) -> tuple[Any, ...]:
        return self._at(context)  # type: ignore[no-any-return]

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.key, *self.values)


def _key_getter(key: tuple[str, ...], dimensions: tuple[str, ...]) -> Any:
    """context -> key: an `itemgetter` unless the key holds a derived dimension."""
    if not any(d in DERIVED for d in key):
        getter = itemgetter(*(dimensions.index(d) for d in key))
        return getter if len(key) > 1 else lambda ctx: (getter(ctx),)
    parts = [
        (dimensions.index(DERIVED[d][0]), DERIVED[d][1])
        if d in DERIVED
        else (dimensions.index(d), None)
        for d in key
    ]
    return lambda ctx: tuple(ctx[i] if f is None else f(ctx[i]) for i, f in parts)


STORE_DAY = Group("store_day", "cs_store_day", ("day", "store_id"), ("receipts", "cents", "units"))
STORE_DAY_HOUR = Group(
    "store_day_hour", "cs_store_day_hour", ("day", "store_id", "hour"), ("receipts", "cents")
)
PRODUCT_HOUR = Group(
    "product_hour",
    "cs_product_hour",
    ("day", "store_id", "hour", "product"),
    ("units",),
    per_line=True,
)
# Coarse groups: a range of days is answered as its whole months from a month group plus its
# edge days from a day group (`api/ranges.py`; a question without hours sums the hours). Month
# or day first in each key: a range's months and days are looked up by equality, and each
# one's rows lie together. The chain-wide groups (no store) answer the ranges of all stores:
# their size does not grow with the stores.
STORE_MONTH_WEEKDAY_HOUR = Group(
    "store_month_weekday_hour",
    "cs_store_month_weekday_hour",
    ("month", "store_id", "weekday", "hour"),
    ("receipts",),
)
PRODUCT_DAY = Group(
    "product_day", "cs_product_day", ("day", "store_id", "product"), ("units",), per_line=True
)
PRODUCT_MONTH = Group(
    "product_month", "cs_product_month", ("month", "store_id", "product"), ("units",), per_line=True
)
PRODUCT_MONTH_HOUR = Group(
    "product_month_hour",
    "cs_product_month_hour",
    ("month", "store_id", "hour", "product"),
    ("units",),
    per_line=True,
)
CHAIN_PRODUCT_DAY = Group(
    "chain_product_day", "cs_chain_product_day", ("day", "product"), ("units",), per_line=True
)
CHAIN_PRODUCT_DAY_HOUR = Group(
    "chain_product_day_hour",
    "cs_chain_product_day_hour",
    ("day", "hour", "product"),
    ("units",),
    per_line=True,
)
CHAIN_PRODUCT_MONTH = Group(
    "chain_product_month",
    "cs_chain_product_month",
    ("month", "product"),
    ("units",),
    per_line=True,
)
CHAIN_PRODUCT_MONTH_HOUR = Group(
    "chain_product_month_hour",
    "cs_chain_product_month_hour",
    ("month", "hour", "product"),
    ("units",),
    per_line=True,
)
GROUPS: tuple[Group, ...] = (
    STORE_DAY,
    STORE_DAY_HOUR,
    PRODUCT_HOUR,
    STORE_MONTH_WEEKDAY_HOUR,
    PRODUCT_MONTH_HOUR,
    CHAIN_PRODUCT_DAY,
    CHAIN_PRODUCT_DAY_HOUR,
    CHAIN_PRODUCT_MONTH,
    CHAIN_PRODUCT_MONTH_HOUR,
)
# The groups schema step 6 added (`store/migrations.py`; a released step never changes).
MONTHLY_GROUPS: tuple[Group, ...] = (
    STORE_MONTH_WEEKDAY_HOUR,
    PRODUCT_DAY,
    PRODUCT_MONTH,
    PRODUCT_MONTH_HOUR,
    CHAIN_PRODUCT_DAY,
    CHAIN_PRODUCT_DAY_HOUR,
    CHAIN_PRODUCT_MONTH,
    CHAIN_PRODUCT_MONTH_HOUR,
)
# The groups schema step 7 dropped: each is its hourly group summed over the hours, which the
# range queries of one store read instead (a few thousand rows more at most), and each cost
# the sync about a row per item line (docs/benchmarks.md, "Fewer counted rows per item line").
# The chain-wide ones stay: a few rows per day whatever the stores, and their hourly tables
# are ten times larger.
RETIRED_GROUPS: tuple[Group, ...] = (PRODUCT_DAY, PRODUCT_MONTH)

Sums = dict[tuple[Any, ...], list[int]]  # key -> values, in the group's order
Context = tuple[int, dt.date, str, int]  # a receipt's (store_id, day, month, hour)
Line = tuple[str, int]  # (product, quantity)


@dataclass(slots=True)
class GroupSums:
    """Signed sums per group and key of a set of groups (`GROUPS` unless given)."""

    groups: tuple[Group, ...] = GROUPS
    sums: dict[str, Sums] = field(default_factory=dict)
    _adder: Callable[..., None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for group in self.groups:
            self.sums.setdefault(group.name, {})
        self._adder = adder(self.groups)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its groups and sums: the compiled adder is made again (`adder`)."""
        return (GroupSums, (self.groups, self.sums))

    def add(
        self, context: Context, cents: int, units: int, lines: Iterable[Line], sign: int
    ) -> None:
        """One receipt's contribution, `sign` times: `context` holds its `DIMENSIONS`;
        `lines` is read once (all per-line groups in one pass)."""
        self._adder(self.sums, context, cents, units, lines, sign)

    def include(self, other: GroupSums) -> None:
        """Add `other`'s sums (of the same groups) to these; `other` is not changed."""
        for name, theirs in other.sums.items():
            ours = self.sums.setdefault(name, {})
            for key, values in theirs.items():
                held = ours.get(key)
                if held is None:
                    ours[key] = list(values)
                else:
                    for i, value in enumerate(values):
                        held[i] += value

    def prune(self) -> None:
        """Drop keys whose changes cancel out."""
        for name, sums in self.sums.items():
            self.sums[name] = {k: v for k, v in sums.items() if any(v)}

    @property
    def is_empty(self) -> bool:
        return not any(self.sums.values())

    def rows(self, group: Group) -> dict[Any, Any]:
        """The group's rows from empty tables, as `Tables` holds them (rows whose count is
        zero left out; one value: the value itself, several: a tuple)."""
        single = len(group.values) == 1
        return {
            _cell(key): (values[0] if single else tuple(values))
            for key, values in self.sums.get(group.name, {}).items()
            if values[0]
        }


# What each measure of a receipt (or of one of its lines) is called in the adder's code.
_RECEIPT_MEASURE = {"receipts": "sign", "cents": "cents", "units": "units"}
_LINE_MEASURE = {"receipts": "sign", "units": "quantity"}


@functools.cache
def adder(groups: tuple[Group, ...]) -> Callable[..., None]:
    """`add(sums, context, cents, units, lines, sign)` for these groups, compiled once: one
    straight run of dictionary updates per receipt (and per line), no loop over the groups.
    The summing is the sync's hottest Python (issue 24); `GroupSums.add` is its only caller,
    and tests/test_groups.py holds it to a plain per-group sum."""
    used = {d for group in groups for d in group.key}
    code = [
        "def add(sums, context, cents, units, lines, sign):",
        "    store_id, day, month, hour = context",
        "    cents = sign * cents",
        "    units = sign * units",
    ]
    namespace: dict[str, Any] = {}
    for name, (source, derive) in DERIVED.items():
        if name in used:
            namespace[f"_{name}"] = derive
            code.append(f"    {name} = _{name}({source})")
    for i, group in enumerate(groups):
        code.append(f"    s{i} = sums[{group.name!r}]")
    for i, group in enumerate(groups):
        if not group.per_line:
            code += _update(i, group, _RECEIPT_MEASURE, "    ")
    per_line = [(i, group) for i, group in enumerate(groups) if group.per_line]
    if per_line:
        code += ["    for product, quantity in lines:", "        quantity = sign * quantity"]
        for i, group in per_line:
            code += _update(i, group, _LINE_MEASURE, "        ")
    exec("\n".join(code) + "\n", namespace)
    function: Callable[..., None] = namespace["add"]
    return function


def _update(i: int, group: Group, measure: dict[str, str], indent: str) -> list[str]:
    """The lines that add one receipt's (or line's) measures to group `i`'s row."""
    key = "(" + "".join(f"{d}, " for d in group.key) + ")"
    values = [measure[v] for v in group.values]
    return [
        f"{indent}key = {key}",
        f"{indent}held = s{i}.get(key)",
        f"{indent}if held is None:",
        f"{indent}    s{i}[key] = [{', '.join(values)}]",
        f"{indent}else:",
        *(f"{indent}    held[{n}] += {value}" for n, value in enumerate(values)),
    ]


def _cell(key: tuple[Any, ...]) -> Any:
    return key[0] if len(key) == 1 else key
