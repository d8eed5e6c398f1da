"""The gap-free cursor on real PostgreSQL with concurrent writers (README "Events: the cursor guarantee").

Ids come from a sequence, so they are not in commit order: a transaction that took its id early can commit after
one that took a higher id. A reader that pages "after the highest id I have seen" would skip it forever. These
tests force that interleaving with real threads and connections, and run random ones, and show a reader of the
pull API never skips an event, sees each once, and sees each account's ``account_seq`` as 1, 2, 3, ...
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import connection, transaction

from events.models import Event
from events.selectors import account_events
from events.services import event_record, sequence_all, sequence_pass
from tests.api import api_client_for
from tests.factories import ClientAccountFactory

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 30


def in_thread(fn) -> threading.Thread:
    errors = []

    def run():
        try:
            fn()
        except BaseException as exc:  # reported by the joiner
            errors.append(exc)
            raise
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors
    thread.start()
    return thread


def joined(thread: threading.Thread) -> None:
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "thread hung"
    assert not thread.errors, thread.errors


def test_an_event_that_commits_after_a_later_one_is_served_after_it_not_skipped():
    client = api_client_for()
    account_id = client.account.pk
    sequence_all()  # the API key's own event
    start = client.get("/api/v1/events/", {"after": "latest"}).json()["cursor"]
    a_has_xid, t_wrote, a_committed, reader_read = (threading.Event() for _ in range(4))

    def transaction_a():  # the OLDER transaction: it takes its transaction id first ...
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_current_xact_id()")
            a_has_xid.set()
            assert t_wrote.wait(TIMEOUT)
            event_record(type="order.accepted", account_id=account_id, data={"by": "A"})  # ... the HIGHER id
        a_committed.set()

    def transaction_t():  # the NEWER transaction writes first (the LOWER id) and commits last
        assert a_has_xid.wait(TIMEOUT)
        with transaction.atomic():
            event_record(type="order.accepted", account_id=account_id, data={"by": "T"})
            t_wrote.set()
            assert reader_read.wait(TIMEOUT)

    a, t = in_thread(transaction_a), in_thread(transaction_t)
    assert a_committed.wait(TIMEOUT)
    joined(a)

    # T is still open with the lower id: the reader gets A's event, and its cursor moves past it.
    sequence_pass()
    first = client.get("/api/v1/events/", {"after": start}).json()
    assert [e["data"]["by"] for e in first["events"]] == ["A"]
    reader_read.set()
    joined(t)

    sequence_pass()
    second = client.get("/api/v1/events/", {"after": first["cursor"]}).json()
    assert [e["data"]["by"] for e in second["events"]] == ["T"]  # not skipped
    a_event, t_event = first["events"][0], second["events"][0]
    assert t_event["id"] < a_event["id"]  # the id order was not the commit order ...
    assert t_event["seq"] == a_event["seq"] + 1  # ... the delivery order is, without a gap
    assert t_event["account_seq"] == a_event["account_seq"] + 1
    assert Event.objects.get(pk=t_event["id"]).payload == {"by": "T"}


def test_a_reader_racing_many_writers_sees_every_committed_event_once_in_account_order():
    accounts = [ClientAccountFactory().pk for _ in range(3)]
    writers_done = threading.Event()
    rng = random.Random(12)
    plans = [[(rng.choice(accounts), rng.randint(1, 3), rng.random() < 0.15, rng.random() / 200)
              for _ in range(30)] for _ in range(6)]

    def writer(plan):
        def run():
            for n, (account_id, count, rolls_back, pause) in enumerate(plan):
                try:
                    with transaction.atomic():
                        for i in range(count):
                            event_record(type="order.accepted", account_id=account_id,
                                         data={"n": n, "i": i, "rolled_back": rolls_back})
                            time.sleep(pause)  # hold the transaction open while others commit
                        if rolls_back:
                            raise RuntimeError("roll back")
                except RuntimeError:
                    pass
        return run

    seen = {a: [] for a in accounts}
    cursors = {a: 0 for a in accounts}

    def reader():
        caught_up = False
        while not caught_up:
            finished = writers_done.is_set()  # read before the pass: then the pass sees every commit
            sequence_pass()
            fresh = 0
            for account_id in accounts:
                while True:
                    page = account_events(account_id=account_id, after=cursors[account_id], limit=7)
                    seen[account_id].extend((q.event_id, q.seq, q.account_seq, q.event.payload) for q in page.events)
                    fresh += len(page.events)
                    cursors[account_id] = page.cursor
                    if not page.has_more:
                        break
            caught_up = finished and fresh == 0 and sequence_pass().sequenced == 0

    writers = [in_thread(writer(plan)) for plan in plans]
    read = in_thread(reader)
    for w in writers:
        joined(w)
    writers_done.set()
    joined(read)

    committed = {a: set(Event.objects.filter(account_id=a).values_list("id", flat=True)) for a in accounts}
    assert sum(map(len, committed.values())) > 100
    for account_id in accounts:
        ids = [event_id for event_id, *_ in seen[account_id]]
        assert len(ids) == len(set(ids)), "an event was served twice"
        assert set(ids) == committed[account_id], "an event was skipped"
        assert [account_seq for _, _, account_seq, _ in seen[account_id]] == list(range(1, len(ids) + 1))
        seqs = [seq for _, seq, _, _ in seen[account_id]]
        assert seqs == sorted(seqs)
        assert not any(payload["rolled_back"] for *_, payload in seen[account_id])
    # The race happened: some events were numbered in another order than their ids.
    by_seq = sorted((seq, event_id) for a in accounts for event_id, seq, *_ in seen[a])
    assert [event_id for _, event_id in by_seq] != sorted(event_id for _, event_id in by_seq)
