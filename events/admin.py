"""The event log and webhook deliveries in the operations console: read-only records, and "redeliver" through
``events.webhooks`` (which records every attempt and writes the audit log)."""

from __future__ import annotations

from django.contrib import admin

from core.admin_kit import ReadOnlyAdminMixin, perm_checker, service_action
from events import webhooks
from events.models import Consumer, Event, WebhookAttempt, WebhookEndpoint

REDELIVER = "events.redeliver_webhookendpoint"


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "type", "account_id", "market_id", "created_at", "seq"]
    list_filter = ["type"]
    search_fields = ["id__exact", "account_id__exact"]
    show_full_result_count = False
    list_select_related = ["sequenced"]

    @admin.display(description="seq")
    def seq(self, event):
        sequenced = getattr(event, "sequenced", None)
        return sequenced.seq if sequenced else "not numbered yet"


@admin.register(Consumer)
class ConsumerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "position", "last_error", "updated_at"]


class AttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WebhookAttempt
    fields = ["created_at", "kind", "event", "seq", "number", "status_code", "latency_ms", "error", "succeeded",
              "next_attempt_at"]
    readonly_fields = fields
    ordering = ["-id"]
    extra = 0
    max_num = 0
    show_change_link = True

    def get_queryset(self, request):
        recent = WebhookAttempt.objects.order_by("-id").values_list("id", flat=True)[:500]
        return super().get_queryset(request).filter(id__in=list(recent))


def _enable(endpoint, acting_user):
    return webhooks.endpoint_enable(endpoint=endpoint, acting_user=acting_user)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "account", "url", "enabled", "failures", "failing_since", "next_attempt_at", "position",
                    "disabled_reason"]
    list_filter = ["enabled", ("failing_since", admin.EmptyFieldListFilter)]
    search_fields = ["url", "account__legal_name", "account__id__exact"]
    list_select_related = ["account"]
    exclude = ["secret"]
    inlines = [AttemptInline]
    actions = [
        service_action(name="redeliver", description="Re-enable and redeliver from the event each stopped at",
                       permission="redeliver", call=_enable, done="Delivering again"),
    ]
    has_redeliver_permission = perm_checker(REDELIVER)


def _redeliver(attempt, acting_user):
    if attempt.event_id is None:
        return webhooks.endpoint_ping(endpoint=attempt.endpoint, acting_user=acting_user)
    return webhooks.event_redeliver(endpoint=attempt.endpoint, event=attempt.event, acting_user=acting_user)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "endpoint", "kind", "event", "seq", "number", "status_code", "latency_ms", "error",
                    "succeeded", "created_at"]
    list_filter = ["succeeded", "kind"]
    search_fields = ["endpoint__id__exact", "event__id__exact", "endpoint__account__id__exact"]
    list_select_related = ["endpoint"]
    show_full_result_count = False
    actions = [
        service_action(name="redeliver_events", description="Redeliver the selected attempts' events now",
                       permission="redeliver", call=_redeliver, done="Redelivered"),
    ]
    has_redeliver_permission = perm_checker(REDELIVER)
