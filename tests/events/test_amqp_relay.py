"""The RabbitMQ relay on real PostgreSQL and a private RabbitMQ node: a relay SIGKILLed mid-publish and the broker
restarted mid-run (``rabbitmqctl stop_app`` / ``start_app``) lose nothing. A consumer (pika, an independent
client) ends with every event, and after dropping duplicates by message id, each account's events in order."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pika
import pytest
from django.conf import settings as django_settings
from django.db import transaction

from events.amqp import CONSUMER
from events.models import Consumer, Event, Sequenced
from events.services import event_record, sequence_all
from tests.events.rabbitmq import private_rabbitmq, restart_app
from tests.factories import ClientAccountFactory
from tests.reliability.db import wait_until
from tests.trading.workers import test_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.rabbitmq]
EXCHANGE = "test.events"
QUEUE = "test.events.all"


@pytest.fixture(scope="module")
def rabbitmq_url():
    with private_rabbitmq() as url:
        yield url


class Collector:
    """Consumes the durable queue with manual acks, reconnecting while the broker is away."""

    def __init__(self, url: str):
        self.url, self.messages, self.stop = url, [], threading.Event()
        self.lock = threading.Lock()
        self.reconnects = 0
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(30), "the consumer could not connect"

    def _run(self):
        while not self.stop.is_set():
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.url))
                channel = connection.channel()
                channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
                channel.queue_declare(QUEUE, durable=True)
                channel.queue_bind(QUEUE, EXCHANGE, routing_key="#")
                channel.basic_qos(prefetch_count=500)
                self.ready.set()
                for method, properties, body in channel.consume(QUEUE, inactivity_timeout=0.2):
                    if self.stop.is_set():
                        break
                    if method is None:
                        continue
                    with self.lock:
                        self.messages.append((properties.message_id, method.routing_key, orjson.loads(body)))
                    channel.basic_ack(method.delivery_tag)
                connection.close()
            except pika.exceptions.AMQPError:
                self.reconnects += 1
                time.sleep(0.3)

    def distinct(self) -> dict[str, dict]:
        with self.lock:
            return {message_id: body for message_id, _, body in self.messages}

    def close(self):
        self.stop.set()
        self.thread.join(10)


def relay_start(url: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": test_database_url(), "SECRET_KEY": django_settings.SECRET_KEY,
           "DB_CONN_MAX_AGE": "0", "EVENTS_AMQP_URL": url, "EVENTS_AMQP_EXCHANGE": EXCHANGE,
           "EVENTS_AMQP_BATCH": "25", "EVENTS_REDIS_URL": "", "REDIS_URL": "", "CELERY_BROKER_URL": ""}
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "manage.py", "events_relay", "--channels", "amqp"],
                                cwd=Path(django_settings.BASE_DIR), env=env, stdout=out, stderr=subprocess.STDOUT)


def write_events(accounts: list[int], n: int, tag: str) -> None:
    for start in range(0, n, 50):
        with transaction.atomic():
            for i in range(start, min(start + 50, n)):
                account_id = accounts[i % len(accounts)]
                event_record(type="order.accepted" if i % 3 else "fill.created", account_id=account_id,
                             data={"tag": tag, "i": i})
    sequence_all()


def amqp_position() -> int:
    return Consumer.objects.filter(name=CONSUMER).values_list("position", flat=True).first() or 0


def test_a_killed_relay_and_a_restarted_broker_lose_no_event(rabbitmq_url, tmp_path):
    accounts = [ClientAccountFactory().pk for _ in range(3)]
    collector = Collector(rabbitmq_url)
    log = tmp_path / "relay.log"
    relay = relay_start(rabbitmq_url, log)
    try:
        write_events(accounts, 3000, "first")
        total = Sequenced.objects.count()

        # SIGKILL while it publishes: some of its batches confirmed, the one in flight not.
        wait_until(lambda: len(collector.messages) >= 600, seconds=60, what="the relay to publish")
        relay.kill()
        assert relay.wait(20) == -9
        killed_at = amqp_position()
        assert killed_at < total, "the relay had finished before the kill: nothing was tested"

        relay = relay_start(rabbitmq_url, log)
        writer = threading.Thread(target=lambda: (write_events(accounts, 1500, "second"), _close_db()))
        writer.start()
        wait_until(lambda: amqp_position() > killed_at + 300, seconds=60, what="the restarted relay to publish")
        restart_app()  # the broker goes away mid-run and comes back
        writer.join(60)
        total = Sequenced.objects.count()
        wait_until(lambda: len(collector.distinct()) >= total, seconds=120, what="every event at the consumer")
        wait_until(lambda: amqp_position() == total, seconds=30, what="the relay's mark to reach the head")
    finally:
        relay.kill()
        relay.wait(20)
        collector.close()

    received = collector.distinct()
    events = {str(e.pk): e for e in Event.objects.all()}
    assert set(received) == set(events), "lost or invented events"
    per_account = defaultdict(list)
    seen = set()
    for message_id, routing_key, body in collector.messages:  # arrival order, first copy of each
        if message_id in seen:
            continue
        seen.add(message_id)
        assert routing_key == f"{body['type']}.{body['account']}"
        assert body["data"] == events[message_id].payload
        per_account[body["account"]].append(body["account_seq"])
    for account_id in accounts:
        assert per_account[account_id] == list(range(1, len(per_account[account_id]) + 1)), account_id
    assert sum(map(len, per_account.values())) == total
    duplicates = len(collector.messages) - len(received)
    print(f"{total} events, {duplicates} duplicates delivered, consumer reconnected {collector.reconnects} times")
    assert collector.reconnects >= 1, "the broker restart was not noticed"
    assert "reconnecting" in log.read_text()


def _close_db():
    from django.db import connection

    connection.close()
