"""Pacing of a market's matcher batches in a worker (``trading.wakeups.batch_pace``): under steady load a batch
starts no sooner than ``MATCHER_BATCH_INTERVAL_MS`` after the market's previous one, and the wake-up flag stays set
meanwhile, so the orders placed in that time publish nothing and join the batch."""

from __future__ import annotations

import os
import time

import pytest
import redis

from trading import tasks, wakeups

INTERVAL_MS = 200


@pytest.fixture
def sleeps(monkeypatch, settings):
    """The waits ``batch_pace`` asks for, in seconds (recorded instead of slept)."""
    settings.MATCHER_BATCH_INTERVAL_MS = INTERVAL_MS
    monkeypatch.setattr(wakeups, "_batches_started", {})
    slept: list[float] = []
    monkeypatch.setattr(wakeups.time, "sleep", slept.append)
    return slept


@pytest.fixture
def worker_mode():
    """Tasks as a worker runs them (not in-process)."""
    conf = tasks.match_market.app.conf
    eager, conf.task_always_eager = conf.task_always_eager, False
    yield
    conf.task_always_eager = eager


def test_a_markets_first_batch_starts_at_once(sleeps):
    wakeups.batch_pace(1)
    assert sleeps == []


def test_the_next_batch_waits_for_the_rest_of_the_interval(sleeps):
    wakeups.batch_started(1, at=time.monotonic() - 0.05, full=False)
    wakeups.batch_pace(1)
    assert len(sleeps) == 1
    assert 0.1 < sleeps[0] <= 0.15


def test_after_a_quiet_spell_the_batch_starts_at_once(sleeps):
    wakeups.batch_started(1, at=time.monotonic() - 1, full=False)
    wakeups.batch_pace(1)
    assert sleeps == []


def test_a_backlog_goes_on_at_once_after_a_full_batch(sleeps):
    wakeups.batch_started(1, at=time.monotonic(), full=True)
    wakeups.batch_pace(1)
    assert sleeps == []


def test_markets_are_paced_apart(sleeps):
    wakeups.batch_started(1, at=time.monotonic(), full=False)
    wakeups.batch_pace(2)
    assert sleeps == []


def test_an_interval_of_zero_turns_pacing_off(sleeps, settings):
    settings.MATCHER_BATCH_INTERVAL_MS = 0
    wakeups.batch_started(1, at=time.monotonic(), full=False)
    wakeups.batch_pace(1)
    assert sleeps == []


@pytest.mark.django_db
def test_a_worker_paces_the_batches_of_a_market(sleeps, worker_mode, market):
    tasks.match_market(market.pk)
    tasks.match_market(market.pk)
    assert len(sleeps) == 1
    assert 0 < sleeps[0] <= INTERVAL_MS / 1000


@pytest.mark.django_db
def test_in_process_matching_never_waits(sleeps, market):
    tasks.match_market(market.pk)
    tasks.match_market(market.pk)
    assert sleeps == []


@pytest.fixture
def flags(monkeypatch):
    client = redis.Redis.from_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis: {exc}")
    monkeypatch.setattr(wakeups, "_redis", lambda: client)
    return client


@pytest.mark.django_db
def test_the_wake_up_flag_stays_set_while_the_batch_waits(monkeypatch, worker_mode, flags, market, settings):
    """Orders placed during the wait see the flag and publish no task of their own; the batch takes them."""
    settings.MATCHER_BATCH_INTERVAL_MS = INTERVAL_MS
    monkeypatch.setattr(wakeups, "_batches_started", {})
    flag_while_waiting = []
    monkeypatch.setattr(wakeups.time, "sleep", lambda seconds: flag_while_waiting.append(
        flags.exists(wakeups._flag(market.pk))))
    tasks.match_market(market.pk)
    flags.set(wakeups._flag(market.pk), 1)  # an order's wake-up, published while the first batch ran
    tasks.match_market(market.pk)
    assert flag_while_waiting == [1]
    assert not flags.exists(wakeups._flag(market.pk))  # the batch cleared it before reading the orders
