"""Pre-trade risk: the checks an order passes before anything is held or stored (README "Pre-trade risk
controls").

Called once by ``placement`` inside its transaction, after the order's shape and grid checks and with the client
account's row locked (``trading.sql.placement_reads``), so the per-client caps are exact: two orders of one
account are decided one after the other. A refusal raises before the hold is placed or the row inserted, and
the transaction rolls back: nothing is left behind.

The limits live on the market (``Market.price_collar_bps``, ``max_market_order_notional``,
``max_limit_order_notional``, ``max_daily_notional``, ``max_open_orders``; empty means no limit) and change only
through four-eyes proposals (``trading.services.parameters``). What the limits need from the database
(``reads_needed``) is read with placement's other reads, in one round trip; only a market order's walk through
the book, when a collar or a cap needs it, costs a query more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from accounts.models import ClientAccount
from trading import clock, selectors, sql
from trading.errors import Code, KillSwitchEngaged, MarketNotOpen, RiskRefused
from trading.models import Market, MarketStatus, OrderType, Side

DAILY_WINDOW = timedelta(hours=24)
BOOK_DEPTH = 200  # price levels a market order's walk reads; beyond them the rest is priced at the last one
BPS = Decimal(10000)
ZERO = Decimal(0)


@dataclass(frozen=True)
class OrderIntent:
    """What risk needs of an order: its side, type, price, size or funds, post-only flag and stop price."""

    side: str
    type: str
    price: Decimal | None
    size: Decimal | None
    funds: Decimal | None
    post_only: bool
    stop_price: Decimal | None = None

    @property
    def priced(self) -> bool:
        """A limit or stop-limit order: its notional is price x size and the limit-order cap applies."""
        return self.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def collared(self) -> bool:
        """Whether the collar applies: a post-only order never takes, and a stop-market order names no price."""
        return not self.post_only and self.type != OrderType.STOP


def reads_needed(market: Market, order: OrderIntent) -> sql.RiskQuery | None:
    """What the market's limits need to read for this order (None: nothing); placing reads it with its other
    reads, in the same round trip (``trading.sql.placement_reads``)."""
    query = sql.RiskQuery(
        reference=(market.price_collar_bps is not None and order.collared
                   and order.type != OrderType.STOP_LIMIT),  # a stop-limit is measured against its stop price
        open_orders=market.max_open_orders is not None,
        daily_since=clock.now() - DAILY_WINDOW if market.max_daily_notional is not None else None,
    )
    return query if query != sql.RiskQuery() else None


def order_risk_check(*, market: Market, order: OrderIntent, kill_switch: bool, reads: sql.RiskReads | None) -> None:
    """Refuse the order if the account's kill switch is on, the market's mode forbids it, or it breaks one of
    the market's risk limits. ``reads``: what ``reads_needed`` asked for. Raises ``KillSwitchEngaged`` (403),
    ``MarketNotOpen`` (409) or ``RiskRefused`` (400) with the limit's code."""
    if kill_switch:
        raise KillSwitchEngaged("Your kill switch is engaged: no new orders until it is released.")
    _mode_check(market, order)
    reads = reads or sql.RiskReads()
    walk = _walk(market, order) if order.type == OrderType.MARKET and _walk_needed(market, order) else None
    notional = _notional(order, walk)
    _notional_check(market, order, notional)
    if market.price_collar_bps is not None and order.collared:
        price = order.price if order.priced else walk.worst_price
        # A stop-limit enters the book when the last trade reaches its stop price: its limit is measured from there.
        reference = order.stop_price if order.type == OrderType.STOP_LIMIT else _reference_price(reads)
        if price is not None:
            _collar_check(market, order, price, reference)
    _open_orders_check(market, reads.open_orders)
    _daily_notional_check(market, reads.daily_notional, notional)


def _notional(order: OrderIntent, walk: Walk | None) -> Decimal:
    """What the order may trade: price x size when it names a price, else its funds, else (a stop-market sell)
    size at its stop price, else (a market order by size) the book walked now."""
    if order.priced:
        return order.price * order.size
    if order.funds is not None:
        return order.funds
    if order.type == OrderType.STOP:
        return order.size * order.stop_price
    return walk.notional if walk else ZERO


def _mode_check(market: Market, order: OrderIntent) -> None:
    if market.status == MarketStatus.LIMIT_ONLY and not order.priced:
        raise MarketNotOpen(f"{market.symbol} is in limit-only mode: only limit and stop-limit orders are accepted.",
                            code=Code.MARKET_LIMIT_ONLY, field="type")
    if market.status == MarketStatus.POST_ONLY and not order.post_only:
        raise MarketNotOpen(f"{market.symbol} is in post-only mode: only post-only limit and stop-limit orders are "
                            "accepted.", code=Code.MARKET_POST_ONLY, field="post_only")


def _walk_needed(market: Market, order: OrderIntent) -> bool:
    """A market order is walked through the book for a collar, or for a cap when it gives no funds."""
    capped = market.max_market_order_notional is not None or market.max_daily_notional is not None
    return market.price_collar_bps is not None or (capped and order.funds is None)


def _field(order: OrderIntent, *, price: bool = False) -> str:
    if order.priced:
        return "price" if price else "size"
    return "funds" if order.funds is not None else "size"


def _notional_check(market: Market, order: OrderIntent, notional: Decimal) -> None:
    limit = order.priced
    cap = market.max_limit_order_notional if limit else market.max_market_order_notional
    if cap is not None and notional > cap:
        raise RiskRefused(f"The order's notional {notional.normalize():f} {market.quote_id} is above this market's "
                          f"{'limit' if limit else 'market'}-order cap of {cap.normalize():f}.",
                          code=Code.ORDER_NOTIONAL_EXCEEDED, field=_field(order))


def _collar_check(market: Market, order: OrderIntent, price: Decimal, reference: Decimal | None) -> None:
    """A buy may not pay more, a sell not take less, than the collar around the reference price."""
    if reference is None:  # nothing traded and no two-sided book: nothing to measure "through" against
        return
    band = reference * market.price_collar_bps / BPS
    buy = order.side == Side.BUY
    if price > reference + band if buy else price < reference - band:
        limit = reference + band if buy else reference - band
        raise RiskRefused(f"The price {price.normalize():f} is more than {market.price_collar_bps.normalize():f} bps "
                          f"through the reference {reference.normalize():f} (limit {limit.normalize():f}).",
                          code=Code.PRICE_COLLAR, field=_field(order, price=True))


def _reference_price(reads: sql.RiskReads) -> Decimal | None:
    """The mid of the best bid and ask, else the last trade's price, else none."""
    if reads.best_bid is not None and reads.best_ask is not None:
        return (reads.best_bid + reads.best_ask) / 2
    return reads.last_price


@dataclass(frozen=True)
class Walk:
    notional: Decimal  # what the order would trade against the book as it is now (fees excluded)
    worst_price: Decimal | None  # the furthest price level it would reach (None: an empty book)


def _walk(market: Market, order: OrderIntent) -> Walk:
    """A market order walked through the resting orders it would meet now: its size, or its funds spent."""
    opposite = Side.SELL if order.side == Side.BUY else Side.BUY
    levels = selectors.book_levels(market=market, side=opposite, depth=BOOK_DEPTH)
    size_left, funds_left = order.size, order.funds
    notional, worst = ZERO, None
    for price, size, _ in levels:
        worst = price
        if funds_left is not None:
            cost = size * price
            if funds_left <= cost:
                return Walk(notional + funds_left, worst)
            funds_left, notional = funds_left - cost, notional + cost
        else:
            take = min(size, size_left)
            size_left, notional = size_left - take, notional + take * price
            if size_left == 0:
                return Walk(notional, worst)
    if worst is not None and len(levels) == BOOK_DEPTH:  # deeper than read: the rest at the last level read
        notional += funds_left if funds_left is not None else size_left * worst
    return Walk(notional, worst)


def _open_orders_check(market: Market, open_orders: int | None) -> None:
    if market.max_open_orders is not None and open_orders >= market.max_open_orders:
        raise RiskRefused(f"You have {open_orders} open orders in {market.symbol}; this market allows "
                          f"{market.max_open_orders}.", code=Code.OPEN_ORDER_LIMIT_REACHED)


def _daily_notional_check(market: Market, used: Decimal | None, notional: Decimal) -> None:
    cap = market.max_daily_notional
    if cap is not None and used + notional > cap:
        raise RiskRefused(f"This order would take your notional in {market.symbol} over the last 24 hours to "
                          f"{(used + notional).normalize():f} {market.quote_id}, above the cap of "
                          f"{cap.normalize():f}.", code=Code.DAILY_NOTIONAL_EXCEEDED, field="size")


def daily_notional_used(*, account: ClientAccount, market: Market) -> Decimal:
    """The notional of the account's orders placed in the market in the last 24 hours: what they traded, plus
    what open limit orders still offer and what new market orders by funds may spend."""
    return sql.risk_reads(account.pk, market.pk, sql.RiskQuery(daily_since=clock.now() - DAILY_WINDOW)).daily_notional
