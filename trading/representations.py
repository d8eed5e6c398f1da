"""Orders, fills and markets as the client API shows them, as plain dicts: the API's serializers render through
these functions, and the event log stores their output, so an event's payload is the REST resource.

Amounts are decimal strings at the precision of their asset (prices at the quote asset's, or the tick's if
finer); exact accruals (notional, fees) are shown in full. Kept fast: the matcher renders every order and fill of
a batch (no DRF, per-market precisions computed once per market object).
"""

from __future__ import annotations

from decimal import Decimal

from core.representation import fixed, iso, quantum
from trading import amounts
from trading.fill_amounts import decimal_places

MAKER, TAKER = "maker", "taker"


def market_places(market) -> tuple[int, int, int]:
    """(base, quote, price) decimal places of ``market``, remembered on the object."""
    places = market.__dict__.get("_places")
    if places is None:
        base, quote = market.base.precision, market.quote.precision
        price = amounts.places("price", base_precision=base, quote_precision=quote, tick_size=market.tick_size,
                               value=market.tick_size)
        places = (base, quote, price)
        market.__dict__["_places"] = places
    return places


def amount_places(kind: str, market, value: Decimal | None) -> int:
    """Decimal places of an amount of ``kind`` (base, quote, price, exact) in ``market``."""
    base, quote, price = market_places(market)
    if kind == "base":
        return base
    if kind == "quote":
        return quote
    if kind == "price":
        return price
    return max(quote, decimal_places(value)) if value is not None else quote


def exact(value: Decimal | None, quote_places: int) -> str | None:
    """An exact accrual, in full but at least at the quote precision."""
    if value is None:
        return None
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and -exponent >= quote_places:
        return format(normal, "f")  # already its own places, which are at least the quote's
    return format(value.quantize(quantum(quote_places)), "f")


def order_data(order, *, market=None, updated_at: str | None = None) -> dict:
    """An order as ``GET /orders/<id>/`` shows it. ``updated_at`` (rendered) overrides the object's: the matcher
    writes its batch time with a bulk update, and renders it once for the batch."""
    market = market or order.market
    base, quote, price = market_places(market)
    return {
        "id": order.pk,
        "client_order_id": order.client_order_id,
        "market": market.symbol,
        "side": str(order.side),
        "type": str(order.type),
        "time_in_force": str(order.time_in_force),
        "post_only": order.post_only,
        "stp": str(order.stp),
        "price": fixed(order.price, price),
        "size": fixed(order.size, base),
        "funds": fixed(order.funds, quote),
        "stop_price": fixed(order.stop_price, price),
        "expire_time": iso(order.expire_time) if order.expire_time else None,
        "metadata": order.metadata or {},
        "replaces": order.replaces_id,
        "triggered_at": iso(order.triggered_at) if order.triggered_at else None,
        "status": str(order.status),
        "reason": order.reason,
        "filled_size": fixed(order.filled_size, base),
        "filled_quote": exact(order.filled_quote, quote),
        "fees_paid": exact(order.fees_paid, quote),
        "settled_quote": fixed(order.settled_quote, quote),
        "created_at": iso(order.created_at),
        "updated_at": updated_at or iso(order.updated_at),
    }


def fill_data(fill, *, account_id: int, market=None, created_at: str | None = None) -> dict:
    """A fill as one side of it sees it (``GET /fills/``): ``account_id`` is the maker's or the taker's.
    ``fill`` is a ``Fill`` or anything with its attributes; ``created_at`` (rendered) overrides its time."""
    market = market or fill.market
    base, quote, price = market_places(market)
    is_maker = fill.maker_account_id == account_id
    is_buyer = (fill.aggressor_side == "buy") != is_maker
    return {
        "id": fill.pk,
        "order_id": fill.maker_order_id if is_maker else fill.taker_order_id,
        "market": market.symbol,
        "side": "buy" if is_buyer else "sell",
        "liquidity": MAKER if is_maker else TAKER,
        "price": fixed(fill.price, price),
        "size": fixed(fill.size, base),
        "quote_amount": exact(fill.quote_amount, quote),
        "fee": exact(fill.maker_fee if is_maker else fill.taker_fee, quote),
        "settled_quote": fixed(fill.buyer_quote if is_buyer else fill.seller_quote, quote),
        "created_at": created_at or iso(fill.created_at),
    }


def market_data(market) -> dict:
    """A market as ``GET /markets/<symbol>/`` shows it."""
    base, quote, _ = market_places(market)
    return {
        "symbol": market.symbol,
        "base": market.base_id,
        "quote": market.quote_id,
        "status": str(market.status),
        "tick_size": exact(market.tick_size, quote),
        "lot_size": exact(market.lot_size, quote),
        "min_size": fixed(market.min_size, base),
        "max_size": fixed(market.max_size, base),
        "maker_fee_rate": format(market.maker_fee_rate.normalize(), "f"),
        "taker_fee_rate": format(market.taker_fee_rate.normalize(), "f"),
    }


def trading_control_data(control, *, account_id: int) -> dict:
    """A client's kill switch and dead-man switch as ``GET /kill-switch/`` shows them (``control`` may be None:
    an account that never used either)."""
    return {
        "account": account_id,
        "kill_switch": bool(control and control.kill_switch),
        "kill_switch_by": (control.kill_switch_by or None) if control else None,
        "kill_switch_reason": control.kill_switch_reason if control else "",
        "kill_switch_at": iso(control.kill_switch_at) if control else None,
        "cancel_after": iso(control.cancel_after) if control else None,
        "cancel_after_timeout": control.cancel_after_timeout if control else None,
    }
