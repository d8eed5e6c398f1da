"""``GET /api/v1/events/``: account-scoped cursor pages, type filters, bad input, and long-polling that wakes within
milliseconds over Redis and waits without a database connection."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from events import api as events_api
from events.services import event_record, sequence_all, sequence_pass
from tests.api import api_client_for

pytestmark = pytest.mark.django_db(transaction=True)


def record(account_id, type_="order.accepted", **data):
    with transaction.atomic():
        event_record(type=type_, account_id=account_id, data=data)


def test_pages_are_scoped_to_the_account_ascending_with_public_events_and_a_forward_only_cursor():
    alice, bob = api_client_for(), api_client_for()
    for n in range(5):
        record(alice.account.pk, n=n)
        record(bob.account.pk, n=n)
    record(None, "market.status_changed", symbol="BTC-USD")
    sequence_all()
    first = alice.get("/api/v1/events/", {"limit": 4}).json()
    assert first["has_more"] is True and len(first["events"]) == 4
    rest = alice.get("/api/v1/events/", {"after": first["cursor"], "limit": 50}).json()
    events = first["events"] + rest["events"]
    assert [e["type"] for e in events] == ["api_key.created"] + ["order.accepted"] * 5 + ["market.status_changed"]
    assert {e["account"] for e in events} == {alice.account.pk, None}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert [e["account_seq"] for e in events] == [1, 2, 3, 4, 5, 6, None]
    assert rest["has_more"] is False and int(rest["cursor"]) == events[-1]["seq"]

    # Filtering by type: nothing of that type, but the cursor moves to the head so nothing is scanned twice.
    filtered = alice.get("/api/v1/events/", {"type": "fill.created,hold.placed"}).json()
    assert filtered["events"] == [] and int(filtered["cursor"]) == events[-1]["seq"]
    by_type = alice.get("/api/v1/events/", {"type": ["market.status_changed", "api_key.created"]}).json()
    assert [e["type"] for e in by_type["events"]] == ["api_key.created", "market.status_changed"]
    assert alice.get("/api/v1/events/", {"after": "latest"}).json() == {
        "events": [], "cursor": rest["cursor"], "has_more": False}


@pytest.mark.parametrize("params, code, field", [
    ({"after": "abc"}, "invalid", "after"),
    ({"after": "-1"}, "invalid", "after"),
    ({"wait": "31"}, "max_value", "wait"),
    ({"wait": "soon"}, "invalid", "wait"),
    ({"limit": "0"}, "min_value", "limit"),
    ({"limit": "501"}, "max_value", "limit"),
    ({"type": "order.exploded"}, "invalid_choice", "type.0"),
])
def test_bad_input_is_a_400_with_a_code_and_a_field(params, code, field):
    response = api_client_for().get("/api/v1/events/", params)
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == (code, field)


def backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_a_long_poll_wakes_within_milliseconds_of_the_sequencer_and_waits_without_a_connection(redis_wakeups):
    client = api_client_for()
    sequence_all()
    cursor = client.get("/api/v1/events/", {"after": "latest"}).json()["cursor"]
    result = {}

    def poll():
        started = time.monotonic()
        result["response"] = client.get("/api/v1/events/", {"after": cursor, "wait": 20}).json()
        result["elapsed"] = time.monotonic() - started
        connection.close()

    idle = backends()
    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(1.0)
    assert backends() == idle, "the waiting request holds a database connection"
    record(client.account.pk, n=1)
    numbered_at = time.monotonic()
    assert sequence_pass().sequenced == 1
    thread.join(25)
    woke_after = time.monotonic() - numbered_at
    assert [e["data"] for e in result["response"]["events"]] == [{"n": 1}]
    assert result["elapsed"] < 5 and woke_after < 1.0, (result["elapsed"], woke_after)


def test_a_long_poll_with_nothing_to_say_returns_empty_after_wait():
    client = api_client_for()
    sequence_all()
    started = time.monotonic()
    response = client.get("/api/v1/events/", {"after": "latest", "wait": 1}).json()
    assert response["events"] == [] and 0.9 <= time.monotonic() - started < 3


def test_when_every_long_poll_slot_is_taken_a_waiting_request_is_a_429(monkeypatch):
    monkeypatch.setattr(events_api, "_waiters", threading.BoundedSemaphore(1))
    events_api._waiters.acquire()  # another request is waiting
    client = api_client_for()
    sequence_all()
    response = client.get("/api/v1/events/", {"after": "latest", "wait": 5})
    assert (response.status_code, response.json()["code"]) == (429, "long_poll_busy")
    assert client.get("/api/v1/events/", {"after": "latest"}).status_code == 200  # without wait: fine
