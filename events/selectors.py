"""Reads of the event log: an account's events after a cursor, the envelope every channel sends, backlogs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max, Q, QuerySet

from core.representation import iso
from events.models import Consumer, Event, Sequenced, WebhookEndpoint
from events.services import SEQUENCER, head
from events.types import STREAM_ONLY


def envelope(sequenced: Sequenced) -> dict:
    """An event as every channel delivers it (pull API, webhooks, RabbitMQ): ``id`` is stable (de-duplicate by
    it), ``seq`` the global delivery order, ``account_seq`` gap-free per account, ``market_seq`` per market;
    ``data`` is the resource as the REST API shows it."""
    event = sequenced.event
    return {
        "id": event.pk,
        "seq": sequenced.seq,
        "account_seq": sequenced.account_seq,
        "market_seq": sequenced.market_seq,
        "type": event.type,
        "account": event.account_id,
        "created_at": iso(event.created_at),
        "data": event.payload if sequenced.payload is None else sequenced.payload,
    }


@dataclass(frozen=True)
class Page:
    events: list[Sequenced]
    cursor: int  # give it as ``after`` to get what follows
    has_more: bool


def sequenced(*, after: int, types: list[str] | None = None) -> QuerySet[Sequenced]:
    """What the pull API, webhooks and RabbitMQ deliver: every numbered event but the streamer's own."""
    rows = Sequenced.objects.select_related("event").filter(seq__gt=after).order_by("seq")
    return rows.filter(type__in=types) if types else rows.exclude(type__in=STREAM_ONLY)


def stream_page(*, after: int, limit: int) -> list[Sequenced]:
    """The WebSocket streamer's read: every numbered event after ``after``, its own types included."""
    return list(Sequenced.objects.select_related("event").filter(seq__gt=after).order_by("seq")[:limit])


def account_events(*, account_id: int, after: int, limit: int, types: list[str] | None = None) -> Page:
    """The account's events and the public ones, ascending by ``seq``, at most ``limit``.

    The cursor only moves over what this read could see: the head is read first, and the events after (a later
    snapshot sees at least as much), so when the page is not full everything up to the head was considered
    and a client that filters by type does not rescan what it skipped."""
    top = head()
    rows = sequenced(after=after, types=types)
    own = list(rows.filter(account_id=account_id)[: limit + 1])
    public = list(rows.filter(account_id__isnull=True)[: limit + 1])
    merged = sorted(own + public, key=lambda q: q.seq)[: limit + 1]
    has_more = len(merged) > limit
    merged = merged[:limit]
    if has_more:
        cursor = merged[-1].seq
    else:
        cursor = max(after, top, merged[-1].seq if merged else 0)
    return Page(merged, cursor, has_more)


# --- the console ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lag:
    name: str
    position: int
    behind: int  # events numbered but not yet delivered
    oldest_pending_at: datetime | None  # when the oldest of them was written
    last_error: str
    updated_at: datetime | None


@dataclass(frozen=True)
class DeliveryStatus:
    written: int  # the last event id
    numbered: int  # the head seq
    waiting_for_number: int  # written after the last numbered event (late commits aside)
    oldest_waiting_at: datetime | None
    consumers: list[Lag]
    failing_endpoints: list[WebhookEndpoint]
    webhook_backlog: int  # enabled endpoints with something to deliver


def delivery_status() -> DeliveryStatus:
    """The console's view of the log: what is waiting for the sequencer, each consumer's backlog and lag, and
    webhook endpoints that are failing or were disabled. Cheap queries only (index ranges, no table scans)."""
    top = head()
    last_numbered = Sequenced.objects.aggregate(e=Max("event_id"))["e"] or 0
    waiting = Event.objects.filter(pk__gt=last_numbered)
    consumers = []
    for consumer in Consumer.objects.exclude(name=SEQUENCER).order_by("name"):
        pending = Sequenced.objects.filter(seq=consumer.position + 1).select_related("event").first()
        consumers.append(Lag(consumer.name, consumer.position, max(top - consumer.position, 0),
                             pending.event.created_at if pending else None, consumer.last_error, consumer.updated_at))
    from events.webhooks import endpoints_due

    return DeliveryStatus(
        written=Event.objects.aggregate(n=Max("id"))["n"] or 0,
        numbered=top,
        waiting_for_number=waiting.count(),
        oldest_waiting_at=waiting.order_by("id").values_list("created_at", flat=True).first(),
        consumers=consumers,
        failing_endpoints=list(endpoints_failing()[:20]),
        webhook_backlog=len(endpoints_due(limit=1000)),
    )


def endpoints_failing() -> QuerySet[WebhookEndpoint]:
    """Endpoints disabled after failing, or failing now."""
    return (WebhookEndpoint.objects.filter(deleted_at__isnull=True)
            .filter(Q(enabled=False) | Q(failing_since__isnull=False))
            .select_related("account").order_by("enabled", "failing_since"))
