"""The events relay process (``manage.py events_relay``, started by ``./run``): everything that happens to the
log after commit, each in its own thread.

- ``sequence``: numbers committed events (``events.services.sequence_pass``), woken by writers over Redis
  (``events:written``) or every second; runs again at once while a pass was cut short.
- ``webhooks``: delivers to due endpoints on a bounded pool (``WEBHOOK_CONCURRENCY``), woken when events are
  numbered or when the earliest retry is due.
- ``amqp``: publishes to RabbitMQ when ``EVENTS_AMQP_URL`` is set (``events.amqp``).

The sequencer and the webhook dispatcher look again at once when woken after a quiet spell, but under load at most
every ``EVENTS_RELAY_INTERVAL_MS``: the messages that come meanwhile are taken together, so a pass (a transaction and
its dozen fixed queries) numbers what many commits wrote instead of what one or two did.

Any number of relays may run: the sequencer and the RabbitMQ publisher each run in one of them at a time
(advisory locks) and webhook endpoints are leased one dispatcher at a time. A loop that meets an error logs it,
drops its database connection and tries again a second later.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection
from django.utils import timezone

from events import services, wakeups, webhooks

logger = logging.getLogger(__name__)

CHANNELS = ("sequence", "webhooks", "amqp")
IDLE_SECONDS = 1.0
ERROR_PAUSE_SECONDS = 1.0


def _resilient(name: str, step, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            step()
        except Exception:  # a loop must survive the database or Redis going away; the error is logged
            logger.exception("events relay: %s failed; retrying", name)
            connection.close()
            stop.wait(ERROR_PAUSE_SECONDS)
    connection.close()


def _interval() -> float:
    """The shortest time between two looks of a loop woken by messages (``EVENTS_RELAY_INTERVAL_MS``)."""
    return settings.EVENTS_RELAY_INTERVAL_MS / 1000


def sequence_loop(stop: threading.Event) -> None:
    waiter = wakeups.Waiter([wakeups.WRITTEN])

    def step():
        started = time.monotonic()
        result = services.sequence_pass()
        if result.more:
            return
        if not result.locked:  # another process is numbering: look again shortly
            stop.wait(0.05)
            return
        waiter.wait_paced(IDLE_SECONDS, not_before=started + _interval(), stop=stop)

    try:
        _resilient("sequencer", step, stop)
    finally:
        waiter.close()


def webhook_loop(stop: threading.Event) -> None:
    pool = ThreadPoolExecutor(max_workers=max(settings.WEBHOOK_CONCURRENCY, 1), thread_name_prefix="webhook")
    busy: set[int] = set()
    lock = threading.Lock()
    waiter = wakeups.Waiter([wakeups.SEQUENCED])

    def deliver(endpoint_id: int) -> None:
        try:
            webhooks.endpoint_deliver(endpoint_id)
        except Exception:
            logger.exception("webhook delivery to endpoint %s failed", endpoint_id)
        finally:
            connection.close()
            with lock:
                busy.discard(endpoint_id)

    def step():
        started = time.monotonic()
        due, retry_at = webhooks.dispatch_plan()
        for endpoint_id in due:
            with lock:
                if endpoint_id in busy:
                    continue
                busy.add(endpoint_id)
            pool.submit(deliver, endpoint_id)
        pause = IDLE_SECONDS
        if retry_at is not None:
            pause = min(pause, max((retry_at - timezone.now()).total_seconds(), 0.01))
        waiter.wait_paced(pause, not_before=started + _interval(), stop=stop)

    try:
        _resilient("webhooks", step, stop)
    finally:
        waiter.close()
        pool.shutdown(wait=True)


def amqp_loop(stop: threading.Event) -> None:
    from events.amqp import AmqpRelay

    AmqpRelay().run(stop)


LOOPS = {"sequence": sequence_loop, "webhooks": webhook_loop, "amqp": amqp_loop}


def default_channels() -> list[str]:
    return ["sequence", "webhooks"] + (["amqp"] if settings.EVENTS_AMQP_URL else [])


def run(channels: list[str], stop: threading.Event) -> None:
    threads = [threading.Thread(target=LOOPS[name], args=(stop,), name=f"relay-{name}", daemon=True)
               for name in channels]
    for thread in threads:
        thread.start()
    logger.info("events relay running: %s", ", ".join(channels))
    while not stop.is_set():
        if not all(thread.is_alive() for thread in threads):
            logger.error("an events relay loop ended; stopping the relay")
            stop.set()
        time.sleep(0.2)
    for thread in threads:
        thread.join(timeout=15)
