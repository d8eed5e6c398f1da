"""Scrape-time metrics of the event log: the sequencer's and each consumer's backlog and lag, from /metrics."""

import pytest
from django.db import transaction
from django.test import Client

from events.models import Consumer
from events.services import event_record, sequence_pass
from tests.ops.test_health_and_metrics import _metric

pytestmark = pytest.mark.django_db(transaction=True)


def _scrape() -> str:
    return Client().get("/metrics").content.decode()


def test_backlog_and_lag_per_consumer_follow_the_log():
    with transaction.atomic():
        for n in range(3):
            event_record(type="market.status_changed", account_id=None, data={"n": n})
    written = _scrape()
    assert _metric(written, "brokerage_events_relay_backlog", consumer="sequencer") == 3
    assert 0 <= _metric(written, "brokerage_events_relay_lag_seconds", consumer="sequencer") < 60
    assert _metric(written, "brokerage_metrics_collector_up", collector="events_backlog") == 1

    assert sequence_pass().sequenced == 3
    Consumer.objects.create(name="amqp", position=1)
    numbered = _scrape()
    assert _metric(numbered, "brokerage_events_relay_backlog", consumer="sequencer") == 0
    assert _metric(numbered, "brokerage_events_relay_lag_seconds", consumer="sequencer") == 0
    assert _metric(numbered, "brokerage_events_relay_backlog", consumer="amqp") == 2
    assert 0 <= _metric(numbered, "brokerage_events_relay_lag_seconds", consumer="amqp") < 60  # written just now
