"""End to end: two clients trade through the API while a real Celery worker process matches over Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from accounts.models import Role
from brokerage.celery import app as celery_app
from ledger import services as ledger
from ledger.models import Purpose
from tests.api import api_client_for
from tests.factories import MarketFactory, assert_balance, fund
from trading import wakeups
from trading.models import Fill, Order, OrderStatus

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

STARTUP_SECONDS = 60
SETTLE_SECONDS = 30


@pytest.fixture
def broker_url(settings):
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set")
    redis.Redis.from_url(url).flushdb()
    before = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    settings.CELERY_BROKER_URL = url
    celery_app.conf.update(broker_url=url, task_always_eager=False)
    _publisher_reset()
    yield url
    celery_app.conf.update(broker_url=before[0], task_always_eager=before[1])
    _publisher_reset()
    redis.Redis.from_url(url).flushdb()


def _publisher_reset() -> None:
    """Forget connections made with an earlier broker URL (an earlier test may have published elsewhere)."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    wakeups._redis.cache_clear()


def _test_database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(broker_url, tmp_path):
    """``celery -A brokerage worker`` in its own process, on the test database and the test Redis."""
    log = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": _test_database_url(), "CELERY_BROKER_URL": broker_url,
           "SECRET_KEY": django_settings.SECRET_KEY, "DB_CONN_MAX_AGE": "0"}
    env.pop("REDIS_URL", None)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "brokerage", "worker", "--pool=solo", "--loglevel=INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"e2e-{os.getpid()}@%h"],
            cwd=Path(django_settings.BASE_DIR), env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(lambda: "ready." in log.read_text() or process.poll() is not None, STARTUP_SECONDS)
        assert process.poll() is None, log.read_text()
        process.log = log
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


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
