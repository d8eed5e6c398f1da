"""Webhooks: clients' HTTP endpoints, and delivery of their events in order, signed, retried, recorded.

Delivery (README "Events: webhooks"): one event per POST, in ``seq`` order per endpoint; the next event waits
until this one is delivered (2xx). A failure is retried after ``backoff_seconds`` (exponential, with jitter);
an endpoint that has been failing on the same event for ``WEBHOOK_RETRY_WINDOW_SECONDS`` (24 h) is disabled and
operations are alerted (an ERROR log line, an audit row, the console's failing-endpoints panel). Every attempt is
an append-only ``WebhookAttempt``: status, latency, error.

Signature: headers ``Webhook-Id`` (the event id: de-duplicate by it), ``Webhook-Timestamp`` (Unix seconds) and
``Webhook-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>" with the endpoint's secret>``.

At least once, bounded and idempotent: a dispatcher claims an endpoint with a lease (a column, so any number
of relay processes may run), delivers at most ``max_events``, and advances the endpoint's position only after
recording the attempt; a dispatcher that dies mid-delivery leaves the lease to expire and the event to be sent
again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
import time
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone

from audit.services import audit_record
from core.exceptions import Code as CoreCode
from events import http, sql
from events.errors import EventsError, TooManyWebhooks, WebhookDeleted
from events.models import AttemptKind, Event, Sequenced, WebhookAttempt, WebhookEndpoint
from events.selectors import account_events, envelope
from events.services import head
from events.types import PING, STREAM_ONLY, EventType

logger = logging.getLogger(__name__)

MAX_ENDPOINTS_PER_ACCOUNT = 10
SIGNATURE_VERSION = "v1"
USER_AGENT = "brokerage-webhooks/1"
LEASE_MARGIN_SECONDS = 30


# --- the signature --------------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, event_id, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Webhook-Id": str(event_id),
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": f"{SIGNATURE_VERSION}={signature(secret, timestamp, body)}",
    }


def backoff_seconds(failures: int) -> float:
    """Wait after the ``failures``-th failed attempt: base x 2^(failures-1), at most the maximum, then a random
    50-100% of that ("equal jitter": retries of many endpoints spread out, none comes early by more than half)."""
    base, cap = float(settings.WEBHOOK_RETRY_BASE_SECONDS), float(settings.WEBHOOK_RETRY_MAX_SECONDS)
    delay = min(cap, base * 2 ** max(failures - 1, 0))
    return delay * random.uniform(0.5, 1.0)


# --- endpoints (client API and console) ---------------------------------------------------------------------


def _types_checked(event_types) -> list[str]:
    known = {t.value for t in EventType}
    unknown = [t for t in event_types or [] if t not in known]
    if unknown:
        raise EventsError(f"Unknown event types: {', '.join(sorted(map(str, unknown)))}.", code=CoreCode.INVALID_CHOICE,
                          field="event_types")
    return sorted(set(event_types or []))


@transaction.atomic
def endpoint_create(*, account, url: str, event_types=(), description: str = "",
                    acting_user) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown once). It receives the events numbered
    from now on (the pull API has the history)."""
    _, host, port, _ = http.url_check(url)
    http.address_for(host, port)
    types = _types_checked(event_types)
    if WebhookEndpoint.objects.filter(account=account, deleted_at__isnull=True).count() >= MAX_ENDPOINTS_PER_ACCOUNT:
        raise TooManyWebhooks(f"An account has at most {MAX_ENDPOINTS_PER_ACCOUNT} webhook endpoints.")
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint.objects.create(
        account=account, url=url, event_types=types, secret=secret, description=description[:200],
        position=head(), created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    audit_record(acting_user=acting_user, action="webhook.create", obj=endpoint, account=account,
                 after={"url": url, "event_types": types, "description": endpoint.description})
    return endpoint, secret


def _locked(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint.objects.select_for_update(no_key=True).get(pk=endpoint.pk)


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint, acting_user) -> WebhookEndpoint:
    """Stop delivering for good (its attempts stay on record). Deleting again changes nothing."""
    endpoint = _locked(endpoint)
    if endpoint.deleted_at is not None:
        return endpoint
    endpoint.deleted_at, endpoint.enabled, endpoint.disabled_reason = timezone.now(), False, "deleted"
    endpoint.save(update_fields=["deleted_at", "enabled", "disabled_reason", "updated_at"])
    audit_record(acting_user=acting_user, action="webhook.delete", obj=endpoint, account=endpoint.account,
                 before={"enabled": True}, after={"deleted": True})
    return endpoint


@transaction.atomic
def endpoint_enable(*, endpoint: WebhookEndpoint, acting_user) -> WebhookEndpoint:
    """Deliver again, from the event it stopped at (a disabled endpoint's backlog is kept): the console's
    "redeliver" for an endpoint disabled after 24 h of failures. Enabling an enabled endpoint retries now."""
    endpoint = _locked(endpoint)
    if endpoint.deleted_at is not None:
        raise WebhookDeleted("This webhook endpoint was deleted.")
    before = {"enabled": endpoint.enabled, "failures": endpoint.failures}
    endpoint.enabled, endpoint.disabled_reason = True, ""
    endpoint.failures, endpoint.failing_since, endpoint.next_attempt_at = 0, None, None
    endpoint.save(update_fields=["enabled", "disabled_reason", "failures", "failing_since", "next_attempt_at",
                                 "updated_at"])
    audit_record(acting_user=acting_user, action="webhook.enable", obj=endpoint, account=endpoint.account,
                 before=before, after={"enabled": True, "position": endpoint.position})
    return endpoint


def endpoint_ping(*, endpoint: WebhookEndpoint, acting_user) -> WebhookAttempt:
    """Send a signed ``ping`` now and record the attempt (bounded by the webhook timeouts)."""
    if endpoint.deleted_at is not None:
        raise WebhookDeleted("This webhook endpoint was deleted.")
    body = orjson.dumps({"id": None, "type": PING, "account": endpoint.account_id,
                         "created_at": timezone.now().isoformat().replace("+00:00", "Z"), "data": {}})
    response = http.post(endpoint.url, body, signed_headers(endpoint.secret, "ping", body))
    return _attempt_add(endpoint, None, None, response, AttemptKind.PING, 1)


def event_redeliver(*, endpoint: WebhookEndpoint, event: Event, acting_user) -> WebhookAttempt:
    """Send one event again now, out of the ordered stream (the console's "redeliver"); recorded and audited.
    The endpoint's position does not move: a client de-duplicates by ``Webhook-Id``."""
    sequenced = Sequenced.objects.select_related("event").get(event=event)
    if sequenced.account_id not in (None, endpoint.account_id):
        raise EventsError("This event is not one of the endpoint's account.", code=CoreCode.INVALID, field="event")
    body = orjson.dumps(envelope(sequenced))
    response = http.post(endpoint.url, body, signed_headers(endpoint.secret, event.pk, body))
    with transaction.atomic():
        attempt = _attempt_add(endpoint, event, sequenced.seq, response, AttemptKind.REDELIVERY, 1)
        audit_record(acting_user=acting_user, action="webhook.redeliver", obj=endpoint, account=endpoint.account,
                     after={"event": event.pk, "status_code": response.status, "error": response.error})
    return attempt


def _attempt_add(endpoint, event, seq, response: http.Response, kind: str, number: int, next_at=None):
    return WebhookAttempt.objects.create(
        endpoint=endpoint, event=event, seq=seq, kind=kind, number=number, url=endpoint.url,
        status_code=response.status, latency_ms=response.latency_ms,
        error=response.error or ("" if response.ok else f"HTTP {response.status}"), succeeded=response.ok,
        next_attempt_at=next_at, created_at=timezone.now(),
    )


# --- the dispatcher -----------------------------------------------------------------------------------------


def _deliverable(now):
    has_own = Sequenced.objects.filter(account_id=OuterRef("account_id"), seq__gt=OuterRef("position"))
    has_public = Sequenced.objects.filter(account_id__isnull=True, seq__gt=OuterRef("position")).exclude(
        type__in=STREAM_ONLY)
    return (WebhookEndpoint.objects.filter(enabled=True, deleted_at__isnull=True)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .filter(Exists(has_own) | Exists(has_public)))


def endpoints_due(*, limit: int = 100) -> list[int]:
    """Enabled endpoints with events to deliver whose next attempt is due and that no dispatcher holds."""
    now = timezone.now()
    due = _deliverable(now).filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    return list(due.order_by("next_attempt_at", "id").values_list("pk", flat=True)[:limit])


def next_retry_at():
    """When the earliest scheduled retry is due (None: none is scheduled)."""
    return _deliverable(timezone.now()).filter(next_attempt_at__isnull=False).aggregate(t=Min("next_attempt_at"))["t"]


def dispatch_plan(*, limit: int = 100) -> tuple[list[int], datetime | None]:
    """The dispatcher's next step from one read: ``endpoints_due`` and ``next_retry_at`` together."""
    if not sql.is_postgresql():
        return endpoints_due(limit=limit), next_retry_at()
    now = timezone.now()
    rows = sql.webhooks_deliverable(now, STREAM_ONLY)
    due = [endpoint_id for endpoint_id, at in rows if at is None or at <= now][:limit]
    return due, min((at for _, at in rows if at is not None), default=None)


def endpoint_deliver(endpoint_id: int, *, max_events: int = 100) -> int:
    """Deliver the endpoint's next events in order, stopping at the first failure. Returns how many were
    delivered. Does nothing if the endpoint is not due or another dispatcher holds it."""
    lease = float(settings.WEBHOOK_TIMEOUT_SECONDS) + LEASE_MARGIN_SECONDS
    now = timezone.now()
    claimed = (
        WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True, deleted_at__isnull=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(lease_until=now + timedelta(seconds=lease))
    )
    if not claimed:
        return 0
    delivered = 0
    try:
        endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
        while delivered < max_events:
            page = account_events(account_id=endpoint.account_id, after=endpoint.position, limit=1,
                                  types=endpoint.event_types or None)
            if not page.events:
                if page.cursor > endpoint.position:  # nothing of its types up to the head: skip ahead
                    WebhookEndpoint.objects.filter(pk=endpoint_id, position__lt=page.cursor).update(
                        position=page.cursor)
                break
            sequenced = page.events[0]
            body = orjson.dumps(envelope(sequenced))
            response = http.post(endpoint.url, body, signed_headers(endpoint.secret, sequenced.event_id, body))
            endpoint = _outcome_record(endpoint_id, sequenced, response, lease)
            if not response.ok or not endpoint.enabled:
                break
            delivered += 1
    finally:
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(lease_until=None)
    return delivered


@transaction.atomic
def _outcome_record(endpoint_id: int, sequenced: Sequenced, response: http.Response,
                    lease: float) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).get(pk=endpoint_id)
    now = timezone.now()
    number = endpoint.failures + 1
    if response.ok:
        endpoint.position = max(endpoint.position, sequenced.seq)
        endpoint.failures, endpoint.failing_since, endpoint.next_attempt_at = 0, None, None
        _attempt_add(endpoint, sequenced.event, sequenced.seq, response, AttemptKind.DELIVERY, number)
    else:
        endpoint.failures = number
        endpoint.failing_since = endpoint.failing_since or now
        window = timedelta(seconds=float(settings.WEBHOOK_RETRY_WINDOW_SECONDS))
        if now - endpoint.failing_since >= window:
            endpoint.enabled, endpoint.next_attempt_at = False, None
            endpoint.disabled_reason = f"failing since {endpoint.failing_since:%Y-%m-%d %H:%M:%S} UTC"
            _attempt_add(endpoint, sequenced.event, sequenced.seq, response, AttemptKind.DELIVERY, number)
            _disabled_alert(endpoint, sequenced, response)
        else:
            endpoint.next_attempt_at = now + timedelta(seconds=backoff_seconds(number))
            _attempt_add(endpoint, sequenced.event, sequenced.seq, response, AttemptKind.DELIVERY, number,
                         endpoint.next_attempt_at)
    endpoint.lease_until = now + timedelta(seconds=lease)
    endpoint.save(update_fields=["position", "failures", "failing_since", "next_attempt_at", "enabled",
                                 "disabled_reason", "lease_until", "updated_at"])
    return endpoint


def _disabled_alert(endpoint: WebhookEndpoint, sequenced: Sequenced, response: http.Response) -> None:
    logger.error("ALERT webhook endpoint %s of account %s disabled: failing since %s on event %s (last: %s)",
                 endpoint.pk, endpoint.account_id, endpoint.failing_since, sequenced.event_id,
                 response.error or f"HTTP {response.status}")
    audit_record(acting_user=None, action="webhook.disabled", obj=endpoint, account=endpoint.account,
                 before={"enabled": True},
                 after={"enabled": False, "reason": endpoint.disabled_reason, "event": sequenced.event_id,
                        "failures": endpoint.failures})
