"""The kill switch against an order being placed at the same moment, on real PostgreSQL transactions: the switch
waits for the placement (both lock the client account's row), then cancels the order it committed. No order
slips past a kill switch."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from ledger.models import Balance
from tests.factories import ClientAccountFactory, MarketFactory, assert_balance, fund
from tests.reliability.db import RowLock, backend_pid, in_thread, wait_until, waiting_on
from tests.reliability.invariants import assert_books_consistent
from tests.trading.helpers import place
from trading import services
from trading.models import Order, OrderStatus

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


def test_an_order_placed_while_the_kill_switch_is_engaged_is_cancelled_not_left_behind():
    market = MarketFactory()
    account = ClientAccountFactory()
    fund(account, "USD", "1000")
    balance = Balance.objects.get(account__client=account, asset_id="USD")
    pids = {}

    def placing():
        pids["placing"] = backend_pid()
        return place(account, market, "buy", size="1", price="100")

    def engaging():
        pids["engaging"] = backend_pid()
        return services.kill_switch_engage(account=account, acting_user=None, reason="race")

    with ThreadPoolExecutor(max_workers=2) as pool, RowLock(balance) as frozen:
        # The placement takes the account's lock first, then waits for the balance row we hold.
        placed = in_thread(pool, placing)
        wait_until(lambda: pids.get("placing") in waiting_on(frozen.pid), what="the placement waits on its hold")
        engaged = in_thread(pool, engaging)
        wait_until(lambda: pids.get("engaging") in waiting_on(pids["placing"]),
                   what="the kill switch waits for the placement")
        frozen.release()
        order = placed.result(timeout=30)
        engaged.result(timeout=30)

    order = Order.objects.select_related("hold").get(pk=order.pk)
    assert (order.status, order.reason, order.hold.status) == (OrderStatus.CANCELLED, "kill_switch", "released")
    assert_balance(account, "USD", "1000", held="0")
    assert_books_consistent()
