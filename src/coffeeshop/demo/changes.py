"""The lines mixed into generated receipts: replace and delete events of earlier receipts, and
deliberately invalid receipts.

`Changes` keeps a pool of receipts that may still change and draws, from its own random
stream, which extra line follows each new receipt.
"""

from __future__ import annotations

import json
from random import Random
from typing import Any

from coffeeshop.demo.catalog import LINE_COUNT_WEIGHTS, MENU, MONEY, QUANTITIES, MenuLines

__all__ = ["INVALID_KINDS", "Changes"]

# Deliberately invalid receipts, in the order they are emitted (cycling).
INVALID_KINDS: tuple[str, ...] = (
    "negative_total",
    "missing_store",
    "impossible_date",
    "impossible_time",
    "empty_product_name",
    "zero_quantity",
    "items_not_a_list",
    "store_not_a_number",
)

_POOL_LIMIT = 20_000  # receipts kept as targets for later updates and deletes
_INVALID_BIT = 1 << 63  # set in the counter part of the _id of invalid receipts only


def render_line(
    lines: MenuLines, oid: str, store: Any, date: str, clock: str, codes: list[int]
) -> str:
    """One receipt as a JSON line, like `ReceiptGenerator` writes new ones."""
    items = ",".join(lines.fragments[code] for code in codes)
    cents = sum(lines.cents[code] for code in codes)
    return (
        f'{{"_id":{{"$oid":"{oid}"}},"Store_ID":{store},"transactionDate":"{date}",'
        f'"transactionTime":"{clock}","total_price":{MONEY[cents]},"items":[{items}]}}'
    )


class Changes:
    """Replace, delete and invalid lines, in the given shares of all lines emitted.

    A record of a new receipt is `[oid, store, date, time, codes, seconds]`.
    """

    def __init__(
        self,
        seed: int,
        id_base: int,
        lines: MenuLines,
        update_share: float,
        delete_share: float,
    ) -> None:
        self.mix = Random(f"coffeeshop-changes:{seed}")
        self._id_base = id_base
        self._lines = lines
        self._update_share = update_share
        self._delete_share = delete_share
        # Receipts that may still be updated or deleted.
        self._pool: list[list[Any]] = []
        self._invalid_serial = 0
        self.last: list[Any] | None = None  # the latest new receipt

    def keep(self, record: list[Any]) -> None:
        """Keep a new receipt as a possible target of later updates and deletes."""
        pool = self._pool
        if len(pool) < _POOL_LIMIT:
            pool.append(record)
        else:  # forget a random older one: it will simply never change
            pool[self.mix.randrange(_POOL_LIMIT)] = record

    def line(self, r: float) -> str | None:
        """The extra line chosen by `r` (below the sum of the shares), or None when there
        is no receipt left to update or delete."""
        if r < self._update_share:
            return self._update_line()
        if r < self._update_share + self._delete_share:
            return self._delete_line()
        return self._invalid_line()

    def _update_line(self) -> str | None:
        pool = self._pool
        if not pool:
            return None
        mix = self.mix
        record = pool[mix.randrange(len(pool))]
        codes: list[int] = list(record[4])
        how = mix.random()
        if how < 0.15 and len(codes) < len(LINE_COUNT_WEIGHTS):
            codes.append(mix.randrange(len(MENU)) * QUANTITIES)  # one more item
        elif how < 0.3 and len(codes) > 1:
            del codes[mix.randrange(len(codes))]  # an item taken off
        else:  # a quantity corrected
            at = mix.randrange(len(codes))
            product, index = divmod(codes[at], QUANTITIES)
            index = (index + 1 + mix.randrange(QUANTITIES - 1)) % QUANTITIES
            codes[at] = product * QUANTITIES + index
        record[4] = codes
        oid, store, date, clock_text = record[:4]
        document = render_line(self._lines, oid, store, date, clock_text, codes)
        return (
            f'{{"operationType":"replace","documentKey":{{"_id":{{"$oid":"{oid}"}}}},'
            f'"fullDocument":{document}}}'
        )

    def _delete_line(self) -> str | None:
        pool = self._pool
        if not pool:
            return None
        at = self.mix.randrange(len(pool))
        record = pool[at]
        pool[at] = pool[-1]
        pool.pop()
        return f'{{"operationType":"delete","documentKey":{{"_id":{{"$oid":"{record[0]}"}}}}}}'

    def _invalid_line(self) -> str:
        """A receipt that breaks one validation rule (the kinds of INVALID_KINDS in turn),
        with an `_id` of its own that no valid receipt ever has."""
        assert self.last is not None
        _, store, date, clock_text, _, seconds = self.last
        mix = self.mix
        lines = self._lines
        kind = INVALID_KINDS[self._invalid_serial % len(INVALID_KINDS)]
        serial = self._invalid_serial
        self._invalid_serial = serial + 1
        n = mix.choices(lines.line_counts, cum_weights=lines.line_count_cum)[0]
        codes = mix.choices(lines.codes, cum_weights=lines.code_cum[1], k=n)
        items: Any = []
        for code in codes:
            name, quantity, price = lines.docs[code]
            items.append(
                {"product_name": name, "product_quantity": quantity, "product_price": price}
            )
        doc: dict[str, Any] = {
            "_id": {"$oid": f"{seconds << 64 | _INVALID_BIT | (self._id_base + serial):024x}"},
            "Store_ID": store,
            "transactionDate": date,
            "transactionTime": clock_text,
            "total_price": sum(lines.cents[code] for code in codes) / 100,
            "items": items,
        }
        _break(doc, kind, items, mix, store)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _break(doc: dict[str, Any], kind: str, items: Any, mix: Random, store: Any) -> None:
    """Make `doc` break the validation rule `kind` names."""
    if kind == "negative_total":
        doc["total_price"] = -doc["total_price"]
    elif kind == "missing_store":
        del doc["Store_ID"]
    elif kind == "impossible_date":
        doc["transactionDate"] = "2023-02-30"
    elif kind == "impossible_time":
        doc["transactionTime"] = "25:00"
    elif kind == "empty_product_name":
        items[mix.randrange(len(items))]["product_name"] = ""
    elif kind == "zero_quantity":
        items[mix.randrange(len(items))]["product_quantity"] = 0
    elif kind == "items_not_a_list":
        doc["items"] = items[0]
    else:  # store_not_a_number
        doc["Store_ID"] = f"store-{store}"
