"""Writes of the event log: recording events (called by every domain's services, inside their transaction) and
the sequencer that numbers committed events (README "Events: the cursor guarantee").

Recording is one INSERT per call however many events (the matcher records a whole batch at once). The payload
is the resource as the REST API shows it, rendered by the domain's ``representations`` module.

The sequencer runs in one place at a time (an advisory lock; any process may run a pass) after the events'
transactions committed: it finds every committed event it has not numbered (``events.sql.unsequenced``) and
gives it the next global ``seq`` and the next sequence of its account and of its market, all gap-free. Readers
page by these numbers, so a reader never skips an event that committed after one it has already seen. There is
no counter row in the writers' transactions: writers only insert.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.db import rows_insert
from events import rendering, sql, wakeups
from events.models import Consumer, Sequenced
from events.types import STREAM_ONLY

logger = logging.getLogger(__name__)

SEQUENCER = "sequencer"


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    account_id: int | None
    data: dict
    market_id: int | None = None
    created_at: datetime | None = None


def events_record(events: Sequence[NewEvent]) -> None:
    """Append events to the log, in this order, in the caller's transaction (one statement)."""
    if not events:
        return
    _require_transaction()
    sql.events_insert(_rows(events))
    wakeups.written_on_commit()


def events_record_statement(events: Sequence[NewEvent], *, when: str | None = None) -> tuple[str, list]:
    """``events_record`` as a statement (text, parameters) that the caller sends with its other writes, on
    PostgreSQL (``trading.sql.placement_write``); the sequencer is woken after the caller's commit. ``when``: an
    SQL condition; the events are inserted only if it holds."""
    _require_transaction()
    wakeups.written_on_commit()
    return sql.events_insert_statement(_rows(events), when=when)


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events_record must run inside the transaction of the change it records")


def _rows(events: Sequence[NewEvent]) -> list[tuple]:
    now = timezone.now()
    return [(e.type, e.account_id, e.market_id, e.created_at or now, e.data) for e in events]


def event_record(*, type: str, account_id: int | None, data: dict, market_id: int | None = None) -> None:
    events_record([NewEvent(type, account_id, data, market_id)])


# --- the sequencer ----------------------------------------------------------------------------------------


@dataclass
class SequencePass:
    locked: bool = True
    sequenced: int = 0
    head: int = 0
    more: bool = False
    account_ids: set[int] = field(default_factory=set)
    public: bool = False


SEQUENCED_FIELDS = ["seq", "event", "type", "account_id", "account_seq", "market_id", "market_seq", "sequenced_at",
                    "payload"]


def sequence_pass(*, limit: int | None = None) -> SequencePass:
    """Number the committed events not numbered yet (at most ``limit``), in one transaction. Returns at once
    with ``locked=False`` if another pass is running. ``more``: call again, events remain."""
    limit = limit or settings.EVENTS_SEQUENCE_BATCH
    try:
        with transaction.atomic():
            result = _sequence_pass(limit)
    except IntegrityError:
        # Only without the advisory lock (SQLite): a concurrent pass numbered the same events first.
        logger.info("a concurrent sequencer pass won; trying again later")
        return SequencePass(locked=False)
    if result.sequenced:
        wakeups.sequenced(result.head, result.account_ids, result.public)
    return result


def _sequence_pass(limit: int) -> SequencePass:
    if not sql.sequencer_lock():
        return SequencePass(locked=False)
    consumer, _ = Consumer.objects.select_for_update().get_or_create(name=SEQUENCER)
    snapshot, rows = sql.unsequenced(consumer.state, limit)
    more = len(rows) == limit
    if not rows:
        if snapshot != consumer.state:
            consumer.state = snapshot
            consumer.save(update_fields=["state", "updated_at"])
        return SequencePass(head=consumer.position)
    account_last = sql.last_seqs("account", [a for _, _, a, _, _ in rows if a is not None])
    market_last = sql.last_seqs("market", [m for _, _, _, m, _ in rows if m is not None])
    payloads = rendering.rendered({event_id: orjson.loads(text) for event_id, *_, text in rows if text is not None})
    now, seq, numbered = timezone.now(), consumer.position, []
    for event_id, type_, account_id, market_id, _ in rows:
        seq += 1
        account_seq = market_seq = None
        if account_id is not None:
            account_seq = account_last[account_id] = account_last[account_id] + 1
        if market_id is not None:
            market_seq = market_last[market_id] = market_last[market_id] + 1
        payload = payloads.get(event_id)
        numbered.append((seq, event_id, type_, account_id, account_seq, market_id, market_seq, now,
                         None if payload is None else orjson.dumps(payload).decode()))
    rows_insert(Sequenced, SEQUENCED_FIELDS, numbered)
    consumer.position = seq
    if not more:  # a cut-short pass keeps the old snapshot: the rest are found again (numbered ones are not)
        consumer.state = snapshot
    consumer.save(update_fields=["position", "state", "updated_at"])
    return SequencePass(sequenced=len(rows), head=seq, more=more, account_ids=set(account_last),
                        public=any(a is None and t not in STREAM_ONLY for _, t, a, _, _ in rows))


def sequence_all() -> int:
    """Run passes until nothing is left to number (or another process is numbering). Returns how many."""
    total = 0
    while True:
        result = sequence_pass()
        total += result.sequenced
        if not result.more:
            return total


def head() -> int:
    """The last ``seq`` given (committed)."""
    return Consumer.objects.filter(name=SEQUENCER).values_list("position", flat=True).first() or 0
