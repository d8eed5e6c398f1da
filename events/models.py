"""The event log (a transactional outbox), its delivery sequence, and the consumers that read it.

- ``Event``: one row per state change a client or downstream system must learn about, written by the domain
  services in the transaction of the change. Append-only (PostgreSQL triggers refuse UPDATE and DELETE). On
  PostgreSQL the table also has a ``txid xid8`` column, ``DEFAULT pg_current_xact_id()``, that the ORM does not
  know about (migration 0002): the writing transaction, which the sequencer uses to find rows it has not
  numbered yet without trusting ids to be in commit order.
- ``Sequenced``: the number the sequencer gave an event after it committed: ``seq`` (global, gap-free), the
  per-account and per-market sequences, and, for an event written as a draft (the matcher's), its rendered
  payload (``events.rendering``). Append-only too. Every reader (pull API, webhooks, RabbitMQ relay,
  streams) pages by these numbers, never by ``Event.id``.
- ``Consumer``: how far a named reader got (the sequencer's snapshot, the RabbitMQ relay's published-through).
- ``WebhookEndpoint`` / ``WebhookAttempt``: clients' HTTP endpoints and every delivery attempt.

Account and market columns are plain integers, not foreign keys: the log is written on the matcher's hot path
and sits below the apps it describes (README "Architecture").
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import AppendOnlyModel
from events.fields import JSONTextField


class Event(AppendOnlyModel):
    type = models.CharField(max_length=40)
    account_id = models.BigIntegerField(null=True, blank=True, help_text="Empty for public events.")
    market_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    payload = JSONTextField(help_text="The resource as the REST API shows it (JSON).")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"event #{self.pk} {self.type}"


class Sequenced(AppendOnlyModel):
    """An event's place in the delivery order, given once by the single sequencer after the event committed."""

    seq = models.BigIntegerField(primary_key=True)
    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="sequenced")
    type = models.CharField(max_length=40)
    account_id = models.BigIntegerField(null=True, blank=True)
    account_seq = models.BigIntegerField(null=True, blank=True)
    market_id = models.BigIntegerField(null=True, blank=True)
    market_seq = models.BigIntegerField(null=True, blank=True)
    sequenced_at = models.DateTimeField()
    payload = JSONTextField(null=True, blank=True,
                            help_text="The event's payload rendered from its draft (events.rendering); else empty.")

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(fields=["account_id", "account_seq"], name="sequenced_account_seq_unique"),
            models.UniqueConstraint(fields=["market_id", "market_seq"], name="sequenced_market_seq_unique"),
        ]
        indexes = [
            models.Index(fields=["account_id", "seq"], name="sequenced_account"),
            models.Index(fields=["seq"], name="sequenced_public", condition=Q(account_id__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.type}"


class Consumer(models.Model):
    """A named reader of the log and how far it got: ``position`` is the last ``seq`` it is done with."""

    name = models.CharField(max_length=64, primary_key=True)
    position = models.BigIntegerField(default=0)
    state = models.JSONField(default=dict, blank=True, help_text="The sequencer's last snapshot.")
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class WebhookEndpoint(models.Model):
    account = models.ForeignKey("accounts.ClientAccount", on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    event_types = models.JSONField(default=list, blank=True, help_text="Empty: every type.")
    secret = models.CharField(max_length=100, help_text="Signing secret; shown to the client once.")
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted by the client: never delivered to.")
    disabled_reason = models.CharField(max_length=200, blank=True)
    position = models.BigIntegerField(default=0, help_text="Last seq delivered or skipped.")
    failing_since = models.DateTimeField(null=True, blank=True, help_text="First failed attempt at the head event.")
    failures = models.IntegerField(default=0, help_text="Failed attempts at the head event.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A dispatcher is delivering until then.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        permissions = [("redeliver_webhookendpoint", "Can re-enable webhook endpoints and redeliver events")]

    def __str__(self) -> str:
        return f"webhook #{self.pk} {self.url}"


class AttemptKind(models.TextChoices):
    DELIVERY = "delivery", "Delivery"
    REDELIVERY = "redelivery", "Redelivery"
    PING = "ping", "Test ping"


class WebhookAttempt(AppendOnlyModel):
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="attempts")
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    seq = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=10, choices=AttemptKind.choices, default=AttemptKind.DELIVERY)
    number = models.IntegerField(default=1, help_text="1 for the first attempt at this event, then 2, 3, ...")
    url = models.URLField(max_length=500)
    status_code = models.IntegerField(null=True, blank=True)
    latency_ms = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField(default=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["endpoint", "-id"], name="webhook_attempt_recent")]

    def __str__(self) -> str:
        return f"attempt #{self.pk} {self.status_code or self.error}"
