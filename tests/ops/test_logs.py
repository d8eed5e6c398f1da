"""Structured logs of real requests: JSON lines, a request id from the API call to the Celery task it queued, and
no secret (API key, DRF token, password, session or CSRF cookie, Authorization header) in any line."""

from __future__ import annotations

import json
import logging
import re

import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from rest_framework.authtoken.models import Token

from accounts.models import Role
from core.logs import JsonFormatter, RequestContextFilter, redact
from tests.api import api_client_for
from tests.factories import MarketFactory, StaffFactory, fund
from tests.ops.servers import Gunicorn, base_env
from tests.staff import authenticator, current_code
from tests.trading.workers import broker_url, wait_for, worker_start, worker_stop  # noqa: F401 - fixture

PASSWORD = "Tr0ub4dor&3-horse"


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_real_requests_log_json_with_request_ids_and_no_secrets(broker_url, tmp_path):  # noqa: F811
    MarketFactory()
    trader = api_client_for(role=Role.TRADER)
    fund(trader.account, "USD", "50000")
    staff = StaffFactory(is_superuser=True)
    staff.password = make_password(PASSWORD, hasher=PBKDF2PasswordHasher())  # the server's hasher (tests: MD5)
    staff.save()
    token = Token.objects.create(user=staff).key
    worker = worker_start(broker_url, tmp_path / "worker.log", "logs")
    # Plain HTTP on loopback: cookies without the Secure flag so the client sends them back.
    web = Gunicorn(tmp_path / "web.log", base_env(CELERY_BROKER_URL=broker_url, SESSION_COOKIE_SECURE="0",
                                                  CSRF_COOKIE_SECURE="0"), workers=1)
    secrets = {trader.secret, trader.secret.split(".", 1)[1], PASSWORD, token, "WrongSecretValue12345",
               "hunter2-in-the-query"}
    try:
        api = {"Authorization": f"ApiKey {trader.secret}"}
        placed = requests.post(f"{web.url}/api/v1/orders/", json={"market": "BTC-USD", "side": "buy", "size": "0.1",
                               "price": "20000.00"}, headers={**api, "X-Request-ID": "req-f17-order-1"}, timeout=10)
        assert placed.status_code == 201, placed.text
        assert placed.headers["X-Request-ID"] == "req-f17-order-1"
        generated = requests.get(f"{web.url}/api/v1/balances/", headers=api, timeout=10)
        assert generated.status_code == 200 and re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
        odd = requests.get(f"{web.url}/api/v1/balances/", headers={**api, "X-Request-ID": "bad id <script>"},
                           timeout=10)
        assert odd.headers["X-Request-ID"] != "bad id <script>"  # only plain tokens are echoed
        wrong_key = trader.secret.split(".", 1)[0] + ".WrongSecretValue12345"
        assert requests.get(f"{web.url}/api/v1/balances/", headers={"Authorization": f"ApiKey {wrong_key}"},
                            timeout=10).status_code in (401, 403)
        assert requests.get(f"{web.url}/api/v1/account/?password=hunter2-in-the-query", headers=api,
                            timeout=10).status_code == 200
        assert requests.get(f"{web.url}/api/v1/markets/", headers={"Authorization": f"Token {token}"},
                            timeout=10).status_code in (200, 403)  # staff: authenticated, not a client
        browser = requests.Session()
        browser.get(f"{web.url}/admin/login/", timeout=10)
        csrf = browser.cookies["csrftoken"]
        login = browser.post(f"{web.url}/admin/login/?next=/admin/", timeout=10, allow_redirects=False,
                             data={"username": staff.username, "password": PASSWORD, "csrfmiddlewaretoken": csrf,
                                   "otp_token": current_code(authenticator(staff))},
                             headers={"Referer": f"{web.url}/admin/login/"})
        assert login.status_code == 302, login.text[:500]
        assert browser.get(f"{web.url}/admin/", timeout=10).status_code == 200
        secrets |= {browser.cookies["sessionid"], browser.cookies["csrftoken"], csrf}
        assert wait_for(lambda: "succeeded" in worker.log.read_text(), 30), worker.log.read_text()
    finally:
        web.stop()
        worker_stop(worker)

    web_log, worker_log = web.log.read_text(), worker.log.read_text()
    for secret in secrets:
        assert secret not in web_log and secret not in worker_log, f"a secret leaked into the logs: {secret[:4]}..."
    web_lines = [line for line in web_log.splitlines() if line.strip()]
    assert web_lines and all(line.startswith("{") for line in web_lines), web_log[:2000]
    records = _json_lines(web_log)
    order_line = next(r for r in records if r.get("route") == "api/v1/orders/" and r.get("method") == "POST")
    assert order_line["request_id"] == "req-f17-order-1" and order_line["status"] == 201
    assert order_line["credential"] == trader.api_key.prefix and "duration_ms" in order_line
    assert any(r.get("route") == "admin/login/" and r.get("status") == 302 for r in records)
    assert all("hunter2" not in r.get("path", "") for r in records)  # the query string is never logged
    # The lines the task writes while it runs carry the id of the request that queued it.
    task_lines = [r for r in _json_lines(worker_log) if r.get("task") == "trading.tasks.match_market"]
    assert task_lines and all(r["request_id"] == "req-f17-order-1" for r in task_lines), worker_log[-3000:]
    assert any("succeeded" in r["message"] for r in task_lines)


@pytest.mark.parametrize("line, secret", [
    ("Authorization: ApiKey ab12cd34.s3cr3tpart-XYZ", "s3cr3tpart-XYZ"),
    ("headers={'HTTP_AUTHORIZATION': 'Bearer eyJhbGciOi.x.y'}", "eyJhbGciOi"),
    ("Cookie: sessionid=9f8e7d6c5b4a; csrftoken=abcdef123456", "9f8e7d6c5b4a"),
    ("Cookie: sessionid=9f8e7d6c5b4a; csrftoken=abcdef123456", "abcdef123456"),
    ('{"username": "ops", "password": "P@ssw0rd!"}', "P@ssw0rd!"),
    ("POST /login username=ops&password=hunter22&next=/", "hunter22"),
    ("new key secret=Zm9vYmFyYmF6 issued", "Zm9vYmFyYmF6"),
    ("WHERE session_key = 'q1w2e3r4t5y6'", "q1w2e3r4t5y6"),
])
def test_redaction_of_secrets_in_any_line(line, secret):
    assert secret not in redact(line)
    assert "[redacted]" in redact(line)


def test_a_secret_logged_by_mistake_is_redacted_in_the_json_line():
    record = logging.LogRecord("app", logging.WARNING, __file__, 1, "auth header was %s", ("ApiKey pfx.verysecret1",),
                               None)
    record.extra_header = {"Authorization": "Token 0123456789abcdef"}
    RequestContextFilter().filter(record)
    line = JsonFormatter().format(record)
    parsed = json.loads(line)  # still valid JSON after redaction
    assert "verysecret1" not in line and "0123456789abcdef" not in line
    assert parsed["level"] == "WARNING" and parsed["request_id"] is None
