"""The rules of the newer order types (README "Order types"), kept beside placement: the shape of stop and
stop-limit orders, good-til-time's ``expire_time`` and the client's ``metadata``."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from ledger import services as ledger
from trading import clock
from trading.errors import Code, InvalidOrder
from trading.fill_amounts import buy_hold
from trading.models import STOP_TYPES, Order, OrderType, Side, TimeInForce

ZERO = Decimal(0)

MIN_EXPIRY_AHEAD = timedelta(seconds=10)
METADATA_MAX_PAIRS = 6
METADATA_MAX_CHARS = 100


def shape_check(p) -> None:
    """Checks of an order's parameters (``placement.OrderParams``) that need no market."""
    _stop_check(p)
    _gtt_check(p)
    metadata_check(p.metadata)


def _stop_check(p) -> None:
    if p.type not in STOP_TYPES:
        if p.stop_price is not None:
            raise InvalidOrder("Only stop and stop-limit orders take a stop price.", code=Code.STOP_PRICE_NOT_ALLOWED,
                               field="stop_price")
        return
    if p.stop_price is None:
        raise InvalidOrder("A stop order needs a stop price.", code=Code.STOP_PRICE_REQUIRED, field="stop_price")
    if p.post_only:
        raise InvalidOrder("A stop order cannot be post-only.", code=Code.POST_ONLY_REQUIRES_LIMIT, field="post_only")
    if p.type == OrderType.STOP and p.side == Side.BUY and p.funds is None:
        # Its price is unknown until it triggers, maybe long after: it holds the funds it gives, not the balance.
        raise InvalidOrder("A stop (market) buy gives the funds it may spend, fees included.",
                           code=Code.STOP_BUY_REQUIRES_FUNDS, field="funds")


def _gtt_check(p) -> None:
    if p.time_in_force != TimeInForce.GTT:
        if p.expire_time is not None:
            raise InvalidOrder("Only good-til-time orders take an expire time.", code=Code.EXPIRE_TIME_NOT_ALLOWED,
                               field="expire_time")
        return
    if p.type not in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        raise InvalidOrder("Only limit and stop-limit orders can be good-til-time.", code=Code.GTT_REQUIRES_LIMIT,
                           field="time_in_force")
    if not isinstance(p.expire_time, datetime) or p.expire_time.tzinfo is None:
        raise InvalidOrder("A good-til-time order needs an expire time (ISO 8601 with a time zone).",
                           code=Code.EXPIRE_TIME_REQUIRED, field="expire_time")


def expire_time_check(expire_time: datetime | None) -> None:
    """At least ``MIN_EXPIRY_AHEAD`` from now (checked once the order is known to be new, not on a replay)."""
    if expire_time is not None and expire_time < clock.now() + MIN_EXPIRY_AHEAD:
        raise InvalidOrder(f"The expire time must be at least {MIN_EXPIRY_AHEAD.seconds} seconds ahead.",
                           code=Code.EXPIRE_TIME_TOO_SOON, field="expire_time")


def metadata_check(metadata) -> None:
    if not isinstance(metadata, dict) or len(metadata) > METADATA_MAX_PAIRS or not all(
        isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= METADATA_MAX_CHARS and len(v) <= METADATA_MAX_CHARS
        for k, v in metadata.items()
    ):
        raise InvalidOrder(f"Metadata is at most {METADATA_MAX_PAIRS} pairs of text keys and values of at most "
                           f"{METADATA_MAX_CHARS} characters each.", code=Code.INVALID_METADATA, field="metadata")


def hold_excess(order: Order) -> Decimal:
    """What the order's active hold reserves beyond what its (reduced) size may still spend: a sell's unfilled
    size; a buy with a price, its total cost at that price rounded up as when it was placed (less nothing: the
    hold's ``amount`` is that total). Buys by funds never shrink."""
    hold = order.hold
    if order.size is None:
        return ZERO
    if order.side == Side.SELL:
        return hold.remaining - (order.size - order.filled_size)
    if order.price is None:
        return ZERO
    rate = order.maker_fee_rate if order.post_only else max(order.maker_fee_rate, order.taker_fee_rate)
    needed = buy_hold(price=order.price, size=order.size, fee_rate=rate, quote_precision=order.market.quote.precision)
    return max(hold.amount - needed, ZERO)


def hold_shrink(order: Order) -> None:
    """Give back now what a reduced order no longer needs (``hold_excess``)."""
    excess = hold_excess(order)
    if order.hold is not None and excess > 0:
        ledger.hold_reduce(hold=order.hold, amount=excess)
