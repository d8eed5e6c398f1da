"""The events relay's loops under load (``events.relay``, ``EVENTS_RELAY_INTERVAL_MS``): woken after a quiet spell
they look at once; woken again within the interval they wait it out and take every message that came meanwhile,
so the sequencer numbers many commits' events in one pass. Against the real Redis and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from events import relay, services, wakeups
from events.models import Event, Sequenced
from events.services import event_record, sequence_all
from tests.api import api_client_for

CHANNEL = "events:test-pacing"


@pytest.fixture
def publisher(redis_wakeups):
    return wakeups.redis_client()


class RecordingStop(threading.Event):
    """A stop event that records how long each hold asked to wait."""

    def __init__(self):
        super().__init__()
        self.holds: list[float] = []

    def wait(self, timeout=None):
        self.holds.append(timeout)
        return super().wait(timeout)


def test_a_message_within_the_interval_holds_until_its_end_and_takes_the_messages_that_came_meanwhile(
        publisher):
    stop = RecordingStop()
    with wakeups.Waiter([CHANNEL]) as waiter:
        for n in range(3):
            publisher.publish(CHANNEL, str(n))
        assert waiter.wait_paced(1.0, not_before=time.monotonic() + 0.2, stop=stop)
        assert len(stop.holds) == 1 and 0.1 < stop.holds[0] <= 0.2
        assert not waiter.wait(0.1), "the messages that came during the hold were not taken"


def test_a_message_after_a_quiet_spell_is_answered_at_once(publisher):
    stop = RecordingStop()
    with wakeups.Waiter([CHANNEL]) as waiter:
        publisher.publish(CHANNEL, "1")
        assert waiter.wait_paced(1.0, not_before=time.monotonic() - 0.5, stop=stop)
    assert stop.holds == []


def test_no_message_is_a_plain_timeout(publisher):
    stop = RecordingStop()
    with wakeups.Waiter([CHANNEL]) as waiter:
        assert not waiter.wait_paced(0.2, not_before=time.monotonic() + 1, stop=stop)
    assert stop.holds == []


@pytest.mark.django_db(transaction=True)
def test_the_sequencer_numbers_a_burst_of_commits_in_a_few_passes_and_loses_none(redis_wakeups, settings,
                                                                                 monkeypatch):
    settings.EVENTS_RELAY_INTERVAL_MS = 300
    account = api_client_for().account
    sequence_all()
    passes = []
    real_pass = services.sequence_pass

    def counted_pass(**kwargs):
        result = real_pass(**kwargs)
        passes.append(result.sequenced)
        return result

    monkeypatch.setattr(services, "sequence_pass", counted_pass)
    stop = threading.Event()
    thread = threading.Thread(target=relay.sequence_loop, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # the loop is waiting
        commits = 20
        for n in range(commits):
            with transaction.atomic():
                event_record(type="order.accepted", account_id=account.pk, data={"n": n})
            time.sleep(0.02)
        deadline = time.monotonic() + 10
        written = set(Event.objects.filter(account_id=account.pk).values_list("pk", flat=True))
        while set(Sequenced.objects.filter(event__in=written).values_list("event_id", flat=True)) != written:
            assert time.monotonic() < deadline, "events left unnumbered"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(5)
        connection.close()
    numbering = [n for n in passes if n]
    assert sum(numbering) == commits
    assert len(numbering) <= 5, f"{len(numbering)} passes numbered {commits} commits' events: {numbering}"
