"""Client API of the event log: ``GET /events/`` (cursor pages, long-polling) and webhook endpoints.

Long-polling (``wait=``) never holds a database connection while it waits: the view closes its connection,
subscribes to its account's Redis channel (the sequencer publishes there after each committed pass) and blocks
on that socket, up to ``wait`` seconds; then it reads again with a fresh connection. It does hold a request
thread, so each web process lets at most ``EVENTS_LONG_POLL_MAX_WAITERS`` requests wait at once; beyond that a
request with ``wait`` gets ``429 long_poll_busy`` (README "Events: pull").
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import connection
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from accounts.models import Scope
from accounts.permissions import client_account_of
from core.api.serializers import StrictSerializer
from events import selectors, wakeups, webhooks
from events.errors import LongPollBusy
from events.models import WebhookAttempt, WebhookEndpoint
from events.types import EVENT_TYPE_CHOICES

READ = {"GET": Scope.READ}
MANAGE = {"GET": Scope.READ, "POST": Scope.TRADE, "DELETE": Scope.TRADE}
MAX_WAIT_SECONDS = 30
_waiters = threading.BoundedSemaphore(max(settings.EVENTS_LONG_POLL_MAX_WAITERS, 1))


# --- the pull API -------------------------------------------------------------------------------------------


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Stable id: de-duplicate by it.")
    seq = serializers.IntegerField(help_text="Global delivery order; use the page's `cursor` to go on.")
    account_seq = serializers.IntegerField(allow_null=True, help_text="Gap-free per account (null: public).")
    market_seq = serializers.IntegerField(allow_null=True, help_text="Gap-free per market (null: no market).")
    type = serializers.ChoiceField(choices=EVENT_TYPE_CHOICES)
    account = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    data = serializers.JSONField(help_text="The resource as the REST API shows it (a fill adds `balances`).")


class EventPageSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    cursor = serializers.CharField(help_text="Pass as `after` for the next page; it only moves forward.")
    has_more = serializers.BooleanField()


class EventQuerySerializer(serializers.Serializer):
    after = serializers.RegexField(r"^(\d{1,18}|latest)$", required=False, default="0",
                                   help_text="A cursor (a `seq`), or `latest` for only what comes next.")
    type = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES),
                                 required=False, default=list)
    limit = serializers.IntegerField(min_value=1, max_value=settings.EVENTS_PAGE_MAX, required=False, default=100)
    wait = serializers.IntegerField(min_value=0, max_value=MAX_WAIT_SECONDS, required=False, default=0,
                                    help_text="Seconds to wait for an event if there is none (0-30).")


def _query(request) -> dict:
    params = {key: request.query_params.get(key) for key in ("after", "limit", "wait") if key in request.query_params}
    types = [t for raw in request.query_params.getlist("type") for t in raw.split(",") if t]
    serializer = EventQuerySerializer(data={**params, "type": types})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class EventListView(generics.GenericAPIView):
    """Your events and the public ones, oldest first, after a cursor: a page of at most `limit`. Nothing is
    ever skipped: an event that commits late still comes after your cursor (README "Events"). With
    `wait=N`, an empty page waits up to N seconds for the next event. De-duplicate by `id`; `account_seq`
    shows a gap at a glance (when not filtering by type)."""

    serializer_class = EventPageSerializer
    required_scopes = READ
    pagination_class = None
    filter_backends = []

    @extend_schema(
        parameters=[
            OpenApiParameter("after", str, description="A cursor (`seq`) or `latest`; default 0: from the start."),
            OpenApiParameter("type", str, many=True, description="Only these types (repeat, or comma-separated)."),
            OpenApiParameter("limit", int, description="Page size, 1-500 (default 100)."),
            OpenApiParameter("wait", int, description="Long-poll: seconds to wait for an event, 0-30."),
        ],
        responses={200: EventPageSerializer},
    )
    def get(self, request):
        query = _query(request)
        account_id = client_account_of(request).pk
        after = selectors.head() if query["after"] == "latest" else int(query["after"])

        def read():
            return selectors.account_events(account_id=account_id, after=after, limit=query["limit"],
                                            types=query["type"] or None)

        page = read()
        wait = min(query["wait"], settings.EVENTS_LONG_POLL_MAX_SECONDS)  # operators may cap it lower
        if not page.events and wait > 0:
            page = self._wait(account_id, read, wait)
        return Response({
            "events": [selectors.envelope(q) for q in page.events],
            "cursor": str(page.cursor),
            "has_more": page.has_more,
        })

    def _wait(self, account_id: int, read, seconds: int):
        if not _waiters.acquire(blocking=False):
            raise LongPollBusy("Too many requests are waiting for events on this server: poll again without "
                               "`wait`, or in a second.")
        try:
            deadline = time.monotonic() + seconds
            with wakeups.Waiter([wakeups.account_channel(account_id), wakeups.PUBLIC]) as waiter:
                page = read()  # subscribed first, so nothing numbered after this read goes unnoticed
                while not page.events and (left := deadline - time.monotonic()) > 0:
                    if not connection.in_atomic_block:  # (a test's transaction is kept)
                        connection.close()  # wait without a database connection
                    if waiter.wait(left):
                        page = read()
                return page
        finally:
            _waiters.release()


# --- webhooks ---------------------------------------------------------------------------------------------


class WebhookEndpointSerializer(serializers.ModelSerializer):
    failing = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "event_types", "description", "enabled", "disabled_reason", "failing",
                  "failures", "next_attempt_at", "position", "created_at", "updated_at"]
        read_only_fields = fields

    def get_failing(self, endpoint) -> bool:
        return endpoint.failing_since is not None


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret: shown in this response only.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointCreateSerializer(StrictSerializer):
    url = serializers.URLField(max_length=500)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES),
                                        required=False, default=list, help_text="Empty: every type.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class WebhookAttemptSerializer(serializers.ModelSerializer):
    event = serializers.IntegerField(source="event_id", allow_null=True)

    class Meta:
        model = WebhookAttempt
        fields = ["id", "event", "seq", "kind", "number", "url", "status_code", "latency_ms", "error", "succeeded",
                  "next_attempt_at", "created_at"]
        read_only_fields = fields


class EndpointScoped:
    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return WebhookEndpoint.objects.filter(account=client_account_of(self.request), deleted_at__isnull=True)


class WebhookListView(EndpointScoped, generics.ListAPIView):
    """Your webhook endpoints. POST registers one: the signing secret is in that response only, and it
    receives the events numbered from then on (README "Events: webhooks")."""

    serializer_class = WebhookEndpointSerializer
    required_scopes = MANAGE

    @extend_schema(request=WebhookEndpointCreateSerializer, responses={201: WebhookEndpointCreatedSerializer})
    def post(self, request):
        serializer = WebhookEndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = webhooks.endpoint_create(account=client_account_of(request), acting_user=request.user,
                                                    **serializer.validated_data)
        endpoint.secret = secret
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookDetailView(EndpointScoped, generics.RetrieveAPIView):
    """One endpoint. DELETE stops deliveries to it for good."""

    serializer_class = WebhookEndpointSerializer
    required_scopes = MANAGE

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk):
        webhooks.endpoint_delete(endpoint=self.get_object(), acting_user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookPingView(WebhookDetailView):
    """Send a signed `ping` to the endpoint now; returns the attempt (status, latency, error)."""

    http_method_names = ["post", "options"]

    @extend_schema(request=None, responses={200: WebhookAttemptSerializer})
    def post(self, request, pk):
        attempt = webhooks.endpoint_ping(endpoint=self.get_object(), acting_user=request.user)
        return Response(WebhookAttemptSerializer(attempt).data)


class WebhookEnableView(WebhookDetailView):
    """Deliver again to an endpoint disabled after failing, from the event it stopped at; on an enabled one,
    retry now."""

    http_method_names = ["post", "options"]

    @extend_schema(request=None, responses={200: WebhookEndpointSerializer})
    def post(self, request, pk):
        endpoint = webhooks.endpoint_enable(endpoint=self.get_object(), acting_user=request.user)
        return Response(WebhookEndpointSerializer(endpoint).data)


class WebhookAttemptListView(generics.ListAPIView):
    """Every delivery attempt to one of your endpoints, newest first (cursor pages)."""

    serializer_class = WebhookAttemptSerializer
    required_scopes = READ

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookAttempt.objects.none()
        endpoint = get_object_or_404(WebhookEndpoint, pk=self.kwargs["pk"], account=client_account_of(self.request))
        return WebhookAttempt.objects.filter(endpoint=endpoint)
