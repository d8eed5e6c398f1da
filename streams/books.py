"""The streamer's view of a market's book: every resting order's size, and the price levels they add up to.

Kept from the market's book of record read at one ``sequence`` (``trading.selectors.resting_orders``) and then
advanced one committed ``book.changed`` event at a time, each carrying the sequence it made. ``apply`` answers
the levels that changed, as level 2 updates show them. Pure: no database, no network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)


@dataclass
class LevelBook:
    sequence: int
    orders: dict[int, tuple[str, Decimal, Decimal]] = field(default_factory=dict)  # id -> (side, price, size)
    levels: dict[str, dict[Decimal, Decimal]] = field(default_factory=lambda: {"buy": {}, "sell": {}})

    @classmethod
    def from_orders(cls, sequence: int, rows) -> LevelBook:
        book = cls(sequence)
        book.apply_orders([(pk, side, price, size) for pk, side, price, size in rows])
        return book

    def apply_orders(self, changes) -> list[tuple[str, Decimal, Decimal]]:
        """Orders' new resting sizes (0: off the book) -> the levels they changed: (side, price, level size)."""
        touched: dict[tuple[str, Decimal], None] = {}
        for pk, side, price, size in changes:
            old = self.orders.pop(pk, None)
            if old is not None:
                self._add(old[0], old[1], -old[2])
                touched[(old[0], old[1])] = None
            if size > 0:
                self.orders[pk] = (side, price, size)
                self._add(side, price, size)
                touched[(side, price)] = None
        return [(side, price, self.levels[side].get(price, ZERO)) for side, price in touched]

    def _add(self, side: str, price: Decimal, size: Decimal) -> None:
        level = self.levels[side]
        total = level.get(price, ZERO) + size
        if total > 0:
            level[price] = total
        else:
            level.pop(price, None)

    def side(self, side: str, depth: int) -> list[tuple[Decimal, Decimal]]:
        prices = sorted(self.levels[side], reverse=side == "buy")[:depth]
        return [(price, self.levels[side][price]) for price in prices]

    def best(self, side: str) -> Decimal | None:
        level = self.levels[side]
        if not level:
            return None
        return max(level) if side == "buy" else min(level)
