"""The WebSocket streamer's own events (``book.changed``) are numbered in the shared log but belong to no other
consumer: they wake no long-poll, and the RabbitMQ relay passes over them, moving its mark past them (a trailing
one must not leave the relay 'behind' and fire the lag alert)."""

import pytest

from events.amqp import _batch
from events.services import NewEvent, events_record, sequence_pass
from events.types import BOOK_CHANGED, EventType

pytestmark = pytest.mark.django_db


def test_a_pass_of_only_stream_events_wakes_no_public_long_poll():
    events_record([NewEvent(BOOK_CHANGED, None, {"sequence": 1, "orders": []}, None)])

    numbered = sequence_pass()

    assert (numbered.sequenced, numbered.public) == (1, False)


def test_a_public_event_still_wakes_the_public_long_polls():
    events_record([NewEvent(EventType.MARKET_STATUS_CHANGED, None, {"symbol": "BTC-USD"}, None)])

    assert sequence_pass().public is True


def test_the_rabbitmq_relay_publishes_around_stream_events_and_its_mark_reaches_past_them():
    events_record([NewEvent(EventType.MARKET_STATUS_CHANGED, None, {"symbol": "BTC-USD"}, None),
                   NewEvent(BOOK_CHANGED, None, {"sequence": 1, "orders": []}, None)])
    head = sequence_pass().head

    events, reached = _batch(0, 100)

    assert [e["type"] for e in events] == ["market.status_changed"] and reached == head == 2
    assert _batch(head, 100) == ([], head)  # nothing more: the relay waits instead of publishing
