"""The webhook dispatcher's one read per wake-up (``events.webhooks.dispatch_plan``, ``events.sql.WEBHOOKS_DELIVERABLE``)
chooses what the ORM's two queries choose (``endpoints_due``, ``next_retry_at``), over endpoints in every state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from events import webhooks
from events.models import WebhookEndpoint
from events.services import event_record, head, sequence_all
from events.types import BOOK_CHANGED, EventType
from tests.api import api_client_for

pytestmark = pytest.mark.django_db


def endpoint(account, **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(account=account, url="https://hooks.example.com/x", secret="s", **fields)


def record(type_: str, account_id: int | None) -> None:
    with transaction.atomic():
        event_record(type=type_, account_id=account_id, data={})


def test_one_read_plans_what_the_two_queries_plan():
    now = timezone.now()
    busy, quiet, public_only, stream_only = (api_client_for().account for _ in range(4))
    record(EventType.ORDER_ACCEPTED, busy.pk)
    sequence_all()
    before_public = head()
    record(EventType.MARKET_STATUS_CHANGED, None)
    sequence_all()
    before_stream_only = head()
    record(BOOK_CHANGED, None)
    sequence_all()
    planned = {
        "never failed": endpoint(busy),
        "retry due": endpoint(busy, next_attempt_at=now - timedelta(seconds=5)),
        "retry later": endpoint(busy, next_attempt_at=now + timedelta(seconds=30)),
        "retry sooner": endpoint(busy, next_attempt_at=now + timedelta(seconds=10)),
        "disabled": endpoint(busy, enabled=False),
        "deleted": endpoint(busy, deleted_at=now),
        "leased": endpoint(busy, lease_until=now + timedelta(seconds=60)),
        "lease lapsed": endpoint(busy, lease_until=now - timedelta(seconds=1)),
        "caught up": endpoint(quiet, position=head()),
        "public event to deliver": endpoint(public_only, position=before_public),
        "only a stream-only event left": endpoint(stream_only, position=before_stream_only),
    }
    due, retry_at = webhooks.dispatch_plan()
    assert (due, retry_at) == (webhooks.endpoints_due(), webhooks.next_retry_at())
    names = {e.pk: name for name, e in planned.items()}
    assert [names[pk] for pk in due] == ["retry due", "never failed", "lease lapsed", "public event to deliver"]
    assert retry_at == planned["retry due"].next_attempt_at


def test_nothing_to_deliver_plans_nothing():
    endpoint(api_client_for().account, position=head())
    assert webhooks.dispatch_plan() == ([], None)


def test_the_plan_keeps_the_limit():
    account = api_client_for().account
    record(EventType.ORDER_ACCEPTED, account.pk)
    sequence_all()
    for _ in range(3):
        endpoint(account)
    due, _ = webhooks.dispatch_plan(limit=2)
    assert due == webhooks.endpoints_due(limit=2)
    assert len(due) == 2
