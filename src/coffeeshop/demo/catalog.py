"""What the shops sell: the menu, how many lines a receipt has, and what sells at which hour.

Data and small pure helpers for the demo's receipt generator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import accumulate

__all__ = ["MENU", "MONEY", "MenuLines", "Product", "format_money"]


@dataclass(frozen=True, slots=True)
class Product:
    """One menu item: its name, its price in cents, its category and how popular it is."""

    name: str
    cents: int
    category: str
    popularity: float

    @property
    def price(self) -> float:
        return self.cents / 100


MENU: tuple[Product, ...] = (
    # Espresso drinks and coffee.
    Product("Espresso", 260, "coffee", 5.0),
    Product("Double Espresso", 320, "coffee", 2.5),
    Product("Americano", 310, "coffee", 7.0),
    Product("Cappuccino", 390, "coffee", 9.0),
    Product("Café Latte", 420, "coffee", 11.0),
    Product("Flat White", 400, "coffee", 6.0),
    Product("Cortado", 360, "coffee", 2.5),
    Product("Macchiato", 340, "coffee", 2.0),
    Product("Mocha", 460, "coffee", 3.5),
    Product("Caramel Macchiato", 480, "coffee", 3.0),
    Product("Iced Latte", 450, "cold", 3.5),
    Product("Cold Brew", 410, "cold", 3.0),
    Product("Filter Coffee", 240, "coffee", 5.5),
    Product("Hot Chocolate", 370, "sweet", 2.5),
    # Teas.
    Product("Chai Latte", 430, "tea", 3.0),
    Product("Matcha Latte", 490, "tea", 2.0),
    Product("English Breakfast Tea", 280, "tea", 2.5),
    Product("Earl Grey", 280, "tea", 1.8),
    Product("Green Tea", 290, "tea", 1.5),
    Product("Peppermint Tea", 270, "tea", 1.2),
    # Pastries and desserts.
    Product("Croissant", 295, "pastry", 6.0),
    Product("Pain au Chocolat", 325, "pastry", 3.5),
    Product("Blueberry Muffin", 310, "pastry", 3.0),
    Product("Cinnamon Roll", 355, "pastry", 2.5),
    Product("Banana Bread", 340, "pastry", 2.0),
    Product("Crème Brûlée", 550, "dessert", 1.2),
    Product("Chocolate Brownie", 320, "dessert", 2.0),
    # Breakfast and sandwiches.
    Product("Bagel with Cream Cheese", 415, "breakfast", 2.5),
    Product("Avocado Toast", 790, "breakfast", 2.0),
    Product("Ham & Cheese Toastie", 695, "sandwich", 3.0),
    Product("Caprese Panini", 745, "sandwich", 2.5),
    Product("Turkey Club", 825, "sandwich", 2.0),
    # Beans and bottles.
    Product("House Blend Beans 250g", 1250, "beans", 0.6),
    Product("Single Origin Ethiopia 250g", 1575, "beans", 0.3),
    Product("Orange Juice", 360, "cold", 1.5),
    Product("Sparkling Water", 195, "cold", 1.2),
)

# Share of quantities 1, 2 and 3 on a receipt line.
QUANTITY_WEIGHTS: tuple[float, ...] = (86.0, 10.0, 4.0)
QUANTITIES = len(QUANTITY_WEIGHTS)
# Share of receipts with 1..6 lines.
LINE_COUNT_WEIGHTS: tuple[float, ...] = (38.0, 30.0, 16.0, 9.0, 5.0, 2.0)

# Dayparts: what sells depends on the hour. 0: morning (5-10), 1: lunch (11-14), 2: later.
DAYPART_OF_HOUR: tuple[int, ...] = (2,) * 5 + (0,) * 6 + (1,) * 4 + (2,) * 9
_DAYPART_FACTOR: dict[str, tuple[float, float, float]] = {
    "coffee": (1.3, 0.8, 0.8),
    "cold": (0.5, 1.2, 1.3),
    "sweet": (0.7, 0.8, 1.5),
    "tea": (0.8, 0.8, 1.4),
    "pastry": (1.6, 0.6, 0.9),
    "dessert": (0.2, 1.0, 1.6),
    "breakfast": (1.8, 0.5, 0.2),
    "sandwich": (0.2, 3.0, 0.8),
    "beans": (1.0, 1.0, 1.0),
}


def format_money(cents: int) -> str:
    """An amount in cents as a JSON number with at most 2 decimals: 420 -> "4.2", 300 -> "3.0".

    The text is exactly what `repr(cents / 100)` gives for any realistic amount, so the JSON
    number reads back as the same float a POS would have stored.
    """
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    if frac % 10 == 0:
        return f"{sign}{whole}.{frac // 10}"
    return f"{sign}{whole}.{frac:02d}"


class _MoneyText(dict[int, str]):
    """Cache: cents -> JSON text."""

    def __missing__(self, cents: int) -> str:
        text = self[cents] = format_money(cents)
        return text


MONEY = _MoneyText()


@dataclass(frozen=True, slots=True)
class MenuLines:
    """The menu as receipt lines. A line's code is product index * 3 + quantity - 1; each code
    has its JSON text, its cents and its (name, quantity, price) for a native document."""

    codes: list[int]
    fragments: list[str]
    cents: list[int]
    docs: list[tuple[str, int, float]]
    code_cum: list[list[float]]  # cumulative weights of the codes, per daypart
    line_counts: list[int]  # 1..6 lines on a receipt
    line_count_cum: list[float]

    @classmethod
    def build(cls) -> MenuLines:
        fragments: list[str] = []
        cents: list[int] = []
        docs: list[tuple[str, int, float]] = []
        for product in MENU:
            name = json.dumps(product.name, ensure_ascii=False)
            price = format_money(product.cents)
            for quantity in range(1, QUANTITIES + 1):
                fragments.append(
                    f'{{"product_name":{name},"product_quantity":{quantity},'
                    f'"product_price":{price}}}'
                )
                cents.append(product.cents * quantity)
                docs.append((product.name, quantity, product.price))
        total_q = sum(QUANTITY_WEIGHTS)
        code_cum = [
            list(
                accumulate(
                    product.popularity * _DAYPART_FACTOR[product.category][part] * weight / total_q
                    for product in MENU
                    for weight in QUANTITY_WEIGHTS
                )
            )
            for part in range(3)
        ]
        return cls(
            codes=list(range(len(MENU) * QUANTITIES)),
            fragments=fragments,
            cents=cents,
            docs=docs,
            code_cum=code_cum,
            line_counts=list(range(1, len(LINE_COUNT_WEIGHTS) + 1)),
            line_count_cum=list(accumulate(LINE_COUNT_WEIGHTS)),
        )
