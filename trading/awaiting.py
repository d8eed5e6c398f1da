"""``await_fill_ms`` on ``POST /orders/``: the response waits until the order is done (filled, cancelled,
rejected or expired) or the time passes, whichever comes first.

It reuses the event log's wake-ups (``events.wakeups``): a matcher batch writes the order's events, the sequencer
numbers them and publishes on the account's channel, and the waiter re-reads the order. While it waits it holds no
database connection (closed before each wait, opened again by the next read) and blocks on the Redis socket, not
in a loop. Each web process lets at most ``ORDERS_AWAIT_MAX_WAITERS`` requests wait at once; beyond that the order
is returned at once, as if ``await_fill_ms`` were 0 (it was placed: refusing the request would be worse).
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import connection

from events import wakeups
from trading.models import Order, OrderStatus

MAX_AWAIT_MS = 10_000
DONE = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED)

_waiters = threading.BoundedSemaphore(max(getattr(settings, "ORDERS_AWAIT_MAX_WAITERS", 8), 1))


def order_await_done(*, order: Order, milliseconds: int) -> Order:
    """The order once done, or as it is when ``milliseconds`` have passed. Call it after the order committed."""
    if order.status in DONE or milliseconds <= 0 or not _waiters.acquire(blocking=False):
        return order
    try:
        deadline = time.monotonic() + milliseconds / 1000
        with wakeups.Waiter([wakeups.account_channel(order.account_id)]) as waiter:
            order = _reread(order)  # subscribed first: a wake-up after this read is not missed
            while order.status not in DONE and (left := deadline - time.monotonic()) > 0:
                if not connection.in_atomic_block:  # (a test's transaction is kept)
                    connection.close()  # wait without a database connection
                if waiter.wait(left):
                    order = _reread(order)
            return order
    finally:
        _waiters.release()


def _reread(order: Order) -> Order:
    return Order.objects.select_related("market__base", "market__quote").get(pk=order.pk)
