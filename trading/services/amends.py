"""Amending an order (``PATCH /orders/<id>/``), under the market lock like a cancel, in one transaction.

- A smaller size and nothing else is a **reduction in place**: the order keeps its id and its place in the queue
  (price-time priority); matchers' books learn it through the cancel sequence (``trading.books``). Its hold
  shrinks at once to what the smaller size may spend (``ledger.hold_reduce``).
- A new price, a new stop price or a larger size is a **cancel-replace**: the order is cancelled (reason
  ``replaced``, its hold released) and a new order with the same parameters but those is placed in the same
  transaction (new id, new hold, ``replaces`` naming the old one), so it goes to the back of the queue. If the new
  order cannot be placed (funds, market not open...), nothing changes.

``size`` is the order's new total size, what has filled included; it must stay above what has filled.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from audit.services import audit_record, audit_values
from core.exceptions import Code as GenericCode
from trading import outbox, sql
from trading.errors import Code, InvalidOrder, OrderNotOpen
from trading.models import OPEN_STATUSES, Order, OrderStatus, OrderType
from trading.services.cancels import _cancelled
from trading.services.order_types import hold_shrink
from trading.services.placement import _size_check, order_place

REPLACED = "replaced"
AMENDABLE = (OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT)


@transaction.atomic
def order_amend(*, order: Order, size: Decimal | None = None, price: Decimal | None = None,
                stop_price: Decimal | None = None, client_order_id: str | None = None, acting_user) -> Order:
    """Amend an open order; returns it reduced in place, or its replacement (module docstring). Giving the values
    the order already has changes nothing and returns it."""
    if size is None and price is None and stop_price is None:
        raise InvalidOrder("Give a new size, price or stop price.", code=Code.AMEND_NOTHING)
    sql.market_lock(order.market_id, wait=True)
    order = (Order.objects.select_for_update(of=("self",), no_key=True)
             .select_related("hold", "account", "market__base", "market__quote").get(pk=order.pk))
    if order.status not in OPEN_STATUSES:
        raise OrderNotOpen(f"Order {order.pk} is {order.status} and cannot be amended.")
    _amend_check(order, size, price, stop_price)
    changes = {name: value for name, value in (("size", size), ("price", price), ("stop_price", stop_price))
               if value is not None and value != getattr(order, name)}
    if not changes:
        return order
    if set(changes) == {"size"} and size < order.size:
        return _reduced(order, size, acting_user)
    return _replaced(order, changes, client_order_id, acting_user)


def _amend_check(order: Order, size, price, stop_price) -> None:
    if order.type not in AMENDABLE:
        raise InvalidOrder("A market order cannot be amended.", code=Code.AMEND_NOT_ALLOWED)
    for name, value in (("size", size), ("price", price), ("stop_price", stop_price)):
        if value is None:
            continue
        if getattr(order, name) is None:
            raise InvalidOrder(f"This order has no {name.replace('_', ' ')} to amend.", code=Code.AMEND_NOT_ALLOWED,
                               field=name)
        if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
            raise InvalidOrder(f"{name} must be a positive decimal.", code=Code.NOT_POSITIVE, field=name)
        if name != "size" and value % order.market.tick_size != 0:
            raise InvalidOrder(f"The {name.replace('_', ' ')} must be a multiple of the tick size "
                               f"{order.market.tick_size.normalize()}.", code=Code.INVALID_TICK, field=name)
    if size is not None:
        _size_check(order.market, size)
        if size <= order.filled_size:
            raise InvalidOrder(f"The new size must be above what has filled ({order.filled_size.normalize()}); "
                               "cancel the order instead.", code=Code.AMEND_SIZE_NOT_ABOVE_FILLED, field="size")


def _reduced(order: Order, size: Decimal, acting_user) -> Order:
    before = audit_values(order, ["size"])
    order.size = size
    if order.status != OrderStatus.NEW:  # on matchers' books (or waiting for a trigger): they reduce it
        order.cancel_seq = sql.cancel_seq_next(order.market_id)
    order.save(update_fields=["size", "cancel_seq", "updated_at"])
    hold_shrink(order)
    audit_record(acting_user=acting_user, action="order.amend", obj=order, account=order.account, before=before,
                 after=audit_values(order, ["size"]))
    outbox.order_amended(order)
    return order


def _replaced(order: Order, changes: dict, client_order_id: str | None, acting_user) -> Order:
    seq = sql.cancel_seq_next(order.market_id) if order.status != OrderStatus.NEW else None
    _cancelled([order], seq, REPLACED, acting_user)
    new_size = changes.get("size", order.size)
    if client_order_id is not None and len(client_order_id) > 64:
        raise InvalidOrder("A client order id has at most 64 characters.", code=GenericCode.INVALID,
                           field="client_order_id")
    return order_place(
        account=order.account, market=order.market, side=order.side, type=order.type,
        size=None if new_size is None else new_size - order.filled_size, price=changes.get("price", order.price),
        funds=order.funds, time_in_force=order.time_in_force, post_only=order.post_only, stp=order.stp,
        stop_price=changes.get("stop_price", order.stop_price), expire_time=order.expire_time,
        metadata=order.metadata, client_order_id=client_order_id, replaces=order, acting_user=acting_user,
    )
