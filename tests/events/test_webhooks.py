"""Webhooks against a real HTTP receiver on loopback, delivered by the relay's webhook loop (real threads, real
PostgreSQL): a receiver that fails, times out, then succeeds gets every event, in order, signed; the signatures
check out under an independent implementation of the documented scheme; retries come as documented."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from accounts import services as accounts
from audit.models import AuditLog
from events import relay, webhooks
from events.models import AttemptKind, WebhookAttempt, WebhookEndpoint
from events.services import sequence_all
from tests.api import api_client_for
from tests.reliability.db import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
PORT = 18410
REPLAY_WINDOW = 300


def verify(secret: str, headers, body: bytes, now: float) -> bool:
    """The README's verification, written independently of events.webhooks."""
    timestamp = int(headers["Webhook-Timestamp"])
    if abs(now - timestamp) > REPLAY_WINDOW:
        return False
    expected = hmac.new(secret.encode("utf-8"), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    scheme, _, given = headers["Webhook-Signature"].partition("=")
    return scheme == "v1" and hmac.compare_digest(expected, given)


class Receiver:
    """An HTTP server that answers each request per a script: a status code, "hang" (answer after the client
    gave up), or "redirect"; records arrival time, headers and body of every request."""

    def __init__(self, script: list):
        self.script, self.requests = list(script), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((time.time(), dict(self.headers), body))
                action = receiver.script.pop(0) if receiver.script else 200
                if action == "hang":
                    time.sleep(2.5)
                    action = 200
                if action == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{PORT}/elsewhere")
                else:
                    self.send_response(action)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{PORT}/hooks"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast_retries(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOK_RETRY_BASE_SECONDS = Decimal("0.5")
    settings.WEBHOOK_RETRY_MAX_SECONDS = Decimal("4")
    settings.WEBHOOK_TIMEOUT_SECONDS = Decimal("1")
    settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS = Decimal("1")
    return settings


@pytest.fixture
def dispatcher():
    stop = threading.Event()
    thread = threading.Thread(target=relay.webhook_loop, args=(stop,), daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(20)
    assert not thread.is_alive()


def deposits(account, n: int, tag: str) -> list[int]:
    ids = [accounts.deposit_request(account=account, asset="USD", amount=f"{i + 1}.00", acting_user=None,
                                    bank_reference=f"{tag}-{i}").pk for i in range(n)]
    sequence_all()
    connection.close()
    return ids


def test_a_failing_then_hanging_receiver_gets_every_event_in_order_signed_with_documented_retries(
        fast_retries, dispatcher):
    receiver = Receiver([500, "hang", 200])
    try:
        client = api_client_for()
        created = client.post("/api/v1/webhooks/", {"url": receiver.url, "event_types": ["deposit.requested"]},
                              format="json")
        assert created.status_code == 201, created.json()
        secret, endpoint_id = created.json()["secret"], created.json()["id"]
        assert "secret" not in client.get(f"/api/v1/webhooks/{endpoint_id}/").json()  # shown once
        deposit_ids = deposits(client.account, 3, "w")
        wait_until(lambda: len(receiver.requests) >= 5, seconds=30, what="three deliveries after two failures")
    finally:
        receiver.close()

    bodies = [json.loads(body) for _, _, body in receiver.requests]
    # The first event three times (500, timeout, 200), then the other two, in order.
    assert [b["data"]["id"] for b in bodies] == [deposit_ids[0]] * 3 + deposit_ids[1:]
    assert [b["type"] for b in bodies] == ["deposit.requested"] * 5
    assert [b["account_seq"] for b in bodies[2:]] == sorted(b["account_seq"] for b in bodies[2:])
    for at, headers, body in receiver.requests:
        assert verify(secret, headers, body, now=at)
        assert headers["Webhook-Id"] == str(json.loads(body)["id"])
        assert not verify("whsec_other", headers, body, now=at)
        assert not verify(secret, headers, body + b" ", now=at)
        assert not verify(secret, headers, body, now=at + REPLAY_WINDOW + 5)  # a replay, too late

    attempts = list(WebhookAttempt.objects.filter(endpoint_id=endpoint_id).order_by("id"))
    assert [(a.number, a.status_code, a.succeeded) for a in attempts] == [
        (1, 500, False), (2, None, False), (3, 200, True), (1, 200, True), (1, 200, True)]
    assert attempts[1].error.startswith("timeout")
    assert 900 <= attempts[1].latency_ms <= 1600  # the whole attempt is bounded by WEBHOOK_TIMEOUT_SECONDS
    # Retries as documented: after failure n, wait base x 2^(n-1) x a random 50-100%, and not earlier.
    arrivals = [at for at, _, _ in receiver.requests]
    for failed, base in ((attempts[0], 0.5), (attempts[1], 1.0)):
        wait = (failed.next_attempt_at - failed.created_at).total_seconds()
        assert base * 0.5 - 0.01 <= wait <= base + 0.01, (failed.number, wait)
    for n in (1, 2):
        retry_due = attempts[n - 1].next_attempt_at.timestamp()
        assert retry_due - 0.05 <= arrivals[n] <= retry_due + 1.5, (n, arrivals[n] - retry_due)

    listed = client.get(f"/api/v1/webhooks/{endpoint_id}/attempts/").json()["results"]
    assert [(a["status_code"], a["succeeded"]) for a in listed][::-1] == [
        (500, False), (None, False), (200, True), (200, True), (200, True)]
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert endpoint.failures == 0 and endpoint.enabled and endpoint.failing_since is None


def test_an_endpoint_failing_past_the_window_is_disabled_alerted_and_resumes_when_enabled(
        fast_retries, dispatcher, caplog):
    fast_retries.WEBHOOK_RETRY_WINDOW_SECONDS = Decimal("1.5")
    receiver = Receiver([500] * 50)
    try:
        client = api_client_for()
        endpoint_id = client.post("/api/v1/webhooks/", {"url": receiver.url, "event_types": ["deposit.requested"]},
                                  format="json").json()["id"]
        with caplog.at_level(logging.ERROR, logger="events.webhooks"):
            deposits(client.account, 2, "x")
            wait_until(lambda: not WebhookEndpoint.objects.get(pk=endpoint_id).enabled, seconds=30, what="the endpoint disabled")
        assert any("ALERT webhook endpoint" in r.getMessage() for r in caplog.records)
        assert AuditLog.objects.filter(action="webhook.disabled", object_id=str(endpoint_id)).exists()
        stopped = len(receiver.requests)
        assert stopped >= 2 and {json.loads(b)["data"]["bank_reference"] for _, _, b in receiver.requests} == {"x-0"}
        time.sleep(1)
        assert len(receiver.requests) == stopped  # no more attempts once disabled

        receiver.script = []  # the client fixed its server
        enabled = client.post(f"/api/v1/webhooks/{endpoint_id}/enable/")
        assert enabled.status_code == 200 and enabled.json()["enabled"] is True
        wait_until(lambda: len(receiver.requests) == stopped + 2, seconds=20, what="the backlog delivered")
    finally:
        receiver.close()
    assert [json.loads(b)["data"]["bank_reference"] for _, _, b in receiver.requests[stopped:]] == ["x-0", "x-1"]
    assert AuditLog.objects.filter(action="webhook.enable", object_id=str(endpoint_id)).exists()


def test_redirects_are_not_followed_and_ping_reports_the_attempt(fast_retries):
    receiver = Receiver(["redirect", 204])
    try:
        client = api_client_for()
        endpoint_id = client.post("/api/v1/webhooks/", {"url": receiver.url}, format="json").json()["id"]
        first = client.post(f"/api/v1/webhooks/{endpoint_id}/ping/").json()
        second = client.post(f"/api/v1/webhooks/{endpoint_id}/ping/").json()
    finally:
        receiver.close()
    assert (first["status_code"], first["succeeded"], first["error"]) == (302, False, "HTTP 302")
    assert (second["status_code"], second["succeeded"], second["kind"]) == (204, True, AttemptKind.PING)
    assert [path for path in (r[1].get("Host") for r in receiver.requests)] == [f"127.0.0.1:{PORT}"] * 2
    assert len(receiver.requests) == 2  # the redirect's target was never called


@pytest.mark.parametrize("url, code", [
    ("http://127.0.0.1:18411/hook", "invalid_webhook_url"),  # plain http
    ("https://127.0.0.1:18411/hook", "webhook_address_refused"),  # loopback
    ("https://10.1.2.3/hook", "webhook_address_refused"),  # private
    ("https://169.254.169.254/latest/meta-data", "webhook_address_refused"),  # link-local (cloud metadata)
    ("https://user:pw@example.com/hook", "invalid_webhook_url"),
    ("ftp://example.com/hook", "invalid_webhook_url"),
    ("not a url", "invalid"),
])
def test_private_addresses_and_bad_urls_are_refused_unless_allowed(settings, url, code):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    client = api_client_for()
    response = client.post("/api/v1/webhooks/", {"url": url}, format="json")
    assert response.status_code == 400, response.json()
    assert (response.json()["code"], response.json()["field"]) == (code, "url")
    assert not WebhookEndpoint.objects.exists()


def test_unknown_event_types_and_fields_are_refused():
    client = api_client_for()
    response = client.post("/api/v1/webhooks/", {"url": "https://example.com/h", "event_types": ["order.exploded"]},
                           format="json")
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400, "invalid_choice", "event_types.0")
    response = client.post("/api/v1/webhooks/", {"url": "https://example.com/h", "secret": "mine"}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "unknown_field")


def test_backoff_is_exponential_capped_and_jittered(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = Decimal("10")
    settings.WEBHOOK_RETRY_MAX_SECONDS = Decimal("3600")
    for failures, full in ((1, 10), (2, 20), (3, 40), (9, 2560), (10, 3600), (30, 3600)):
        waits = [webhooks.backoff_seconds(failures) for _ in range(200)]
        assert all(full / 2 <= w <= full for w in waits)
        assert max(waits) - min(waits) > full / 4  # jitter spreads them
