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

Self-trade prevention is the incoming order's ``stp``: ``cancel_newest`` (it is cancelled), ``cancel_oldest`` (the
resting order is cancelled and it goes on), ``cancel_both``, and ``decrement_and_cancel``: the smaller of the two is
cancelled and the larger one decremented by the smaller's size, both when equal (``MakerDecrement`` and
``Outcome.decremented``; a market buy by funds only decrements its funds by the cost of the resting order at its
price). A fill-or-kill order that meets its own order is not fillable unless it cancels the oldest.

Stop orders (``stop``: a market order once triggered; ``stop_limit``: a limit order) wait off the book until the
last trade price reaches their ``stop_price``: a buy stop at or above it, a sell stop at or below it. Each trade
is checked in turn; the stops one trade reaches trigger nearest first (buy stops by ascending stop price, sell
stops by descending, then by id), and they meet the book one after the other once the order that traded is done,
in that trigger order (``Outcome.cascade``); their own trades may trigger more, which queue behind them. What
a triggered stop-limit rests takes its place in the queue at its trigger: just after the order whose trade
triggered it, in trigger order (``Outcome.priority``), not at its (older) id. A stop whose price the last trade
already reached when it arrives triggers at once. With no trade yet, stops wait.

Orders may carry ``expire_at`` (good-til-time; any comparable time): ``Book.expire(now)`` takes the resting orders
and waiting stops whose time has come off the book, and ``submit(order, now=...)`` expires an order that arrives
late without matching it.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Context, Decimal, localcontext
from typing import Any

BUY, SELL = "buy", "sell"
LIMIT, MARKET, STOP, STOP_LIMIT = "limit", "market", "stop", "stop_limit"
STOP_TYPES = (STOP, STOP_LIMIT)
GTC, IOC, FOK, GTT = "gtc", "ioc", "fok", "gtt"
RESTS = (GTC, GTT)  # the times in force whose remainder rests on the book
CANCEL_NEWEST, CANCEL_OLDEST = "cancel_newest", "cancel_oldest"
CANCEL_BOTH, DECREMENT_AND_CANCEL = "cancel_both", "decrement_and_cancel"

# Final states of an incoming order after it met the book (``PENDING``: a stop waiting for its trigger).
OPEN, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED = "open", "partially_filled", "filled", "cancelled", "rejected"
PENDING, EXPIRED = "pending_trigger", "expired"

# Reasons, stable strings stored on the order.
POST_ONLY_WOULD_CROSS = "post_only_would_cross"
FOK_NOT_FILLABLE = "fok_not_fillable"
IOC_REMAINDER = "ioc_remainder"
NO_LIQUIDITY = "no_liquidity"
FUNDS_EXHAUSTED = "funds_exhausted"
SELF_TRADE = "self_trade_prevented"
EXPIRED_REASON = "expired"

ZERO = Decimal(0)
ONE = Decimal(1)
# Prices x sizes x fee rates stay far below 60 significant digits: no silent rounding in the engine.
EXACT = Context(prec=60)


PRIORITY_SHIFT = 20  # a priority is (anchor id << 20) + position in a trigger cascade


def priority_of(order_id: int) -> int:
    """The time priority of an order that enters the book when it is accepted: its id."""
    return order_id << PRIORITY_SHIFT


@dataclass(slots=True)
class Resting:
    """An order on the book. ``remaining`` is the base size still open. ``priority`` orders a price level (lower
    first): ``priority_of(id)``, or for a triggered stop the place it took when it triggered (``Outcome``)."""

    id: int
    account: int
    side: str
    price: Decimal
    remaining: Decimal
    expire_at: Any = None
    priority: int = -1

    def __post_init__(self):
        if self.priority < 0:
            self.priority = self.id << PRIORITY_SHIFT


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
    stop_price: Decimal | None = None
    expire_at: Any = None
    priority: int | None = None  # set when a stop triggers: its place in the queue (``Outcome.priority``)


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


@dataclass(frozen=True, slots=True)
class MakerDecrement:
    """Self-trade prevention ``decrement_and_cancel`` took ``size`` off a resting order that stays on the book."""

    order_id: int
    size: Decimal


@dataclass(frozen=True, slots=True)
class Expired:
    order_id: int
    remaining: Decimal


@dataclass(slots=True)
class Outcome:
    """What one order did. ``decremented``: size taken off it by ``decrement_and_cancel``; ``triggered``: it is a
    stop that triggered; ``cascade``: the outcomes of the stops that its trades triggered, in trigger order."""

    order_id: int
    status: str
    reason: str = ""
    matches: list[Match] = field(default_factory=list)
    maker_cancels: list[MakerCancel] = field(default_factory=list)
    filled: Decimal = ZERO
    rested: Decimal = ZERO
    maker_decrements: list[MakerDecrement] = field(default_factory=list)
    decremented: Decimal = ZERO
    triggered: bool = False
    cascade: list[Outcome] = field(default_factory=list)
    priority: int | None = None  # a triggered stop's time priority: just after the order whose trade triggered it

    def all(self) -> Iterator[Outcome]:
        """This outcome, then those of the stops it triggered, in the order they happened."""
        yield self
        yield from self.cascade


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
        if queue and queue[-1].priority > order.priority:
            # Time priority is acceptance order (the id; a triggered stop's trigger time), even when an older order
            # reaches the book later: a book rebuilt from the database then queues exactly like this one.
            position = len(queue)
            while position > 0 and queue[position - 1].priority > order.priority:
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
    """The order book of one market. ``last_price``: the last trade's price (the caller sets it when it loads
    the book), which stops trigger on."""

    def __init__(self, *, tick_size: Decimal, lot_size: Decimal, last_price: Decimal | None = None):
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.bids = _Side(is_bid=True)
        self.asks = _Side(is_bid=False)
        self.orders: dict[int, Resting] = {}
        self.last_price = last_price
        self.stops: dict[int, Incoming] = {}
        # Waiting stops, the next to trigger last: buys by (-stop, -id), sells by (stop, -id).
        self._buy_stops: list[tuple[Decimal, int]] = []
        self._sell_stops: list[tuple[Decimal, int]] = []
        self._triggered: deque[Incoming] = deque()
        self._anchor, self._cascade_seq = 0, 0  # the order whose trades trigger stops now, and how many so far
        self._expiries: list[tuple[Any, int]] = []  # heap of (expire_at, id); stale entries skipped when popped

    # --- maintenance -------------------------------------------------------------------------------------

    def add(self, order: Resting) -> None:
        """Put a resting order on the book (used to rebuild the book from stored orders, in id order)."""
        if order.id in self.orders:
            raise ValueError(f"order {order.id} is already on the book")
        self.orders[order.id] = order
        self._side(order.side).add(order)
        if order.expire_at is not None:
            heapq.heappush(self._expiries, (order.expire_at, order.id))

    def add_stop(self, order: Incoming) -> None:
        """Put a stop order aside until the last trade price reaches its stop price (also to rebuild the book)."""
        if order.type not in STOP_TYPES or order.stop_price is None:
            raise ValueError("only a stop or stop-limit order with a stop price waits for a trigger")
        self.stops[order.id] = order
        if order.side == BUY:
            bisect.insort(self._buy_stops, (-order.stop_price, -order.id))
        else:
            bisect.insort(self._sell_stops, (order.stop_price, -order.id))
        if order.expire_at is not None:
            heapq.heappush(self._expiries, (order.expire_at, order.id))

    def remove(self, order_id: int) -> Resting | Incoming | None:
        """Take a resting order or a waiting stop off the book."""
        order = self.orders.pop(order_id, None)
        if order is not None:
            self._side(order.side).remove(order)
            return order
        stop = self.stops.pop(order_id, None)
        if stop is not None:
            if stop.side == BUY:
                self._buy_stops.remove((-stop.stop_price, -stop.id))
            else:
                self._sell_stops.remove((stop.stop_price, -stop.id))
        return stop

    def reduce(self, order_id: int, remaining: Decimal) -> None:
        """Reduce what a resting order (or the size of a waiting stop) still offers; it keeps its place."""
        order = self.orders.get(order_id)
        if order is not None:
            if remaining <= 0:
                raise ValueError("a reduction leaves something: cancel the order instead")
            order.remaining = remaining
        elif order_id in self.stops:
            self.stops[order_id].size = remaining

    def expire(self, now) -> list[Expired]:
        """Take off the book every resting order and waiting stop whose ``expire_at`` is ``now`` or before."""
        out = []
        while self._expiries and self._expiries[0][0] <= now:
            at, order_id = heapq.heappop(self._expiries)
            order = self.orders.get(order_id) or self.stops.get(order_id)
            if order is None or order.expire_at != at:
                continue  # gone already (filled, cancelled), or amended to another time
            self.remove(order_id)
            out.append(Expired(order_id, order.remaining if isinstance(order, Resting) else order.size))
        return out

    def next_expiry(self):
        """The earliest ``expire_at`` on the book (None if none)."""
        while self._expiries:
            at, order_id = self._expiries[0]
            order = self.orders.get(order_id) or self.stops.get(order_id)
            if order is not None and order.expire_at == at:
                return at
            heapq.heappop(self._expiries)
        return None

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

    # --- stops -------------------------------------------------------------------------------------------

    @staticmethod
    def _reached(side: str, stop_price: Decimal, price: Decimal | None) -> bool:
        if price is None:
            return False
        return price >= stop_price if side == BUY else price <= stop_price

    def _traded_at(self, price: Decimal) -> None:
        """A trade at ``price``: it is the last price now, and the stops it reaches queue in trigger order."""
        self.last_price = price
        for queue, side in ((self._buy_stops, BUY), (self._sell_stops, SELL)):
            while queue:
                key, negative_id = queue[-1]
                if not self._reached(side, -key if side == BUY else key, price):
                    break
                queue.pop()
                stop = self.stops.pop(-negative_id)
                self._cascade_seq += 1
                stop.priority = (self._anchor << PRIORITY_SHIFT) + min(self._cascade_seq, (1 << PRIORITY_SHIFT) - 1)
                self._triggered.append(stop)

    @staticmethod
    def _as_triggered(stop: Incoming) -> Incoming:
        if stop.type == STOP:
            return replace(stop, type=MARKET, time_in_force=IOC)
        return replace(stop, type=LIMIT)

    # --- matching ----------------------------------------------------------------------------------------

    def submit(self, order: Incoming, *, now=None) -> Outcome:
        """Match one incoming order; ``now`` (if given) expires it unmatched when its ``expire_at`` has passed.
        The stops its trades trigger meet the book after it (``Outcome.cascade``)."""
        if order.size is None and (order.funds is None or order.time_in_force == FOK or order.side != BUY):
            raise ValueError("only a market buy may give funds instead of size, and it cannot be fill-or-kill")
        if order.expire_at is not None and now is not None and order.expire_at <= now:
            return Outcome(order.id, EXPIRED, EXPIRED_REASON)
        self._anchor, self._cascade_seq = order.id, 0
        with localcontext(EXACT):
            if order.type in STOP_TYPES:
                if not self._reached(order.side, order.stop_price, self.last_price):
                    self.add_stop(order)
                    return Outcome(order.id, PENDING)
                outcome = self._execute(self._as_triggered(order))
                outcome.triggered = True
            else:
                outcome = self._execute(order)
            while self._triggered:
                triggered = self._triggered.popleft()
                stop = self._execute(self._as_triggered(triggered))
                stop.triggered, stop.priority = True, triggered.priority
                outcome.cascade.append(stop)
        return outcome

    def _execute(self, order: Incoming) -> Outcome:
        if order.post_only:
            return self._post_only(order)
        if order.time_in_force == FOK and not self._fillable(order):
            return Outcome(order.id, CANCELLED, FOK_NOT_FILLABLE)
        return self._match(order)

    def _post_only(self, order: Incoming) -> Outcome:
        best = self._opposite(order.side).best_price()
        if best is not None and crosses(order.side, order.price, best):
            return Outcome(order.id, REJECTED, POST_ONLY_WOULD_CROSS)
        self.add(Resting(order.id, order.account, order.side, order.price, order.size, order.expire_at,
                         -1 if order.priority is None else order.priority))
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
                    self._maker_cancel(outcome, maker)
                    continue
                if order.stp == DECREMENT_AND_CANCEL:
                    remaining, spent, goes_on = self._decrement(outcome, order, maker, remaining, spent, qty)
                    if goes_on:
                        continue
                elif order.stp == CANCEL_BOTH:
                    self._maker_cancel(outcome, maker)
                stop = SELF_TRADE
                break
            if order.funds is not None:
                spent += price * qty * (ONE + order.fee_rate)
            self._trade(outcome, order, maker, price, qty)
            if remaining is not None:
                remaining -= qty
        return self._finish(outcome, order, remaining, stop)

    def _maker_cancel(self, outcome: Outcome, maker: Resting) -> None:
        self.remove(maker.id)
        outcome.maker_cancels.append(MakerCancel(maker.id, SELF_TRADE, maker.remaining))

    def _decrement(self, outcome: Outcome, order: Incoming, maker: Resting, remaining: Decimal | None,
                   spent: Decimal, qty: Decimal) -> tuple[Decimal | None, Decimal, bool]:
        """Decrement-and-cancel against an own resting order: the smaller is cancelled, the larger decremented by
        it. A market buy by funds only counts the cost of what it met against its funds (``qty``: what its funds
        buy there). Returns (remaining, spent, whether the incoming order goes on)."""
        smaller = min(maker.remaining, qty if remaining is None else remaining)
        if remaining is None:
            spent += maker.price * smaller * (ONE + order.fee_rate)
        else:
            remaining -= smaller
            outcome.decremented += smaller
        if smaller == maker.remaining:
            self._maker_cancel(outcome, maker)
        else:
            maker.remaining -= smaller
            outcome.maker_decrements.append(MakerDecrement(maker.id, smaller))
        # It goes on only past an own order it cancelled, with size (or funds) left.
        return remaining, spent, maker.id not in self.orders and remaining != 0

    def _trade(self, outcome: Outcome, order: Incoming, maker: Resting, price: Decimal, qty: Decimal) -> None:
        outcome.matches.append(Match(maker.id, order.id, maker.account, order.account, price, qty, order.side))
        outcome.filled += qty
        maker.remaining -= qty
        if maker.remaining == 0:
            self.remove(maker.id)
        self._traded_at(price)

    def _finish(self, outcome: Outcome, order: Incoming, remaining: Decimal | None, stop: str) -> Outcome:
        if remaining == 0 and stop != SELF_TRADE:
            outcome.status = FILLED
            return outcome
        if order.type == MARKET and order.size is None:
            # A market buy by funds is done when it stops for want of money (module docstring); otherwise it is
            # cancelled, and the caller returns the funds it did not spend either way.
            spent_all = stop == FUNDS_EXHAUSTED and outcome.filled > 0
            outcome.status = FILLED if spent_all else CANCELLED
            outcome.reason = "" if spent_all else stop or NO_LIQUIDITY
            return outcome
        if order.type == LIMIT and order.time_in_force in RESTS and stop in ("", NO_LIQUIDITY):
            self.add(Resting(order.id, order.account, order.side, order.price, remaining, order.expire_at,
                             -1 if order.priority is None else order.priority))
            outcome.status = PARTIALLY_FILLED if outcome.filled else OPEN
            outcome.rested = remaining
            return outcome
        outcome.status = CANCELLED
        outcome.reason = stop if stop in (SELF_TRADE, FUNDS_EXHAUSTED) else (
            NO_LIQUIDITY if order.type == MARKET else IOC_REMAINDER
        )
        return outcome
