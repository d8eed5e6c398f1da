"""The events panel of the console: backlogs, the relay's lag, failing webhook endpoints, and "redeliver" through
the webhook services (recorded attempts, audit rows), as operations staff see them."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import services as accounts
from audit.models import AuditLog
from events import webhooks
from events.models import Consumer, WebhookAttempt, WebhookEndpoint
from events.services import sequence_all
from tests.admin.test_console_views import logged_in, messages_of, run_action
from tests.events.test_webhooks import Receiver
from tests.factories import ClientAccountFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def allow_loopback(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOK_TIMEOUT_SECONDS = Decimal("2")


def test_the_dashboard_shows_backlogs_lag_and_failing_endpoints(client, operator, allow_loopback):
    account = ClientAccountFactory(legal_name="Hooked Ltd")
    endpoint, _ = webhooks.endpoint_create(account=account, url="http://127.0.0.1:18412/h", acting_user=None)
    accounts.deposit_request(account=account, asset="USD", amount="5.00", acting_user=None, bank_reference="r")
    sequence_all()
    accounts.deposit_request(account=account, asset="USD", amount="6.00", acting_user=None, bank_reference="s")
    Consumer.objects.create(name="amqp", position=0, last_error="ConnectionRefusedError: broker down")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failures=7, failing_since=timezone.now() - timedelta(hours=3))

    page = logged_in(client, operator).get("/admin/").content.decode()
    assert 'id="events-panel"' in page
    assert "waiting for a number: <span class=\"console-bad\">1</span>" in page
    assert "<td>amqp</td>" in page and "broker down" in page
    assert 'id="failing-endpoints"' in page and "http://127.0.0.1:18412/h" in page and "retrying" in page
    for path in ("/admin/events/webhookendpoint/", f"/admin/events/webhookendpoint/{endpoint.pk}/change/",
                 "/admin/events/webhookattempt/", "/admin/events/event/", "/admin/events/consumer/"):
        assert client.get(path).status_code == 200, path


def test_redeliver_reenables_an_endpoint_and_resends_an_event_audited(client, operator, compliance_officer,
                                                                      allow_loopback):
    receiver = Receiver([200, 200])
    try:
        account = ClientAccountFactory()
        endpoint, secret = webhooks.endpoint_create(account=account, url=receiver.url, acting_user=None)
        accounts.deposit_request(account=account, asset="USD", amount="5.00", acting_user=None, bank_reference="r")
        sequence_all()
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason="failing since ...")
        assert webhooks.endpoint_deliver(endpoint.pk) == 0  # disabled: nothing goes out

        refused = run_action(logged_in(client, compliance_officer), "events_webhookendpoint", "redeliver", [endpoint])
        assert not WebhookEndpoint.objects.get(pk=endpoint.pk).enabled  # compliance may look, not act
        assert refused.status_code in (200, 403)

        done = run_action(logged_in(client, operator), "events_webhookendpoint", "redeliver", [endpoint])
        assert any("Delivering again: 1 of 1" in m for m in messages_of(done))
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled
        assert webhooks.endpoint_deliver(endpoint.pk) == 1
        delivered = WebhookAttempt.objects.get(endpoint=endpoint)

        again = run_action(client, "events_webhookattempt", "redeliver_events", [delivered])
        assert any("Redelivered: 1 of 1" in m for m in messages_of(again))
    finally:
        receiver.close()
    assert [json.loads(body)["id"] for _, _, body in receiver.requests] == [delivered.event_id] * 2
    assert list(WebhookAttempt.objects.filter(endpoint=endpoint).order_by("id").values_list("kind", flat=True)) == [
        "delivery", "redelivery"]
    actions = list(AuditLog.objects.filter(object_id=str(endpoint.pk), action__startswith="webhook.")
                   .order_by("id").values_list("action", "actor_label"))
    assert actions == [("webhook.create", "system"), ("webhook.enable", "operator"),
                       ("webhook.redeliver", "operator")]
