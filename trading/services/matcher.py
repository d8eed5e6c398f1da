"""The matcher's batch: under the market lock, the orders whose good-til-time has come expire, the oldest ``new``
orders go through the in-memory book (with the stops their trades trigger), and ``BatchSettlement`` writes what
happened. After commit the market's next expiry is scheduled (``trading.wakeups.market_wake_at``)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from trading import clock, outbox, sql
from trading.books import book_for, book_forget, order_incoming
from trading.models import TRADING_STATUSES, Market, MarketStatus, Order
from trading.services.isolation import SETTLEMENT_ERRORS, batch_isolate
from trading.services.settlement import BatchSettlement
from trading.wakeups import market_wake_at_on_commit, wake_flag_clear


@dataclass(frozen=True)
class MatchSummary:
    market_id: int
    locked: bool = True
    status: str = MarketStatus.OPEN
    orders: int = 0
    fills: int = 0
    more: bool = False


def market_match(*, market_id: int, wait: bool = False) -> MatchSummary:
    """Match the market's ``new`` orders, oldest first, up to ``MATCHER_BATCH_SIZE`` of them, and settle every
    fill, all in one transaction. ``more`` says whether new orders remain for another batch.

    Without ``wait`` a market locked by another transaction returns at once with ``locked=False``.
    Replays are harmless: a second run finds no ``new`` orders left. A crash rolls everything back, including
    this process's in-memory book, and the next run redoes the batch.
    """
    try:
        with transaction.atomic():
            market, no_batch = batch_market(market_id, wait=wait, expiring=True)
            if market is None:
                return no_batch
            batch_size = settings.MATCHER_BATCH_SIZE
            orders = [] if market.status not in TRADING_STATUSES else sql.orders_new(market_id, batch_size)
            cached = book_for(market)
            now = clock.now()
            expired = cached.book.expire(now)
            if orders or expired:
                fills = _batch_match(market, orders, cached, now, expired)
            else:
                fills = 0
            market_wake_at_on_commit(market_id, cached.book.next_expiry())
            return MatchSummary(market_id, status=market.status, orders=len(orders), fills=fills,
                                more=len(orders) == batch_size)
    except SETTLEMENT_ERRORS as exc:
        # An order whose settlement cannot be written: redo the batch without it (trading.services.isolation).
        book_forget(market_id)
        return batch_isolate(market_id=market_id, wait=wait, error=exc)
    except BaseException:
        book_forget(market_id)
        raise


def batch_market(market_id: int, *, wait: bool, expiring: bool = False) -> tuple[Market | None, MatchSummary | None]:
    """Take the market's lock for this transaction and read it: the open market, or (None, why no batch runs).
    With ``expiring``, a halted or cancel-only market is returned too: nothing matches (nor triggers) there, but
    good-til-time orders still expire on time."""
    if not sql.market_lock(market_id, wait=wait):
        return None, MatchSummary(market_id, locked=False)
    wake_flag_clear(market_id)
    market = _market_current(market_id)
    if market is None:
        return None, MatchSummary(market_id, status="missing")
    if market.status not in TRADING_STATUSES and not expiring:
        return None, MatchSummary(market_id, status=market.status)
    return market, None


# The market with its assets as this process's batches last read it, by id: reused while the row's version
# says it has not changed but for its counters. Entries are replaced, never changed in place.
_markets_read: dict[int, tuple[tuple, Market]] = {}


def _market_current(market_id: int) -> Market | None:
    """The market as it is now, with its assets: one short read while it has not changed since the last batch."""
    version = sql.market_version(market_id)
    if version is None:
        _markets_read.pop(market_id, None)
        return None
    created_at, status, updated_at, match_seq, cancel_seq = version
    known = _markets_read.get(market_id)
    if known is None or known[0] != (created_at, status, updated_at):
        market = Market.objects.select_related("base", "quote").get(pk=market_id)
        _markets_read[market_id] = ((market.created_at, market.status, market.updated_at), market)
        return market
    market = copy.copy(known[1])
    market.match_seq, market.cancel_seq = match_seq, cancel_seq
    return market


def _batch_match(market: Market, orders: list[Order], cached, now, expired) -> int:
    outcomes = [cached.book.submit(order_incoming(order), now=now) for order in orders]
    settlement = BatchSettlement(market=market, takers=orders, expired=expired)
    fills = settlement.settle(outcomes)
    sql.match_seq_next(market.pk)
    cached.match_seq = market.match_seq + 1
    outbox.book_changed(market, market.book_sequence + 1, settlement.changed.values())
    return fills
