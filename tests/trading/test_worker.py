"""End to end: two clients trade through the API while a real Celery worker process matches over Redis."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Role
from ledger import services as ledger
from ledger.models import Purpose
from tests.api import api_client_for
from tests.factories import MarketFactory, assert_balance, fund
from tests.trading.workers import broker_url, test_database_url, wait_for, worker_start, worker_stop  # noqa: F401
from trading.models import Fill, Order, OrderStatus

_test_database_url = test_database_url  # the reliability tests import it under this name
_wait_for = wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

SETTLE_SECONDS = 30


@pytest.fixture
def worker(broker_url, tmp_path):  # noqa: F811
    process = worker_start(broker_url, tmp_path / "worker.log", "e2e")
    yield process
    worker_stop(process)


def _status(order_id: int) -> str:
    return Order.objects.get(pk=order_id).status


def test_two_clients_trade_through_the_api_and_a_real_worker(worker):
    MarketFactory()
    alice, bob = api_client_for(role=Role.TRADER), api_client_for(role=Role.TRADER)
    fund(alice.account, "USD", "50000")
    fund(bob.account, "BTC", "1")

    ask = bob.post("/api/v1/orders/", {"market": "BTC-USD", "side": "sell", "size": "0.5", "price": "20000.00",
                                       "client_order_id": "ask-1"}, format="json")
    assert ask.status_code == 201 and ask.json()["status"] == "new"
    assert _wait_for(lambda: _status(ask.json()["id"]) == OrderStatus.OPEN, SETTLE_SECONDS), worker.log.read_text()

    bid = alice.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.8", "price": "20000.00",
                                         "client_order_id": "bid-1"}, format="json")
    assert bid.status_code == 201
    assert _wait_for(lambda: _status(bid.json()["id"]) == OrderStatus.PARTIALLY_FILLED, SETTLE_SECONDS)

    assert _status(ask.json()["id"]) == OrderStatus.FILLED and Fill.objects.count() == 1
    assert_balance(bob.account, "BTC", "0.5", held="0")
    assert_balance(bob.account, "USD", "9990.00", held="0")
    assert_balance(alice.account, "BTC", "0.5", held="0")
    # 0.5 bought for 10020.00 as taker; 0.3 still bid at 20000 with the 0.2% worst case held: 6012.00.
    assert_balance(alice.account, "USD", "39980.00", held="6012.00")
    assert_balance(ledger.firm_account(Purpose.FEES), "USD", "30.00")
    fills = alice.get("/api/v1/fills/").json()["results"]
    assert [(f["side"], f["size"], f["settled_quote"]) for f in fills] == [("buy", "0.50000000", "10020.00")]

    cancelled = alice.delete(f"/api/v1/orders/{bid.json()['id']}/")
    assert cancelled.json()["status"] == "cancelled"
    assert_balance(alice.account, "USD", "39980.00", held="0")
    assert Decimal(cancelled.json()["filled_size"]) == Decimal("0.5")
    assert "Task trading.tasks.match_market" in worker.log.read_text()  # the worker matched, not this process
