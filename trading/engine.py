"""The matching engine: an in-memory order book per market, price-time priority. Pure Python, no Django.

The engine decides *what* trades; it moves no money. ``Book.submit`` takes one incoming order and returns an
``Outcome``: the matches (maker, taker, price, size), resting orders it cancelled (self-trade prevention,
cancel-oldest) and the incoming order's final state. The caller persists and settles that outcome.

Layout: each side keeps ``levels`` (price -> deque of resting orders, oldest first) and ``keys``, the level
prices sorted so that the best price is always the last element (bids ascending by price, asks ascending by
negated price), so taking the best level and removing an emptied best level are O(1). Inserting a new level is
a bisect. Quantities are ``Decimal``; callers pass values already on the market's tick and lot grid.

An order with ``funds`` (a market buy by funds, or a market buy by size capped by its hold) stops for want of
money (``FUNDS_EXHAUSTED``) in two places, both before self-trade prevention, so an order that could not buy from
a maker never cancels it nor is cancelled because of it:

- before it reads the book at all, when what is left cannot buy one lot at any price: one lot at one tick, fee
  included. Nothing beyond the liquidity it already took can change how such an order ends.
- at the next maker, when what is left cannot buy one lot at that maker's price.

A market buy by funds that stops for want of money is ``filled`` if it bought anything (it is done: the money is
spent, or what is left buys nothing at the market), else cancelled ``funds_exhausted``. While its funds still
buy a lot at the next maker's price it ends cancelled like any market order: ``no_liquidity`` when the book runs
out, ``self_trade_prevented`` at its own order with cancel-newest.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext

BUY, SELL = "buy", "sell"
LIMIT, MARKET = "limit", "market"
GTC, IOC, FOK = "gtc", "ioc", "fok"
CANCEL_NEWEST, CANCEL_OLDEST = "cancel_newest", "cancel_oldest"

# Final states of an incoming order after it met the book.
OPEN, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED = "open", "partially_filled", "filled", "cancelled", "rejected"

# Reasons, stable strings stored on the order.
POST_ONLY_WOULD_CROSS = "post_only_would_cross"
FOK_NOT_FILLABLE = "fok_not_fillable"
IOC_REMAINDER = "ioc_remainder"
NO_LIQUIDITY = "no_liquidity"
FUNDS_EXHAUSTED = "funds_exhausted"
SELF_TRADE = "self_trade_prevented"

ZERO = Decimal(0)
ONE = Decimal(1)
# Prices x sizes x fee rates stay far below 60 significant digits: no silent rounding in the engine.
EXACT = Context(prec=60)


@dataclass(slots=True)
class Resting:
    """An order on the book. ``remaining`` is the base size still open."""

    id: int
    account: int
    side: str
    price: Decimal
    remaining: Decimal


@dataclass(slots=True)
class Incoming:
    """An order meeting the book. Buys may carry ``funds``: a cap on the exact cost price*size*(1+fee_rate)."""

    id: int
    account: int
    side: str
    type: str = LIMIT
    price: Decimal | None = None
    size: Decimal | None = None
    funds: Decimal | None = None
    time_in_force: str = GTC
    post_only: bool = False
    stp: str = CANCEL_NEWEST
    fee_rate: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Match:
    maker_id: int
    taker_id: int
    maker_account: int
    taker_account: int
    price: Decimal
    size: Decimal
    aggressor_side: str


@dataclass(frozen=True, slots=True)
class MakerCancel:
    order_id: int
    reason: str
    remaining: Decimal


@dataclass(slots=True)
class Outcome:
    order_id: int
    status: str
    reason: str = ""
    matches: list[Match] = field(default_factory=list)
    maker_cancels: list[MakerCancel] = field(default_factory=list)
    filled: Decimal = ZERO
    rested: Decimal = ZERO


class _Side:
    __slots__ = ("is_bid", "levels", "keys")

    def __init__(self, is_bid: bool):
        self.is_bid = is_bid
        self.levels: dict[Decimal, deque[Resting]] = {}
        self.keys: list[Decimal] = []

    def _key(self, price: Decimal) -> Decimal:
        return price if self.is_bid else -price

    def best_price(self) -> Decimal | None:
        if not self.keys:
            return None
        key = self.keys[-1]
        return key if self.is_bid else -key

    def add(self, order: Resting) -> None:
        queue = self.levels.get(order.price)
        if queue is None:
            queue = self.levels[order.price] = deque()
            bisect.insort(self.keys, self._key(order.price))
        if queue and queue[-1].id > order.id:
            # Time priority is acceptance order (the id), even when an older order reaches the book later:
            # a book rebuilt from the database, in id order, then queues exactly like this one.
            position = len(queue)
            while position > 0 and queue[position - 1].id > order.id:
                position -= 1
            queue.insert(position, order)
        else:
            queue.append(order)

    def remove(self, order: Resting) -> None:
        queue = self.levels[order.price]
        if queue[0] is order:
            queue.popleft()
        else:
            queue.remove(order)
        if not queue:
            self._drop_level(order.price)

    def _drop_level(self, price: Decimal) -> None:
        del self.levels[price]
        key = self._key(price)
        if self.keys[-1] == key:
            self.keys.pop()
        else:
            del self.keys[bisect.bisect_left(self.keys, key)]

    def prices_best_first(self) -> Iterator[Decimal]:
        for key in reversed(self.keys):
            yield key if self.is_bid else -key

    def depth(self, levels: int) -> list[tuple[Decimal, Decimal]]:
        out = []
        for price in self.prices_best_first():
            if len(out) >= levels:
                break
            out.append((price, sum((o.remaining for o in self.levels[price]), ZERO)))
        return out


def crosses(side: str, limit: Decimal | None, price: Decimal) -> bool:
    """Would an order on ``side`` with ``limit`` (None: market) trade at a resting ``price``?"""
    if limit is None:
        return True
    return price <= limit if side == BUY else price >= limit


class Book:
    """The order book of one market."""

    def __init__(self, *, tick_size: Decimal, lot_size: Decimal):
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.bids = _Side(is_bid=True)
        self.asks = _Side(is_bid=False)
        self.orders: dict[int, Resting] = {}

    # --- maintenance -------------------------------------------------------------------------------------

    def add(self, order: Resting) -> None:
        """Put a resting order on the book (used to rebuild the book from stored orders, in id order)."""
        if order.id in self.orders:
            raise ValueError(f"order {order.id} is already on the book")
        self.orders[order.id] = order
        self._side(order.side).add(order)

    def remove(self, order_id: int) -> Resting | None:
        order = self.orders.pop(order_id, None)
        if order is not None:
            self._side(order.side).remove(order)
        return order

    def best_bid(self) -> Decimal | None:
        return self.bids.best_price()

    def best_ask(self) -> Decimal | None:
        return self.asks.best_price()

    def depth(self, levels: int = 10) -> dict[str, list[tuple[Decimal, Decimal]]]:
        return {"bids": self.bids.depth(levels), "asks": self.asks.depth(levels)}

    def _side(self, side: str) -> _Side:
        return self.bids if side == BUY else self.asks

    def _opposite(self, side: str) -> _Side:
        return self.asks if side == BUY else self.bids

    # --- matching ----------------------------------------------------------------------------------------

    def submit(self, order: Incoming) -> Outcome:
        if order.size is None and (order.funds is None or order.time_in_force == FOK or order.side != BUY):
            raise ValueError("only a market buy may give funds instead of size, and it cannot be fill-or-kill")
        with localcontext(EXACT):
            if order.post_only:
                return self._post_only(order)
            if order.time_in_force == FOK and not self._fillable(order):
                return Outcome(order.id, CANCELLED, FOK_NOT_FILLABLE)
            return self._match(order)

    def _post_only(self, order: Incoming) -> Outcome:
        best = self._opposite(order.side).best_price()
        if best is not None and crosses(order.side, order.price, best):
            return Outcome(order.id, REJECTED, POST_ONLY_WOULD_CROSS)
        self.add(Resting(order.id, order.account, order.side, order.price, order.size))
        return Outcome(order.id, OPEN, rested=order.size)

    def _affordable(self, order: Incoming, price: Decimal, spent: Decimal) -> Decimal:
        """The largest lot multiple the remaining funds buy at ``price``, fees included."""
        unit_cost = price * (ONE + order.fee_rate)
        size = ((order.funds - spent) / unit_cost // self.lot_size) * self.lot_size
        while size > 0 and spent + size * unit_cost > order.funds:  # guard against an inexact division
            size -= self.lot_size
        return max(size, ZERO)

    def _spent(self, order: Incoming, spent: Decimal) -> bool:
        """Whether the funds left cannot buy one lot at any price: every price on the book is at least one tick."""
        return order.funds is not None and order.funds - spent < self.tick_size * self.lot_size * (ONE + order.fee_rate)

    def _fillable(self, order: Incoming) -> bool:
        """Whether the whole size would trade now (fill-or-kill), without touching the book."""
        opposite = self._opposite(order.side)
        wanted, spent = order.size, ZERO
        for price in opposite.prices_best_first():
            if not crosses(order.side, order.price, price):
                return False
            for maker in opposite.levels[price]:
                if maker.account == order.account:
                    if order.stp == CANCEL_OLDEST:
                        continue
                    return False
                qty = min(wanted, maker.remaining)
                if order.funds is not None:
                    qty = min(qty, self._affordable(order, price, spent))
                    if qty <= 0:
                        return False
                    spent += price * qty * (ONE + order.fee_rate)
                wanted -= qty
                if wanted == 0:
                    return True
        return False

    def _match(self, order: Incoming) -> Outcome:
        outcome = Outcome(order.id, OPEN)
        opposite = self._opposite(order.side)
        remaining, spent, stop = order.size, ZERO, ""
        while remaining is None or remaining > 0:
            if self._spent(order, spent):
                stop = FUNDS_EXHAUSTED
                break
            price = opposite.best_price()
            if price is None:
                stop = NO_LIQUIDITY
                break
            if not crosses(order.side, order.price, price):
                break
            maker = opposite.levels[price][0]
            qty = maker.remaining if remaining is None else min(remaining, maker.remaining)
            if order.funds is not None:
                qty = min(qty, self._affordable(order, price, spent))
                if qty <= 0:
                    stop = FUNDS_EXHAUSTED
                    break
            if maker.account == order.account:
                if order.stp == CANCEL_OLDEST:
                    self.remove(maker.id)
                    outcome.maker_cancels.append(MakerCancel(maker.id, SELF_TRADE, maker.remaining))
                    continue
                stop = SELF_TRADE
                break
            if order.funds is not None:
                spent += price * qty * (ONE + order.fee_rate)
            self._trade(outcome, order, maker, price, qty)
            if remaining is not None:
                remaining -= qty
        return self._finish(outcome, order, remaining, stop)

    def _trade(self, outcome: Outcome, order: Incoming, maker: Resting, price: Decimal, qty: Decimal) -> None:
        outcome.matches.append(Match(maker.id, order.id, maker.account, order.account, price, qty, order.side))
        outcome.filled += qty
        maker.remaining -= qty
        if maker.remaining == 0:
            self.remove(maker.id)

    def _finish(self, outcome: Outcome, order: Incoming, remaining: Decimal | None, stop: str) -> Outcome:
        if remaining == 0:
            outcome.status = FILLED
            return outcome
        if order.type == MARKET and order.size is None:
            # A market buy by funds is done when it stops for want of money (module docstring); otherwise it is
            # cancelled, and the caller returns the funds it did not spend either way.
            spent_all = stop == FUNDS_EXHAUSTED and outcome.filled > 0
            outcome.status = FILLED if spent_all else CANCELLED
            outcome.reason = "" if spent_all else stop or NO_LIQUIDITY
            return outcome
        if order.type == LIMIT and order.time_in_force == GTC and stop in ("", NO_LIQUIDITY):
            self.add(Resting(order.id, order.account, order.side, order.price, remaining))
            outcome.status = PARTIALLY_FILLED if outcome.filled else OPEN
            outcome.rested = remaining
            return outcome
        outcome.status = CANCELLED
        outcome.reason = stop if stop in (SELF_TRADE, FUNDS_EXHAUSTED) else (
            NO_LIQUIDITY if order.type == MARKET else IOC_REMAINDER
        )
        return outcome
