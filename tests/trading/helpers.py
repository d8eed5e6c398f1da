"""Shared helpers of the trading tests."""

from __future__ import annotations

import itertools
from decimal import Decimal

from trading import services
from trading.models import Order

_ids = itertools.count(1)


def place(account, market, side, *, type="limit", size=None, price=None, funds=None, **kw) -> Order:
    """Place an order as the account's own client would, with a fresh client order id unless given."""
    kw.setdefault("client_order_id", f"t-{next(_ids)}")
    return services.order_place(
        account=account, market=market, side=side, type=type, acting_user=None,
        size=None if size is None else Decimal(size), price=None if price is None else Decimal(price),
        funds=None if funds is None else Decimal(funds), **kw,
    )


def match(market):
    return services.market_match(market_id=market.pk)


def reloaded(order: Order) -> Order:
    order.refresh_from_db()
    return order
