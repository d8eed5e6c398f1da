"""Celery on RabbitMQ, selected by the broker URL: a real worker consumes from RabbitMQ and matches orders placed
through the API; queue depth is read from RabbitMQ. (The same flow on Redis: tests/trading/test_worker.py.)"""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests.api import api_client_for
from tests.factories import MarketFactory, assert_balance, fund
from tests.ops.test_health_and_metrics import _metric, _scrape
from tests.reliability.invariants import assert_books_consistent
from tests.trading.workers import amqp_broker_url, wait_for, worker_start, worker_stop  # noqa: F401 - fixture
from trading.models import Fill, Order, OrderStatus
from trading.tasks import sweep_markets

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def test_orders_are_matched_by_a_worker_on_rabbitmq(amqp_broker_url, tmp_path):  # noqa: F811
    url, queue = amqp_broker_url
    MarketFactory()
    alice, bob = api_client_for(role=Role.TRADER), api_client_for(role=Role.TRADER)
    fund(alice.account, "USD", "50000")
    fund(bob.account, "BTC", "1")

    for _ in range(2):
        sweep_markets.delay()  # no worker yet: two messages wait in our RabbitMQ queue
    assert wait_for(lambda: _metric(_scrape(), "brokerage_celery_queue_depth", queue=queue, broker="amqp") == 2, 10)

    worker = worker_start(url, tmp_path / "worker.log", "amqp", env={"CELERY_QUEUE": queue})
    try:
        ask = bob.post("/api/v1/orders/", {"market": "BTC-USD", "side": "sell", "size": "0.5", "price": "20000.00"},
                       format="json")
        bid = alice.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.5",
                                             "price": "20000.00"}, format="json")
        assert ask.status_code == bid.status_code == 201
        assert wait_for(lambda: Order.objects.get(pk=bid.json()["id"]).status == OrderStatus.FILLED, 30), \
            worker.log.read_text()[-3000:]
        assert wait_for(lambda: _metric(_scrape(), "brokerage_celery_queue_depth", queue=queue, broker="amqp") == 0,
                        10)
    finally:
        worker_stop(worker)
    log = worker.log.read_text()
    assert "Connected to amqp://" in log and "Task trading.tasks.match_market" in log
    assert Fill.objects.count() == 1
    assert_balance(alice.account, "BTC", "0.5", held="0")
    assert_balance(bob.account, "USD", "9990.00", held="0")  # 10000 less the 0.1% maker fee
    assert_books_consistent(matched=True)
