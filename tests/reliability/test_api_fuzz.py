"""Bad input through the public API: schemathesis generates requests from the OpenAPI schema, valid ones and
deliberately invalid ones, for every operation, authenticated as a funded client. No response may be a server
error, and every response must be one the schema documents, with the documented content type and body.

The report operations are for compliance staff, so they are called with a staff user's token; every other
operation with the client's API key.

Known bugs are pinned by the strict xfail tests at the end, one deterministic request each, to be fixed in the
app. The fuzz test tolerates exactly those responses (``KNOWN_VIOLATIONS``), so that it still finds any other.
When an xfail test starts passing, remove its entry from ``KNOWN_VIOLATIONS`` and its xfail mark."""

from __future__ import annotations

from decimal import Decimal

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test.utils import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Role
from tests.api import api_client_for
from tests.factories import MarketFactory, StaffFactory, fund

EXAMPLES_PER_OPERATION = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Loaded once at collection from the app itself (the request needs no database), at the host schemathesis's
# WSGI client sends.
with override_settings(ALLOWED_HOSTS=["localhost"]):
    SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


# name of the xfail test pinning a known bug: (is this response that bug?, the checks it fails)
KNOWN_VIOLATIONS: dict = {}


def _known_to_fail(case, response) -> list:
    return [check for matches, checks in KNOWN_VIOLATIONS.values() if matches(case, response) for check in checks]


@pytest.fixture
def wsgi_in_the_test_transaction(settings):
    """As Django's test client does: accept its host, and do not close the database connection at the end of
    each request (that would end the test's transaction)."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    settings.EVENTS_LONG_POLL_MAX_SECONDS = 0  # GET /events/?wait=30 answers at once (long-polls: tests/events)
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def client_key(db) -> str:
    """The API key (every scope) of a funded client, with a market to trade on."""
    MarketFactory()
    client = api_client_for(role=Role.ADMIN)
    for asset, amount in {"USD": "100000", "BTC": "10"}.items():
        fund(client.account, asset, Decimal(amount))
    return client.secret


def _compliance_officer():
    staff = StaffFactory(password=None)
    staff.user_permissions.add(Permission.objects.get(codename="export_reports"))
    return staff


@pytest.fixture
def headers(label, client_key) -> dict:
    if label.split()[1].startswith("/api/v1/report"):
        return {"Authorization": f"Token {Token.objects.create(user=_compliance_officer()).key}"}
    return {"Authorization": f"ApiKey {client_key}"}


@pytest.mark.usefixtures("wsgi_in_the_test_transaction")
@pytest.mark.parametrize("label", list(OPERATIONS))
def test_no_request_gets_a_server_error_or_an_undocumented_response(label, headers):
    operation = OPERATIONS[label]
    cases = st.one_of([operation.as_strategy(mode) for mode in GenerationMode])

    @given(case=cases)
    @hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    def exchange(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, excluded_checks=_known_to_fail(case, response))

    exchange()


# --- the known violations, one deterministic request each -------------------------------------------------


def _documented(path: str, method: str) -> dict:
    return SCHEMA.raw_schema["paths"][path][method]["responses"]


@pytest.fixture
def client(db):
    return api_client_for(role=Role.ADMIN)


def test_an_api_url_that_matches_no_route_answers_with_the_json_error_body(client):
    response = client.get("/api/v1/orders/abc/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_an_invalid_cursor_gets_a_documented_status(client):
    response = client.get("/api/v1/orders/", {"cursor": "not-a-cursor"})
    assert response.status_code < 500
    assert str(response.status_code) in _documented("/api/v1/orders/", "get")


def test_a_body_the_api_cannot_parse_gets_a_documented_status(client):
    response = client.generic("POST", "/api/v1/api-keys/", "name=x", content_type="text/plain")
    assert response.status_code < 500
    assert str(response.status_code) in _documented("/api/v1/api-keys/", "post")


def test_the_balances_response_matches_its_schema(client):
    assert isinstance(client.get("/api/v1/balances/").json(), list)
    assert _documented("/api/v1/balances/", "get")["200"]["content"]["application/json"]["schema"].get("type") == "array"


@pytest.fixture
def compliance(db):
    staff = APIClient()
    staff.force_authenticate(_compliance_officer())
    return staff


@pytest.mark.parametrize("call", [
    ("client", "get", "/api/v1/statement/", {"created_before": "2024-01-01T00:00:00-18:59"}),
    ("client", "get", "/api/v1/statement/", {"created_after": "2024-01-01T00:00:00+16:00"}),
    ("compliance", "get", "/api/v1/reports/trade_blotter/", {"from": "2024-01-01T00:00:00-18:59", "to": "2024-02-01"}),
    ("compliance", "post", "/api/v1/report-jobs/",
     {"report": "trade_blotter", "from": "2024-01-01", "to": "2024-01-02T00:00:00+17:00"}),
    ("compliance", "get", "/api/v1/reports/trade_blotter/", {"from": "2024-01-01", "to": "9999-12-31"}),
    ("compliance", "post", "/api/v1/report-jobs/", {"report": "trade_blotter", "from": "2024-01-01", "to": "9999-12-31"}),
], ids=["statement-before", "statement-after", "report-export", "report-job", "report-export-9999",
        "report-job-9999"])
def test_a_date_time_postgresql_cannot_store_is_refused_not_a_server_error(request, call):
    who, method, path, params = call
    caller = request.getfixturevalue(who)
    caller.raise_request_exception = False
    response = getattr(caller, method)(path, params, **({"format": "json"} if method == "post" else {}))
    assert response.status_code == 400
