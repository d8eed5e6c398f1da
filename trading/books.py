"""The matcher's in-memory order books, one per market per worker process, kept in step with the database.

A book is only trusted under the market's advisory lock and only if it is as old as the database says:

- ``Market.match_seq`` counts committed matcher batches. A book built or last advanced at another number is
  stale (another worker process matched this market since, or our own batch rolled back): rebuild it from
  the resting orders.
- ``Market.cancel_seq`` counts cancels (and amends) of resting orders and waiting stops; each carries the number
  it got. A book behind on cancels only drops the orders cancelled since (or reduces those amended), without a
  rebuild.

Any error while a batch runs discards the book (``book_forget``): the transaction rolls back, the book must too.
"""

from __future__ import annotations

from dataclasses import dataclass

from trading.engine import Book, Incoming, Resting
from trading.models import OPEN_STATUSES, RESTING_STATUSES, Fill, Market, Order, OrderStatus, OrderType, Side


@dataclass
class CachedBook:
    book: Book
    epoch: tuple  # identifies the market row across a test database flush that reuses ids
    match_seq: int
    cancel_seq: int


_books: dict[int, CachedBook] = {}


def book_for(market: Market) -> CachedBook:
    """The market's book, rebuilt or brought up to date with the database. Call under the market lock."""
    cached = _books.get(market.pk)
    epoch = (market.pk, market.created_at)
    if cached is None or cached.epoch != epoch or cached.match_seq != market.match_seq:
        cached = _books[market.pk] = CachedBook(_book_load(market), epoch, market.match_seq, market.cancel_seq)
    elif cached.cancel_seq != market.cancel_seq:
        _cancels_apply(cached, market)
    return cached


def book_forget(market_id: int) -> None:
    _books.pop(market_id, None)


def books_clear() -> None:
    _books.clear()


def _book_load(market: Market) -> Book:
    """The resting orders in id order, the waiting stops, and the last trade price they trigger on."""
    last = Fill.objects.filter(market=market).order_by("-id").values_list("price", flat=True).first()
    book = Book(tick_size=market.tick_size, lot_size=market.lot_size, last_price=last)
    rows = (
        Order.objects.filter(market=market, status__in=RESTING_STATUSES)
        .order_by("id")
        .values_list("id", "account_id", "side", "price", "size", "filled_size", "expire_time", "book_priority")
    )
    for order_id, account_id, side, price, size, filled, expire_time, priority in rows:
        book.add(Resting(order_id, account_id, side, price, size - filled, expire_time,
                         -1 if priority is None else priority))
    for order in Order.objects.filter(market=market, status=OrderStatus.PENDING_TRIGGER).order_by("id"):
        book.add_stop(order_incoming(order))
    return book


def order_incoming(order: Order) -> Incoming:
    """An order as it meets the book."""
    funds = order.funds
    if funds is None and order.type == OrderType.MARKET and order.side == Side.BUY:
        funds = order.hold.amount  # a market buy by size spends at most what it holds
    return Incoming(order.pk, order.account_id, order.side, order.type, order.price, order.size, funds,
                    order.time_in_force, order.post_only, order.stp, order.taker_fee_rate, order.stop_price,
                    order.expire_time)


def _cancels_apply(cached: CachedBook, market: Market) -> None:
    """Drop the orders cancelled (or expired) since the book was read; reduce those amended in place."""
    changed = Order.objects.filter(market=market, cancel_seq__gt=cached.cancel_seq).values_list(
        "id", "status", "size", "filled_size")
    for order_id, status, size, filled in changed:
        if status in OPEN_STATUSES:
            cached.book.reduce(order_id, size - filled)
        else:
            cached.book.remove(order_id)
    cached.cancel_seq = market.cancel_seq
