"""The matcher's expiry timer (``trading.wakeups.market_wake_at``): one Celery wake-up per market at its next
good-til-time expiry, kept in Redis, replaced only by an earlier one."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from trading import tasks, wakeups

MARKET = 987654  # no such market: only the timer's key and the task calls are looked at


@pytest.fixture
def scheduled(monkeypatch, settings):
    client = redis.Redis.from_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis: {exc}")
    client.delete(wakeups._timer(MARKET))
    monkeypatch.setattr(wakeups, "_redis", lambda: client)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    calls = []
    monkeypatch.setattr(tasks.match_market, "apply_async", lambda args, eta: calls.append((args, eta)))
    yield calls
    client.delete(wakeups._timer(MARKET))


def test_one_timer_per_market_replaced_only_by_an_earlier_expiry(scheduled):
    now = datetime.now(UTC)
    wakeups.market_wake_at(MARKET, now + timedelta(seconds=30))
    wakeups.market_wake_at(MARKET, now + timedelta(seconds=60))  # later: the first wake-up schedules it
    wakeups.market_wake_at(MARKET, now + timedelta(seconds=20))  # earlier: a new timer
    assert scheduled == [((MARKET,), now + timedelta(seconds=30)), ((MARKET,), now + timedelta(seconds=20))]


def test_a_timer_whose_time_has_come_is_set_again(scheduled):
    past = datetime.now(UTC) - timedelta(seconds=1)
    wakeups.market_wake_at(MARKET, past)  # e.g. the batch its wake-up ran found the next expiry already due
    wakeups.market_wake_at(MARKET, past + timedelta(seconds=1))
    assert len(scheduled) == 2 and time.time() > past.timestamp()
