"""Market data is public (issue 13): markets, book, trades, ticker and candles answer without a credential,
throttled per IP address; everything else still refuses an anonymous caller, and a caller with a credential is
checked as before."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from tests.api import api_client_for
from tests.factories import fund
from tests.trading.helpers import match, place

pytestmark = pytest.mark.django_db
V1 = "/api/v1"
PUBLIC = [f"{V1}/markets/", f"{V1}/markets/BTC-USD/", f"{V1}/markets/BTC-USD/book/", f"{V1}/markets/BTC-USD/trades/",
          f"{V1}/markets/BTC-USD/ticker/", f"{V1}/markets/BTC-USD/candles/?granularity=60"]


def anonymous(**extra) -> APIClient:
    return APIClient(**extra)


@pytest.fixture
def traded(market, alice, bob):
    place(bob.account, market, "sell", size="0.5", price="20000")
    place(alice.account, market, "buy", size="0.2", price="19000")
    match(market)
    place(alice.account, market, "buy", size="0.1", price="20000")
    match(market)
    return market


@pytest.fixture
def bob():
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "BTC", "10")
    return client


def test_market_data_answers_without_a_credential_as_it_does_with_one(traded, alice):
    for url in PUBLIC:
        public, keyed = anonymous().get(url), alice.get(url)
        assert public.status_code == 200, (url, public.json())
        assert public.json() == keyed.json(), url
    book = anonymous().get(f"{V1}/markets/BTC-USD/book/").json()
    assert book["asks"] == [{"price": "20000.00", "size": "0.40000000", "orders": 1}]
    trades = anonymous().get(f"{V1}/markets/BTC-USD/trades/").json()
    assert [(t["price"], t["size"], t["side"]) for t in trades] == [("20000.00", "0.10000000", "buy")]
    candle = anonymous().get(f"{V1}/markets/BTC-USD/candles/", {"granularity": 86400}).json()["results"][0]
    assert (candle["open"], candle["volume"], candle["trades"]) == ("20000.00", "0.10000000", 1)


@pytest.mark.parametrize(("method", "url"), [
    ("get", f"{V1}/orders/"), ("post", f"{V1}/orders/"), ("get", f"{V1}/fills/"), ("get", f"{V1}/balances/"),
    ("get", f"{V1}/account/"), ("get", f"{V1}/events/"), ("get", f"{V1}/quotes/"), ("get", f"{V1}/prices/"),
    ("post", f"{V1}/markets/"), ("delete", f"{V1}/markets/BTC-USD/"),
])
def test_everything_else_still_refuses_an_anonymous_caller(market, method, url):
    response = getattr(anonymous(), method)(url, {}, format="json") if method == "post" else \
        getattr(anonymous(), method)(url)
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated", response.json()


def test_a_wrong_credential_is_refused_even_on_public_data(market):
    client = anonymous(HTTP_AUTHORIZATION="ApiKey 0123456789ab.wrong")
    response = client.get(f"{V1}/markets/")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_api_key")


def test_a_key_without_the_read_scope_is_refused_as_before(market):
    trade_only = api_client_for(role=Role.TRADER, scopes=["trade"])
    response = trade_only.get(f"{V1}/markets/BTC-USD/ticker/")
    assert (response.status_code, response.json()["code"]) == (403, "scope_required")


def test_the_schema_marks_market_data_public_and_the_rest_not(market):
    schema = anonymous().get("/api/schema/", {"format": "json"}).json()
    security = {path: op["security"] for path, ops in schema["paths"].items() for method, op in ops.items()
                if method == "get"}
    for path in ("/api/v1/markets/", "/api/v1/markets/{symbol}/candles/", "/api/v1/markets/{symbol}/ticker/"):
        assert {} in security[path], path
    assert {} not in security["/api/v1/orders/"] and {} not in security["/api/v1/balances/"]


# --- throttled per IP, on Redis ------------------------------------------------------------------------------------


def test_anonymous_reads_are_throttled_per_ip_with_a_code(market, redis_rates):
    redis_rates(public_ip="4/min")
    client = anonymous()
    statuses = [client.get(url).status_code for url in PUBLIC]  # one budget for every public endpoint
    assert statuses == [200] * 4 + [429] * 2
    refused = client.get(f"{V1}/markets/")
    assert refused.json()["code"] == "throttled" and int(refused["Retry-After"]) > 0
    # Forwarded headers are not trusted: claiming another address does not give a fresh budget.
    assert client.get(f"{V1}/markets/", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    # Another address has its own budget.
    assert anonymous(REMOTE_ADDR="192.0.2.44").get(f"{V1}/markets/").status_code == 200


def test_callers_with_a_credential_do_not_use_the_anonymous_budget(market, redis_rates):
    redis_rates(public_ip="2/min")
    keyed = api_client_for(role=Role.TRADER)
    assert [keyed.get(f"{V1}/markets/").status_code for _ in range(4)] == [200] * 4
    assert [anonymous().get(f"{V1}/markets/").status_code for _ in range(3)] == [200, 200, 429]
    assert keyed.get(f"{V1}/markets/").status_code == 200  # the same address, its own budgets


def test_anonymous_reads_also_count_against_the_ip_budget_of_the_whole_api(market, redis_rates):
    redis_rates(public_ip="100/min", ip="3/min")
    keyed = api_client_for(role=Role.TRADER)
    assert [anonymous().get(f"{V1}/markets/").status_code for _ in range(2)] == [200, 200]
    assert keyed.get(f"{V1}/balances/").status_code == 200
    assert keyed.get(f"{V1}/balances/").status_code == 429  # the address's budget is spent, whoever spends it
