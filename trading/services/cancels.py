"""Cancelling orders, one or all of an account's, under the market lock: what their holds still reserve becomes
available again, and resting ones get a cancel sequence number so that matchers drop them from their books."""

from __future__ import annotations

from django.db import transaction

from accounts.models import ClientAccount
from audit.services import audit_record, audit_values
from ledger import services as ledger
from trading import outbox, sql
from trading.errors import OrderNotOpen
from trading.models import OPEN_STATUSES, Market, Order, OrderStatus

USER_REQUESTED = "user_requested"
CANCELLED_BY_OPERATIONS = "cancelled_by_operations"


@transaction.atomic
def order_cancel(*, order: Order, acting_user, reason: str = USER_REQUESTED) -> Order:
    """Cancel an order that is not done yet and give back what its hold still reserves.

    Cancelling a cancelled order returns it unchanged; a filled or rejected one is ``order_not_open``.
    """
    sql.market_lock(order.market_id, wait=True)
    order = Order.objects.select_for_update(of=("self",), no_key=True).select_related("hold").get(pk=order.pk)
    if order.status == OrderStatus.CANCELLED:
        return order
    if order.status not in OPEN_STATUSES:
        raise OrderNotOpen(f"Order {order.pk} is {order.status} and cannot be cancelled.")
    seq = sql.cancel_seq_next(order.market_id) if order.status != OrderStatus.NEW else None
    _cancelled([order], seq, reason, acting_user)
    return order


@transaction.atomic
def orders_cancel_all(*, account: ClientAccount, market: Market | None = None, acting_user,
                      reason: str = USER_REQUESTED) -> list[Order]:
    """Cancel every open order of ``account`` (in ``market`` only, if given). Returns the cancelled orders."""
    scope = Order.objects.filter(account=account, status__in=OPEN_STATUSES)
    if market is not None:
        scope = scope.filter(market=market)
    market_ids = sorted(set(scope.values_list("market_id", flat=True)))
    for market_id in market_ids:  # in id order: two cancel-alls never wait for each other in a cycle
        sql.market_lock(market_id, wait=True)
    orders = list(scope.filter(market_id__in=market_ids).select_for_update(of=("self",), no_key=True)
                  .select_related("hold").order_by("id"))
    for market_id in market_ids:
        in_market = [o for o in orders if o.market_id == market_id]
        resting = any(o.status != OrderStatus.NEW for o in in_market)
        _cancelled(in_market, sql.cancel_seq_next(market_id) if resting else None, reason, acting_user)
    return orders


def _cancelled(orders: list[Order], seq: int | None, reason: str, acting_user) -> None:
    """Mark orders of one market cancelled; resting ones carry ``seq`` so matchers drop them from the book."""
    ledger.holds_release(holds=[o.hold for o in orders if o.hold is not None])
    for order in orders:
        before = audit_values(order, ["status", "reason"])
        if order.status != OrderStatus.NEW:
            order.cancel_seq = seq
        order.status, order.reason = OrderStatus.CANCELLED, reason[:64]
        order.save(update_fields=["status", "reason", "cancel_seq", "updated_at"])
        audit_record(acting_user=acting_user, action="order.cancel", obj=order, account=order.account,
                     before=before, after=audit_values(order, ["status", "reason", "filled_size"]))
    outbox.orders_ended(orders)
