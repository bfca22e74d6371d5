"""CPU of `Delta.add`, the summing a batch's plan does per receipt: 100,000 parsed receipts
(50 stores, 3 years, 40 products, 1-4 lines each) added, then every second one subtracted,
`prune()`, a fresh `Delta` each round; `time.process_time`, best of 5 rounds.

    .venv/bin/python bench/bench_delta.py [SRC]

SRC: a `src/` tree to import `coffeeshop` from (another checkout's, to compare), else this
one's. Run two trees side by side (both started together) on a busy machine: they then share
its load."""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from typing import Any

if len(sys.argv) > 1:
    sys.path.insert(0, sys.argv[1])

import coffeeshop
from coffeeshop.core.plan import Delta
from coffeeshop.core.receipts import Receipt, parse_receipt

RECEIPTS = 100_000
ROUNDS = 5
PRODUCTS = [f"Product {i}" for i in range(40)]


def receipts(n: int, seed: int = 24) -> list[Receipt]:
    rng = random.Random(seed)
    start = dt.date(2024, 1, 1)
    out = []
    for i in range(n):
        day = start + dt.timedelta(days=rng.randrange(3 * 365))
        items = [
            {
                "product_name": rng.choice(PRODUCTS),
                "product_quantity": rng.randint(1, 3),
                "product_price": 1.0,
            }
            for _ in range(rng.randint(1, 4))
        ]
        doc: dict[str, Any] = {
            "_id": i,
            "Store_ID": rng.randint(1, 50),
            "transactionDate": day.isoformat(),
            "transactionTime": f"{rng.randint(6, 21):02d}:{rng.randrange(60):02d}:00",
            "total_price": round(rng.uniform(2, 40), 2),
            "items": items,
        }
        out.append(parse_receipt(doc))
    return out


def main() -> None:
    added = receipts(RECEIPTS)
    subtracted = added[::2]
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        delta = Delta()
        add = delta.add
        for r in added:
            add(r, +1)
        for r in subtracted:
            add(r, -1)
        delta.prune()
        best = min(best, time.process_time() - started)
    print(f"{coffeeshop.__file__}: {best:.3f} CPU s (best of {ROUNDS})")


if __name__ == "__main__":
    main()
