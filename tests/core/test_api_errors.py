"""Every error an API client can meet is JSON ``{"code","message","field"}`` with a catalogued code, in every
mode: the ones DRF raises, the ones Django raises before DRF (bad host, body too large, CSRF, malformed bodies,
unroutable URLs), parser failures (deep nesting, crafted cursors), and with DEBUG on as well as off."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.test import Client, RequestFactory
from rest_framework.exceptions import ParseError
from rest_framework.test import APIClient

from accounts.errors import Code as AccountsCode
from accounts.models import Role
from core.api.errors import csrf_failure
from core.api.parsers import MAX_DEPTH, JsonParser, RequestTooLarge, nesting_depth_exceeds
from core.exceptions import Code
from tests.api import api_client_for
from tests.factories import MarketFactory, MembershipFactory, fund

pytestmark = pytest.mark.django_db
V1 = "/api/v1"
CATALOGUE = {str(code) for code in Code} | {str(code) for code in AccountsCode}


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert {"code", "message", "field"} <= set(body), body
    assert body["code"] == code, body
    assert body["code"] in CATALOGUE
    return body


@pytest.fixture(params=[False, True], ids=["DEBUG-off", "DEBUG-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def trader():
    client = api_client_for(role=Role.ADMIN)
    client.raise_request_exception = False
    fund(client.account, "USD", "1000")
    return client


# --- before DRF: host, size, unroutable ------------------------------------------------------------------


def test_a_disallowed_host_is_a_json_400_bad_host(trader, debug):
    assert_json_error(trader.get(f"{V1}/account/", HTTP_HOST="evil.example"), 400, "bad_host")
    assert_json_error(trader.post(f"{V1}/orders/", {}, format="json", HTTP_HOST="evil.example"), 400, "bad_host")


def test_the_admin_keeps_djangos_own_bad_host_page(client, settings):
    response = client.get("/admin/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_a_body_over_the_upload_limit_is_a_413_and_is_not_read(trader, settings, debug):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"name": "x" * 2000, "scopes": ["read"]})
    assert_json_error(trader.post(f"{V1}/api-keys/", body, content_type="application/json"), 413,
                      "request_too_large")
    # The same on an endpoint that fingerprints the body for idempotency (it used to read request.body: HTML 400).
    assert_json_error(trader.post(f"{V1}/withdrawals/", body, content_type="application/json",
                                  HTTP_IDEMPOTENCY_KEY="k-1"), 413, "request_too_large")
    # Up to the limit is parsed as usual.
    small = json.dumps({"name": "k", "scopes": ["read"]}).ljust(1000)
    assert trader.post(f"{V1}/api-keys/", small, content_type="application/json").status_code == 201


def test_the_parser_reads_no_further_than_the_limit_when_no_length_is_declared(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    stream = io.BytesIO(b'{"a": "' + b"x" * 10_000 + b'"}')
    with pytest.raises(RequestTooLarge) as refused:
        JsonParser().parse(stream, "application/json", {})
    assert refused.value.status_code == 413 and refused.value.get_codes() == "request_too_large"
    assert stream.tell() == 101


def test_a_malformed_content_length_is_a_400(trader):
    assert_json_error(trader.generic("POST", f"{V1}/api-keys/", b"{}", content_type="application/json",
                                     CONTENT_LENGTH="many"), 400, "bad_request")


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing/", "/api/v1/orders/not-a-number/", "/api/nothing"])
def test_unroutable_api_paths_are_json_404s_in_every_mode(trader, debug, path):
    assert_json_error(trader.get(path), 404, "not_found")


def test_non_api_paths_keep_djangos_pages(client, debug):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


# --- request bodies: JSON only, bounded depth -------------------------------------------------------------


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", "side=buy&market=BTC-USD"),
    ("multipart/form-data; boundary=xyz", '--xyz\r\nContent-Disposition: form-data; name="side"\r\n\r\nbuy\r\n--xyz--'),
    ("multipart/form-data", "--no-boundary--"),
    ("multipart/form-data; boundary=xyz", "--xyz\r\ngarbage"),
    ("text/plain", "{}"),
])
def test_only_json_bodies_are_parsed_everything_else_is_a_415(trader, content_type, body):
    MarketFactory()
    response = trader.generic("POST", f"{V1}/orders/", body, content_type=content_type)
    assert_json_error(response, 415, "unsupported_media_type")


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _post_paths(client) -> list[str]:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return [path for path, operations in schema["paths"].items() if "post" in operations]


@pytest.mark.parametrize("body", [
    _deep(100_000),
    _deep(990),  # parsable by Python, but deeper than json.dumps/repr can recurse afterwards
    _deep(MAX_DEPTH + 1),
    json.dumps({"name": "k", "scopes": ["read"], "allowed_ips": [json.loads(_deep(40))]}),
], ids=["100000", "990", "max+1", "inside-a-field"])
def test_deeply_nested_json_is_a_400_parse_error_on_every_post_endpoint(trader, body):
    paths = _post_paths(trader)
    assert len(paths) >= 8
    for path in paths:
        url = path.replace("{id}", "1").replace("{name}", "trade_blotter")
        response = trader.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="deep")
        assert response.status_code != 500, (path, response.content[:200])
        if "{id}" not in path and "report-jobs" not in path:  # the others may refuse the id or the key first
            assert_json_error(response, 400, "parse_error")
        else:
            assert response.json()["code"] in CATALOGUE


def test_nesting_up_to_the_limit_is_accepted_by_the_parser():
    data = json.loads(_deep(MAX_DEPTH))
    assert JsonParser().parse(io.BytesIO(json.dumps(data).encode()), "application/json", {}) == data
    assert not nesting_depth_exceeds(data, MAX_DEPTH)
    assert nesting_depth_exceeds([data], MAX_DEPTH)


@pytest.mark.parametrize("raw", [b"NaN", b'{"a": Infinity}', b"\xff\xfe", b'{"a": 1'])
def test_the_parser_refuses_non_json(raw):
    with pytest.raises(ParseError):
        JsonParser().parse(io.BytesIO(raw), "application/json", {})


# --- crafted cursors (issue 18, item 12) ------------------------------------------------------------------


def _cursor(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


CURSOR_LISTS = ["/orders/", "/fills/", "/audit-log/", "/statement/", "/deposits/", "/withdrawals/", "/api-keys/"]
CRAFTED = ["p=abc", "p=1%00", "p=99999999999999999999999", "p=-99999999999999999999", "p=1e5", "p=", "p=1.5",
           "r=x&p=1", "o=-1&p=1", "o=x&p=1"]


@pytest.mark.parametrize("raw", CRAFTED)
@pytest.mark.parametrize("path", CURSOR_LISTS)
def test_a_crafted_cursor_is_a_400_invalid_cursor_never_a_500(trader, path, raw, debug):
    body = assert_json_error(trader.get(V1 + path, {"cursor": _cursor(raw)}), 400, "invalid_cursor")
    assert body["field"] == "cursor"


def test_the_issue_18_attack_shows_no_database_url_with_debug_on(trader, settings):
    """A made-up cursor with DEBUG on used to be a 500 debug page showing DATABASE_URL with its password."""
    settings.DEBUG = True
    settings.DATABASE_URL = "postgres://app:s3cret@db.internal:5432/prod"
    response = trader.get(f"{V1}/orders/", {"cursor": _cursor("p=abc")})
    assert_json_error(response, 400, "invalid_cursor")
    assert b"s3cret" not in response.content


def test_real_cursors_still_page_through(trader):
    for n in range(3):
        trader.post(f"{V1}/api-keys/", {"name": f"k{n}", "scopes": ["read"]}, format="json")
    seen, url = [], f"{V1}/api-keys/?page_size=2"
    while url:
        page = trader.get(url).json()
        seen += [key["id"] for key in page["results"]]
        url = page["next"]
    assert len(seen) == 4 and seen == sorted(seen, reverse=True)


# --- CSRF -------------------------------------------------------------------------------------------------


def test_a_session_post_without_a_csrf_token_is_a_403_csrf_failed():
    user = MembershipFactory(role=Role.ADMIN).user
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post(f"{V1}/api-keys/", {"name": "k", "scopes": ["read"]}, content_type="application/json")
    assert_json_error(response, 403, "csrf_failed")
    # With the token from the cookie, the same request is accepted.
    browser.get(f"{V1}/api-keys/")
    token = browser.cookies.get("csrftoken")
    if token is None:  # the cookie is set once a page used the token; the admin login page does
        browser.get("/admin/login/")
        token = browser.cookies["csrftoken"]
    response = browser.post(f"{V1}/api-keys/", {"name": "k", "scopes": ["read"]}, content_type="application/json",
                            HTTP_X_CSRFTOKEN=token.value)
    assert response.status_code == 201, response.content


def test_djangos_csrf_failure_view_answers_json_on_api_paths_only():
    factory = RequestFactory()
    assert_json_error(csrf_failure(factory.post("/api/v1/orders/"), reason="CSRF cookie not set."), 403,
                      "csrf_failed")
    page = csrf_failure(factory.post("/admin/login/"), reason="CSRF cookie not set.")
    assert page.status_code == 403 and page["Content-Type"].startswith("text/html")


# --- plain Django views under /api/, DEBUG on and off -----------------------------------------------------


@pytest.mark.urls("tests.core.urls")
class TestDjangoViewsUnderTheApi:
    def test_a_malformed_multipart_body_read_by_django_is_a_400_malformed_multipart(self, debug):
        web = Client(raise_request_exception=False)
        for body in ("--no-boundary--", "--xyz\r\ngarbage"):
            response = web.generic("POST", "/api/test/form/", body, content_type="multipart/form-data")
            assert_json_error(response, 400, "malformed_multipart")

    def test_djangos_own_csrf_refusal_on_an_api_path_is_a_403_csrf_failed(self, debug):
        web = Client(raise_request_exception=False, enforce_csrf_checks=True)
        response = web.post("/api/test/form/", {"side": "buy"})
        assert_json_error(response, 403, "csrf_failed")

    def test_a_suspicious_operation_is_a_400_bad_request(self, debug):
        assert_json_error(Client().get("/api/test/suspicious/"), 400, "bad_request")

    def test_an_uncaught_exception_is_a_json_500_and_is_logged(self, debug, caplog):
        web = Client(raise_request_exception=False)
        body = assert_json_error(web.get("/api/test/bug/"), 500, "server_error")
        assert "Traceback" not in body["message"] and "s3cret" not in json.dumps(body)
        assert any(r.name == "django.request" and r.exc_info and "a bug" in str(r.exc_info[1])
                   for r in caplog.records)

    def test_the_test_client_still_sees_the_exception_as_django_signals_it(self):
        with pytest.raises(RuntimeError, match="a bug"):
            Client().get("/api/test/bug/")


# --- DEBUG output masks URL passwords ---------------------------------------------------------------------

URL_SETTINGS = {
    "DATABASE_URL": "postgres://app:pg-s3cret@db.internal:5432/prod",
    "CACHE_URL": "redis://:cache-s3cret@cache.internal:6379/1",
    "CELERY_BROKER_URL": "amqp://broker:amqp-s3cret@mq.internal:5672//",
    "EVENTS_AMQP_URL": "amqp://events:events-s3cret@mq.internal:5672/events",
    "SOMETHING_ELSE_URL": "https://user:other-s3cret@example.internal/x",
}


@pytest.mark.urls("tests.core.urls")
def test_the_debug_page_masks_every_url_password(settings):
    settings.DEBUG = True
    for name, value in URL_SETTINGS.items():
        setattr(settings, name, value)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": URL_SETTINGS["CACHE_URL"]}}
    web = Client(raise_request_exception=False)
    # runserver copies the environment into request.META: the URLs come that way too.
    page = web.get("/test/bug/", REDIS_URL="redis://:meta-s3cret@cache.internal:6379/0").content.decode()
    assert "a bug" in page and "Traceback" in page  # the technical page, for a non-API path with DEBUG on
    for secret in ("pg-s3cret", "cache-s3cret", "amqp-s3cret", "events-s3cret", "other-s3cret", "meta-s3cret",
                   "s3cret-in-a-frame"):
        assert secret not in page, secret
    assert "postgres://app:********************@db.internal:5432/prod" in page
    assert "redis://:********************@cache.internal:6379/0" in page


def test_an_api_client_never_gets_the_debug_page(trader, settings):
    settings.DEBUG = True
    settings.DATABASE_URL = URL_SETTINGS["DATABASE_URL"]
    for response in (trader.get(f"{V1}/nothing-here/"), trader.get(f"{V1}/account/", HTTP_HOST="evil.example"),
                     trader.post(f"{V1}/orders/", _deep(5000), content_type="application/json")):
        assert response["Content-Type"].startswith("application/json")
        assert b"pg-s3cret" not in response.content and b"Traceback" not in response.content


def test_a_drf_rendered_error_for_a_browser_is_left_to_drf():
    response = APIClient().get(f"{V1}/account/", HTTP_ACCEPT="text/html")
    assert response.status_code == 401  # DRF's browsable page of the same JSON error, not replaced


def test_a_missing_scope_is_named_plainly():
    client = api_client_for(role=Role.TRADER)
    body = assert_json_error(client.post(f"{V1}/withdrawals/", {"asset": "USD", "amount": "1.00",
                                                                "bank_reference": "X"}, format="json",
                                         HTTP_IDEMPOTENCY_KEY="k"), 403, "scope_required")
    assert body["message"] == "This request needs the 'transfer' scope."
