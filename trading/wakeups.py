"""Wake-up calls for the matcher: "market M has work". The message carries no data; orders are in the database.

Placing orders at thousands per second must not publish thousands of matcher tasks that each find nothing, so
wake-ups are coalesced with a Redis flag per market (``SET NX`` with a short expiry): the first order after
the matcher started a batch publishes a task, the next ones see the flag and do not. The matcher clears the
flag under its lock *before* it reads the new orders, so an order committed after that read always publishes
again. A lost message costs at most the flag's expiry or the periodic sweep, never an order.
Without a Redis broker (embedded default, tasks run in-process) every wake-up is published.

Under steady load a worker paces each market's batches (``batch_pace``): a batch starts no sooner than
``MATCHER_BATCH_INTERVAL_MS`` after the previous one did. The flag stays set while the worker waits, so the orders
arriving meanwhile publish nothing and join the batch: fewer, larger batches, each a task and a wake-up less.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from functools import cache

import redis
from django.conf import settings
from django.db import transaction

from core.db import on_commit_once

logger = logging.getLogger(__name__)

FLAG_TTL_SECONDS = 2
TIMER_GRACE_SECONDS = 5  # an expiry timer's key outlives its time by this much


def _flag(market_id: int) -> str:
    return f"trading:wake:{market_id}"


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@cache
def _redis():
    """The Redis of the flags: the broker when it is Redis, else the cache's Redis (RabbitMQ broker)."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(REDIS_SCHEMES) and not settings.CELERY_TASK_ALWAYS_EAGER:
        url = settings.CACHE_URL
    if not url.startswith(REDIS_SCHEMES):
        return None
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def market_wake(market_id: int) -> None:
    """Ask a worker to match ``market_id`` unless a wake-up is already pending. Call it after commit."""
    from trading.tasks import match_market

    client = _redis()
    if client is not None:
        try:
            if not client.set(_flag(market_id), 1, nx=True, ex=FLAG_TTL_SECONDS):
                return
        except redis.RedisError:  # no flag: publish anyway (a duplicate wake-up is harmless)
            logger.warning("wake-up flag of market %s unavailable", market_id)
    match_market.delay(market_id)


def market_wake_on_commit(market_id: int) -> None:
    # robust: the order is committed whatever happens to the message; the sweep finds it if this fails.
    on_commit_once(("market-wake", market_id), lambda: market_wake(market_id))


def wake_flag_clear(market_id: int) -> None:
    client = _redis()
    if client is not None:
        try:
            client.delete(_flag(market_id))
        except redis.RedisError:  # a stale flag only delays the next wake-up by FLAG_TTL_SECONDS
            logger.warning("could not clear the wake-up flag of market %s", market_id, exc_info=True)


# Per worker process: when this process last started a batch of the market, and whether that batch was full
# (a backlog, whose next batch must not wait).
_batches_started: dict[int, tuple[float, bool]] = {}


def batch_pace(market_id: int) -> None:
    """Wait until ``MATCHER_BATCH_INTERVAL_MS`` has passed since this process last started a batch of the market.
    No wait for a market's first batch, after a quiet spell, or after a full batch. Call it before the batch;
    ``batch_started`` after."""
    last = _batches_started.get(market_id)
    if last is None or last[1]:
        return
    remaining = last[0] + settings.MATCHER_BATCH_INTERVAL_MS / 1000 - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def batch_started(market_id: int, *, at: float, full: bool) -> None:
    _batches_started[market_id] = (at, full)


def _timer(market_id: int) -> str:
    return f"trading:expiry-timer:{market_id}"


def market_wake_at(market_id: int, when: datetime) -> None:
    """Ask a worker to match ``market_id`` at ``when`` (its next good-til-time expiry), unless a wake-up at that
    time or earlier is already scheduled: one timer per market, not one per order. Call it after commit.

    The Redis key holds the time of the scheduled wake-up; a later expiry waits for that wake-up, whose batch
    schedules the next one (a duplicate wake-up is harmless). Without Redis, or with tasks run in-process, no timer is set: the periodic sweep expires
    orders within its interval (``sweep_markets``)."""
    from trading.tasks import match_market

    client = _redis()
    if client is None or settings.CELERY_TASK_ALWAYS_EAGER:
        return
    at = when.timestamp()
    delay = at - time.time()
    try:
        scheduled = client.get(_timer(market_id))
        if scheduled is not None and time.time() < float(scheduled) <= at:
            return  # an earlier wake-up is still to come
        client.set(_timer(market_id), repr(at), ex=max(int(delay), 0) + TIMER_GRACE_SECONDS)
    except redis.RedisError:
        logger.warning("expiry timer of market %s unavailable; the sweep expires its orders", market_id)
        return
    match_market.apply_async((market_id,), eta=when)


def market_wake_at_on_commit(market_id: int, when: datetime | None) -> None:
    if when is not None:
        transaction.on_commit(lambda: market_wake_at(market_id, when), robust=True)
