"""The quotes, prices and conversions API: decimal strings, Idempotency-Key replays, account scoping, and bad
input answered with a 4xx and a stable code, leaving nothing behind."""

from decimal import Decimal as D

import pytest

from accounts.models import Role
from tests.api import api_client_for
from tests.factories import fund
from tests.trading.quote_desk import books_snapshot, inventory_fund, limits_set
from trading.models import Conversion, Quote

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(desk):
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "USD", "1000")
    return client


def ask_quote(client, **body):
    return client.post("/api/v1/quotes/", {"market": "BTC-USD", "side": "buy", "size": "1", **body}, format="json")


def execute(client, quote_id, key="k-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/api/v1/quotes/{quote_id}/execute/", {}, format="json", **headers)


def test_quote_then_execute_then_replay(alice, clock):
    response = ask_quote(alice)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: body[k] for k in ("market", "side", "size", "funds", "price", "quote_amount", "fee", "fee_rate",
                                 "total", "status", "executed_at")} == {
        "market": "BTC-USD", "side": "buy", "size": "1.00000000", "funds": None, "price": "100.76",
        "quote_amount": "100.76", "fee": "0.21", "fee_rate": "0.002", "total": "100.97", "status": "open",
        "executed_at": None,
    }
    assert body["expires_at"] == "2026-11-26T12:00:30Z"

    executed = execute(alice, body["id"])
    assert executed.status_code == 200, executed.json()
    assert executed.json()["status"] == "executed" and executed.json()["total"] == "100.97"
    before = books_snapshot()

    replay = execute(alice, body["id"])
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == executed.json()
    other_key = execute(alice, body["id"], key="k-2")
    assert (other_key.status_code, other_key.json()["code"]) == (409, "quote_already_executed")
    assert books_snapshot() == before
    assert alice.get(f"/api/v1/quotes/{body['id']}/").json()["status"] == "executed"
    assert [q["id"] for q in alice.get("/api/v1/quotes/").json()["results"]] == [body["id"]]


def test_an_idempotency_key_belongs_to_one_quote(alice, clock):
    first, second = ask_quote(alice, size="0.1").json()["id"], ask_quote(alice, size="0.1").json()["id"]
    assert execute(alice, first, key="same").status_code == 200
    reused = execute(alice, second, key="same")
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_conflict")
    assert Quote.objects.get(pk=second).status == "open"


def test_execution_needs_an_idempotency_key(alice, clock):
    quote_id = ask_quote(alice).json()["id"]
    response = execute(alice, quote_id, key=None)
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400, "idempotency_key_required", "Idempotency-Key")


def test_an_expired_quote_is_refused(alice, clock):
    quote_id = ask_quote(alice).json()["id"]
    clock.advance(seconds=30)
    before = books_snapshot()
    response = execute(alice, quote_id)
    assert (response.status_code, response.json()["code"]) == (409, "quote_expired")
    assert alice.get(f"/api/v1/quotes/{quote_id}/").json()["status"] == "expired"
    assert books_snapshot() == before


def test_another_accounts_quote_is_not_found(alice, clock):
    quote_id = ask_quote(alice).json()["id"]
    mallory = api_client_for(role=Role.TRADER)
    fund(mallory.account, "USD", "1000")
    assert mallory.get(f"/api/v1/quotes/{quote_id}/").status_code == 404
    assert execute(mallory, quote_id).status_code == 404
    assert Quote.objects.get(pk=quote_id).status == "open"


@pytest.mark.parametrize("body, status, code, field", [
    ({"size": 1}, 400, "decimal_string_required", "size"),
    ({"size": "1", "funds": "100"}, 400, "size_or_funds", "size"),
    ({"size": None, "funds": None}, 400, "null", "size"),
    ({"market": "DOGE-USD"}, 400, "does_not_exist", "market"),
    ({"side": "short"}, 400, "invalid_choice", "side"),
    ({"ammount": "1"}, 400, "unknown_field", "ammount"),
    ({"size": "0.000001"}, 400, "invalid_lot", "size"),
    ({"size": "1e3"}, 400, "malformed_decimal", "size"),
    ({"size": "50"}, 409, "price_unavailable", "size"),
])
def test_bad_quote_requests_get_a_stable_code_and_create_nothing(alice, clock, body, status, code, field):
    response = ask_quote(alice, **body)
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (status, code, field)
    assert Quote.objects.count() == 0


def test_a_read_only_key_cannot_quote(desk, clock):
    viewer = api_client_for(role=Role.VIEWER)
    response = ask_quote(viewer)
    assert (response.status_code, response.json()["code"]) == (403, "scope_required")
    assert viewer.get("/api/v1/prices/").status_code == 200


def test_indicative_prices_for_every_market(alice, clock):
    from tests.factories import MarketFactory

    MarketFactory(symbol="ETH-USD", base_id="ETH", quote_id="USD", lot_size=D("0.0001"), min_size=D("0.0001"))
    prices = {row["market"]: row for row in alice.get("/api/v1/prices/").json()}
    # the minimum size 0.00001 BTC is priced at the best levels: ask 100 x 1.0025, bid 99 x 0.9975 = 98.7525
    assert {k: prices["BTC-USD"][k] for k in ("size", "bid", "ask")} == {
        "size": "0.00001000", "bid": "98.75", "ask": "100.25"}
    assert (prices["ETH-USD"]["bid"], prices["ETH-USD"]["ask"]) == (None, None)  # no book, no fallback


# --- conversions ------------------------------------------------------------------------------------------


@pytest.fixture
def stable(db):
    for asset in ("USD", "USDP"):
        limits_set(asset, max_long="10000000")
        inventory_fund(asset, "50000")


def convert(client, key="c-1", **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/conversions/", {"from_asset": "USD", "to_asset": "USDP", "amount": "100.00",
                                                **body}, format="json", **headers)


def test_conversion_through_the_api(alice, stable, clock):
    response = convert(alice)
    assert response.status_code == 201, response.json()
    assert {k: response.json()[k] for k in ("from_asset", "to_asset", "amount")} == {
        "from_asset": "USD", "to_asset": "USDP", "amount": "100.00"}
    replay = convert(alice)
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == response.json()
    conflict = convert(alice, amount="100.01")
    assert (conflict.status_code, conflict.json()["code"]) == (409, "idempotency_conflict")
    balances = {b["asset"]: b["total"] for b in alice.get("/api/v1/balances/").json()}
    assert (balances["USD"], balances["USDP"]) == ("900.00", "100.000000")
    assert [c["id"] for c in alice.get("/api/v1/conversions/").json()["results"]] == [response.json()["id"]]


@pytest.mark.parametrize("key, body, status, code", [
    (None, {}, 400, "idempotency_key_required"),
    ("k", {"to_asset": "BTC"}, 400, "conversion_unsupported"),
    ("k", {"from_asset": "USDP", "to_asset": "USD"}, 400, "insufficient_funds"),
    ("k", {"amount": "100000"}, 400, "insufficient_funds"),
    ("k", {"amount": "1.001"}, 400, "too_precise"),
    ("k", {"amount": 100}, 400, "decimal_string_required"),
    ("k", {"to_asset": "XYZ"}, 400, "unknown_asset"),
])
def test_bad_conversions_get_a_stable_code_and_convert_nothing(alice, stable, clock, key, body, status, code):
    before = books_snapshot()
    response = convert(alice, key=key, **body)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert books_snapshot() == before and Conversion.objects.count() == 0
