"""The RabbitMQ relay: every numbered event, in ``seq`` order, to a durable topic exchange.

- Routing key ``<type>.<account id>`` (``<type>.public`` for public events), e.g. ``fill.created.42``; bind
  ``fill.*.42`` or ``#``. The body is the envelope every channel sends (``events.selectors.envelope``), the
  message id the event id, persistent (delivery mode 2), with ``seq``/``account_seq`` headers.
- Publisher confirms: a batch is published with every message in flight, and the relay's mark (the
  ``amqp`` consumer's position) moves to the batch's last ``seq`` only once the broker has confirmed all of it.
  A relay killed at any instruction, or a broker that restarts, loses nothing: the next run publishes again from
  the mark (duplicates, which consumers drop by message id).
- One relay publishes at a time: it holds a session advisory lock while it runs (PostgreSQL); another waits.
- RabbitMQ drops a message that no queue is bound to: a downstream system binds a durable queue before it
  relies on the stream (events numbered before that are in the pull API).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import aio_pika
import orjson
from django.conf import settings
from django.db import DatabaseError, connection

from events import sql, wakeups
from events.models import Consumer
from events.selectors import envelope, stream_page
from events.types import STREAM_ONLY

logger = logging.getLogger(__name__)

CONSUMER = "amqp"
RECONNECT_SECONDS = (0.5, 1, 2, 5)
IDLE_SECONDS = 0.5


def routing_key(event: dict) -> str:
    return f"{event['type']}.{event['account'] if event['account'] is not None else 'public'}"


def _batch(after: int, limit: int) -> tuple[list[dict], int]:
    """The next numbered events to publish, and the ``seq`` the read reached: the WebSocket streamer's own events
    are passed over, not published, and the mark moves past them too (else it would wait behind them)."""
    rows = stream_page(after=after, limit=limit)
    return [envelope(q) for q in rows if q.type not in STREAM_ONLY], (rows[-1].seq if rows else after)


def _position() -> int:
    consumer, _ = Consumer.objects.get_or_create(name=CONSUMER)
    return consumer.position


def _advance(seq: int) -> None:
    Consumer.objects.filter(name=CONSUMER, position__lt=seq).update(position=seq, last_error="")


def _error(message: str) -> None:
    Consumer.objects.filter(name=CONSUMER).update(last_error=message[:1000])


class AmqpRelay:
    """Runs in its own thread with its own event loop; database work runs on one helper thread (Django's
    connections are per thread), which also holds the single-publisher lock."""

    def __init__(self, url: str | None = None, exchange: str | None = None, batch: int | None = None):
        self.url = url or settings.EVENTS_AMQP_URL
        self.exchange_name = exchange or settings.EVENTS_AMQP_EXCHANGE
        self.batch = batch or settings.EVENTS_AMQP_BATCH
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amqp-db")
        self.waiter = None

    def run(self, stop: threading.Event) -> None:
        try:
            asyncio.run(self._main(stop))
        finally:
            self.db.submit(self._close).result()
            self.db.shutdown()

    def _close(self) -> None:
        if self.waiter is not None:
            self.waiter.close()
        connection.close()

    async def _db(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.db, fn, *args)

    async def _main(self, stop: threading.Event) -> None:
        while not stop.is_set() and not await self._db(self._lock):
            logger.info("another relay publishes to RabbitMQ; waiting")
            await asyncio.sleep(2)
        self.waiter = await self._db(wakeups.Waiter, [wakeups.SEQUENCED])
        failures = 0
        while not stop.is_set():
            try:
                await self._publish_until(stop)
            # Whatever the broker or the connection does (closed channels surface as RuntimeError subclasses in
            # aiormq), the relay reconnects and publishes again from its mark; it is logged with the traceback.
            except Exception as exc:  # noqa: BLE001
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                logger.warning("RabbitMQ relay: %s: %s; reconnecting in %ss", type(exc).__name__, exc, delay,
                               exc_info=not isinstance(exc, (aio_pika.exceptions.AMQPException, OSError)))
                if isinstance(exc, DatabaseError):  # a fresh connection, and the single-publisher lock again
                    await self._db(connection.close)
                    await asyncio.sleep(delay)
                    while not stop.is_set() and not await self._db(self._lock):
                        await asyncio.sleep(2)
                    continue
                try:
                    await self._db(_error, f"{type(exc).__name__}: {exc}")
                except DatabaseError:
                    logger.warning("could not record the RabbitMQ relay's error", exc_info=True)
                await asyncio.sleep(delay)
            else:
                failures = 0

    def _lock(self) -> bool:
        return bool(sql.consumer_lock(CONSUMER))

    async def _publish_until(self, stop: threading.Event) -> None:
        connection_ = await aio_pika.connect(self.url, timeout=5)
        async with connection_:
            channel = await connection_.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
            logger.info("RabbitMQ relay connected; publishing to %s", self.exchange_name)
            while not stop.is_set():
                after = await self._db(_position)
                events, reached = await self._db(_batch, after, self.batch)
                if reached == after:
                    await self._db(self.waiter.wait, IDLE_SECONDS)
                    continue
                # Every message in flight at once; gather returns when the broker has confirmed them all (a
                # nack or a lost connection raises, and the mark stays where it was).
                await asyncio.gather(*(exchange.publish(_message(e), routing_key=routing_key(e)) for e in events))
                await self._db(_advance, reached)


def _message(event: dict) -> aio_pika.Message:
    return aio_pika.Message(
        orjson.dumps(event), content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(event["id"]), type=event["type"],
        headers={"seq": event["seq"], "account_seq": event["account_seq"], "market_seq": event["market_seq"]},
    )
