"""Celery tasks of trading: thin wake-ups. The database is the queue of record; messages carry only a market id.

Serialisation (README "Matching"): every ``match_market`` task may run on any worker process; the PostgreSQL
advisory lock of the market (``trading.sql.LOCK_NAMESPACE``, market id) lets one of them match at a time.
A task that finds the lock taken re-queues itself after ``LOCKED_RETRY_SECONDS`` instead of blocking a worker
slot, so no wake-up is lost while another batch runs. We chose the lock over a queue per market: it needs no
routing or per-market worker configuration, stays correct with any number of workers and queues, and markets
still spread over workers. A worker keeps its in-memory books between tasks, so throughput is best when one
worker process serves a market most of the time (e.g. a dedicated worker with ``--concurrency 1``); any other
process that gets a task rebuilds the book from the database first.

Idempotency: tasks are acked late (``CELERY_TASK_ACKS_LATE``), so a worker killed mid-batch gets its task
redelivered; its transaction rolled back, so the redelivered task redoes the batch. A duplicate task finds no
``new`` orders and does nothing.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError

from core.heartbeats import MATCHER, heartbeat_record
from trading import clock, metrics, wakeups
from trading.models import OPEN_STATUSES, TRADING_STATUSES, Order, OrderStatus
from trading.services import controls, market_match

LOCKED_RETRY_SECONDS = 0.05
logger = logging.getLogger(__name__)


# A dropped database connection is transient: the batch rolled back, try again shortly. Anything else is a bug
# to see in the logs; the orders stay ``new`` and the sweep retries them.
@shared_task(name="trading.tasks.match_market", ignore_result=True, autoretry_for=(OperationalError, InterfaceError),
             retry_backoff=0.5, retry_backoff_max=10, max_retries=5)
def match_market(market_id: int) -> dict:
    in_process = bool(match_market.app.conf.task_always_eager)
    if not in_process:
        wakeups.batch_pace(market_id)
    started = time.monotonic()
    # Run in-process (no broker), a re-queue would recurse: wait for the lock instead.
    summary = market_match(market_id=market_id, wait=in_process)
    if summary.locked:
        wakeups.batch_started(market_id, at=started, full=summary.more)
    metrics.batch_observed(market_id=market_id, locked=summary.locked, orders=summary.orders, fills=summary.fills,
                           seconds=time.monotonic() - started)
    if not summary.locked:
        match_market.apply_async((market_id,), countdown=LOCKED_RETRY_SECONDS)
    elif summary.more:
        match_market.delay(market_id)
    return summary.__dict__


@shared_task(name="trading.tasks.sweep_markets", ignore_result=True)
def sweep_markets() -> list[int]:
    """Beat: wake every open market that has ``new`` orders, and every market with good-til-time orders past their
    time, in case a wake-up message (or expiry timer) was lost; and record the
    matcher's heartbeat (``/readyz``): this task running proves beat, broker, worker and database all work."""
    heartbeat_record(MATCHER)
    due = Order.objects.filter(status__in=OPEN_STATUSES, expire_time__lte=clock.now())  # order_open_expiring
    market_ids = sorted(
        set(Order.objects.filter(status=OrderStatus.NEW, market__status__in=TRADING_STATUSES)
            .values_list("market_id", flat=True).distinct())
        | set(due.values_list("market_id", flat=True).distinct())
    )
    for market_id in market_ids:
        match_market.delay(market_id)
    if market_ids:  # an idle sweep logs nothing at INFO (core.log_filters.RoutineTaskFilter)
        logger.info("Sweep: woke markets %s that still have new orders", market_ids)
    return market_ids


@shared_task(name="trading.tasks.cancel_after_sweep", ignore_result=True)
def cancel_after_sweep() -> list[int]:
    """Beat, every ``CANCEL_AFTER_SWEEP_SECONDS``: cancel every order of each account whose dead-man switch
    (``POST /orders/cancel-after/``) lapsed; each account in its own transaction, decided again under its lock."""
    fired = []
    for account_id in controls.cancel_after_lapsed():
        if controls.cancel_after_fire(account_id=account_id) is not None:
            fired.append(account_id)
    if fired:
        logger.info("Dead-man switch lapsed: cancelled the orders of accounts %s", fired)
    return fired
