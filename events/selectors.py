"""Reads of the event log: an account's events after a cursor, the envelope every channel sends, backlogs."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Max, QuerySet

from core.representation import iso
from events.models import Consumer, Sequenced, WebhookEndpoint
from events.services import SEQUENCER, head


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
        "data": event.payload,
    }


@dataclass(frozen=True)
class Page:
    events: list[Sequenced]
    cursor: int  # give it as ``after`` to get what follows
    has_more: bool


def sequenced(*, after: int, types: list[str] | None = None) -> QuerySet[Sequenced]:
    rows = Sequenced.objects.select_related("event").filter(seq__gt=after).order_by("seq")
    return rows.filter(type__in=types) if types else rows


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
class Backlog:
    name: str
    position: int
    behind: int
    last_error: str
    updated_at: object


def backlogs() -> tuple[int, int, list[Backlog]]:
    """(events written, events numbered, each consumer's backlog in events behind the head)."""
    from events.models import Event

    written = Event.objects.aggregate(n=Max("id"))["n"] or 0
    top = head()
    consumers = [
        Backlog(c.name, c.position, max(top - c.position, 0), c.last_error, c.updated_at)
        for c in Consumer.objects.order_by("name")
    ]
    return written, top, consumers


def unsequenced_count() -> int:
    from events.models import Event

    return Event.objects.filter(sequenced__isnull=True).count()


def sequencer_position() -> int:
    return Consumer.objects.filter(name=SEQUENCER).values_list("position", flat=True).first() or 0


def endpoints_failing() -> QuerySet[WebhookEndpoint]:
    """Endpoints disabled after failing, or failing now."""
    return WebhookEndpoint.objects.filter(deleted_at__isnull=True).exclude(
        enabled=True, failing_since__isnull=True
    ).select_related("account").order_by("-failing_since")
