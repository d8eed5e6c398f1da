"""/healthz, /readyz and /metrics in-process: each readiness check fails on its own and is named in the 503;
the counted and scrape-time metrics move with real orders, batches, reconciliation runs and queued messages."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from brokerage.celery import app as celery_app
from compliance.reconciliation import reconciliation_run
from core import health
from core.heartbeats import MATCHER, heartbeat_record
from core.models import Heartbeat
from ledger.models import Balance
from tests.api import api_client_for
from tests.factories import MarketFactory, fund
from tests.trading.workers import broker_url, publisher_reset  # noqa: F401 - fixture
from trading import wakeups
from trading.models import Order
from trading.tasks import match_market, sweep_markets

DEAD_REDIS = "redis://127.0.0.1:18199/0"  # our range, nothing listens there


def _metric(text: str, name: str, **labels) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def _scrape() -> str:
    response = Client().get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    return response.content.decode()


@pytest.fixture
def with_broker(broker_url):  # noqa: F811 - a real broker: /readyz checks it and the matcher heartbeat
    yield broker_url


@pytest.mark.django_db(transaction=True)
def test_liveness_answers_without_checking_anything():
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.fixture
def no_broker():
    """The embedded default: tasks run in-process."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.mark.django_db(transaction=True)
def test_readiness_without_a_broker_skips_broker_and_matcher(no_broker):
    body = Client().get("/readyz").json()
    assert body["status"] == "ok"
    assert {k: v["status"] for k, v in body["checks"].items()} == {
        "database": "ok", "migrations": "ok", "cache": "ok", "broker": "skipped", "matcher": "skipped"}


@pytest.mark.django_db(transaction=True)
def test_readiness_with_a_broker_needs_a_fresh_matcher_heartbeat(with_broker, settings):
    settings.MATCHER_HEARTBEAT_MAX_AGE_SECONDS = 30
    none_yet = Client().get("/readyz")
    assert none_yet.status_code == 503 and none_yet.json()["failing"] == ["matcher"]
    assert none_yet.json()["code"] == "service_unavailable" and "matcher" in none_yet.json()["message"]

    sweep_markets.apply()  # the beat's sweep records the heartbeat
    ready = Client().get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"]["broker"]["status"] == "ok"

    Heartbeat.objects.filter(name=MATCHER).update(beat_at=timezone.now() - timedelta(seconds=31))
    stale = Client().get("/readyz")
    assert stale.status_code == 503 and stale.json()["failing"] == ["matcher"]
    assert "31s old" in stale.json()["checks"]["matcher"]["error"]
    # The web tier's probe asks only what it needs to take orders.
    assert Client().get("/readyz?check=database&check=migrations").status_code == 200
    assert Client().get("/readyz?check=nonsense").json()["code"] == "invalid_choice"


@pytest.mark.django_db(transaction=True)
def test_readiness_names_an_unreachable_broker_and_cache(settings):
    heartbeat_record(MATCHER)
    before = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    celery_app.conf.update(broker_url=DEAD_REDIS, task_always_eager=False)
    publisher_reset()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": DEAD_REDIS}}
    try:
        response = Client().get("/readyz")
    finally:
        celery_app.conf.update(broker_url=before[0], task_always_eager=before[1])
        publisher_reset()
    assert response.status_code == 503
    assert response.json()["failing"] == ["cache", "broker"], response.json()
    assert response["Retry-After"] == "5"


@pytest.mark.django_db(transaction=True)
def test_readiness_fails_while_a_migration_is_unapplied(monkeypatch):
    monkeypatch.setattr(health, "_migrations_applied", False)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'core' AND name = '0001_initial'")
    try:
        response = Client().get("/readyz?check=migrations")
        assert response.status_code == 503 and response.json()["failing"] == ["migrations"]
        assert "core.0001_initial" in response.json()["checks"]["migrations"]["error"]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('core', '0001_initial', now())")
    assert Client().get("/readyz?check=migrations").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_metrics_follow_orders_batches_and_reconciliation(no_broker, monkeypatch):
    monkeypatch.setattr(wakeups, "market_wake", lambda market_id: None)  # orders wait until the test matches
    MarketFactory()
    alice, bob = api_client_for(role=Role.TRADER), api_client_for(role=Role.TRADER)
    fund(alice.account, "USD", "50000")
    fund(bob.account, "BTC", "1")
    before = _scrape()
    accepted0 = _metric(before, "brokerage_orders_accepted_total", market="BTC-USD") or 0
    poor0 = _metric(before, "brokerage_orders_rejected_total", code="insufficient_funds") or 0
    tick0 = _metric(before, "brokerage_orders_rejected_total", code="invalid_tick") or 0
    requests0 = _metric(before, "brokerage_http_requests_total", route="api/v1/orders/", method="POST",
                        status="201") or 0
    entries0 = _metric(before, "brokerage_settlement_entries_total", market="BTC-USD") or 0

    ask = bob.post("/api/v1/orders/", {"market": "BTC-USD", "side": "sell", "size": "0.5", "price": "20000.00"},
                   format="json")
    assert ask.status_code == 201
    assert alice.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "100", "price": "20000.00"},
                      format="json").json()["code"] == "insufficient_funds"
    assert alice.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.1", "price": "20000.001"},
                      format="json").json()["code"] == "invalid_tick"
    Order.objects.filter(pk=ask.json()["id"]).update(created_at=timezone.now() - timedelta(seconds=42))
    waiting = _scrape()
    assert _metric(waiting, "brokerage_orders_new", market="BTC-USD") == 1
    assert 42 <= _metric(waiting, "brokerage_matcher_lag_seconds", market="BTC-USD") < 60

    assert alice.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.2", "price": "20000.00"},
                      format="json").status_code == 201
    match_market.apply((Order.objects.get(pk=ask.json()["id"]).market_id,))  # one batch, one fill
    reconciliation_run()
    after = _scrape()
    assert _metric(after, "brokerage_orders_accepted_total", market="BTC-USD") == accepted0 + 2
    assert _metric(after, "brokerage_orders_rejected_total", code="insufficient_funds") == poor0 + 1
    assert _metric(after, "brokerage_orders_rejected_total", code="invalid_tick") == tick0 + 1
    assert _metric(after, "brokerage_http_requests_total", route="api/v1/orders/", method="POST",
                   status="201") == requests0 + 2
    assert _metric(after, "brokerage_http_request_duration_seconds_count", route="api/v1/orders/", method="POST",
                   status="400") >= 1
    assert _metric(after, "brokerage_settlement_entries_total", market="BTC-USD") == entries0 + 1
    assert _metric(after, "brokerage_matcher_batch_orders_count", market="BTC-USD") >= 1
    assert _metric(after, "brokerage_matcher_batch_duration_seconds_count", market="BTC-USD") >= 1
    assert _metric(after, "brokerage_orders_new", market="BTC-USD") == 0
    assert _metric(after, "brokerage_matcher_lag_seconds", market="BTC-USD") == 0
    assert _metric(after, "brokerage_reconciliation_ok") == 1
    assert _metric(after, "brokerage_reconciliation_breaks", check="trial_balance") == 0
    assert all(_metric(after, "brokerage_metrics_collector_up", collector=c) == 1
               for c in ("matcher_backlog", "reconciliation", "heartbeats", "celery_queue_depth"))

    Balance.objects.filter(asset_id="BTC", amount=Decimal("0.2")).update(amount=Decimal("0.3"))  # a break
    reconciliation_run()
    broken = _scrape()
    assert _metric(broken, "brokerage_reconciliation_ok") == 0
    assert _metric(broken, "brokerage_reconciliation_breaks", check="balance_vs_postings") >= 1


@pytest.mark.django_db(transaction=True)
def test_queue_depth_counts_waiting_messages_on_redis(broker_url):  # noqa: F811
    MarketFactory()
    for _ in range(3):
        sweep_markets.delay()  # no worker runs: they wait in the queue
    assert _metric(_scrape(), "brokerage_celery_queue_depth", queue="celery", broker="redis") == 3
    redis.Redis.from_url(broker_url).flushdb()


def test_metrics_can_require_a_scrape_token(settings):
    settings.METRICS_TOKEN = "scrape-token-1"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-1").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_console_draws_the_key_metrics_for_staff(no_broker, monkeypatch):
    from tests.factories import StaffFactory

    monkeypatch.setattr(wakeups, "market_wake", lambda market_id: None)
    MarketFactory()
    trader = api_client_for(role=Role.TRADER)
    fund(trader.account, "USD", "50000")
    for _ in range(3):
        assert trader.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "size": "0.1",
                                               "price": "20000.00"}, format="json").status_code == 201
    staff = Client()
    staff.force_login(StaffFactory(is_superuser=True))
    assert 'href="/admin/console/operations/"' in staff.get("/admin/").content.decode()
    page = staff.get("/admin/console/operations/").content.decode()
    assert page.count("<svg") >= 3 and "<polyline" in page
    assert "Last minute 3" in page  # three orders accepted this minute
    assert "<td>BTC-USD</td><td>3</td>" in page  # all three wait for the matcher
    assert Client().get("/admin/console/operations/").status_code == 302  # staff only
