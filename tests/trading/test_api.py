"""The trading API: orders, fills and market data over HTTP, strict input, and one account never sees another's."""

from decimal import Decimal

import pytest

from accounts.models import Role
from tests.api import api_client_for
from tests.factories import fund
from tests.trading.helpers import match, place
from trading.models import Order, OrderStatus

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def bob():
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "BTC", "2")
    return client


def order_body(**overrides):
    return {"market": "BTC-USD", "side": "buy", "type": "limit", "size": "0.5", "price": "20000.00",
            "client_order_id": "o-1", **overrides}


def test_place_an_order_and_read_it_back(market, alice):
    response = alice.post("/api/v1/orders/", order_body(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "new" and body["market"] == "BTC-USD" and body["client_order_id"] == "o-1"
    assert (body["price"], body["size"], body["funds"], body["filled_size"]) == (
        "20000.00", "0.50000000", None, "0.00000000")
    assert alice.get(f"/api/v1/orders/{body['id']}/").json() == body


def test_resending_a_client_order_id_is_idempotent_and_other_parameters_conflict(market, alice):
    first = alice.post("/api/v1/orders/", order_body(), format="json").json()
    again = alice.post("/api/v1/orders/", order_body(), format="json")
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    conflict = alice.post("/api/v1/orders/", order_body(size="0.6"), format="json")
    assert conflict.status_code == 409 and conflict.json()["code"] == "client_order_id_conflict"
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    "overrides, code, field",
    [
        ({"size": 0.5}, "decimal_string_required", "size"),
        ({"price": "-1"}, "not_positive", "price"),
        ({"size": "0.123456789"}, "too_precise", "size"),
        ({"price": "20000.001"}, "invalid_tick", "price"),
        ({"size": "1e-1"}, "malformed_decimal", "size"),
        ({"leverage": "10"}, "unknown_field", "leverage"),
        ({"market": "DOGE-USD"}, "does_not_exist", "market"),
        ({"side": "short"}, "invalid_choice", "side"),
        ({"time_in_force": "day"}, "invalid_choice", "time_in_force"),
        ({"client_order_id": "has spaces"}, "invalid", "client_order_id"),
        ({"size": "500000"}, "size_above_maximum", "size"),
        ({"size": "3"}, "insufficient_funds", "size"),
    ],
)
def test_bad_input_is_a_400_with_a_code_and_a_field(market, alice, overrides, code, field):
    response = alice.post("/api/v1/orders/", order_body(**overrides), format="json")
    assert response.status_code == 400, response.json()
    assert (response.json()["code"], response.json()["field"]) == (code, field)
    assert not Order.objects.exists()


def test_a_read_only_key_cannot_trade(market):
    viewer = api_client_for(role=Role.VIEWER)
    response = viewer.post("/api/v1/orders/", order_body(), format="json")
    assert (response.status_code, response.json()["code"]) == (403, "scope_required")
    assert viewer.get("/api/v1/orders/").status_code == 200


def test_orders_list_filters_and_paginates_with_a_cursor(market, alice):
    for i in range(3):
        place(alice.account, market, "buy", size="0.1", price=str(10000 + i))
    place(alice.account, market, "buy", size="0.1", price="9000", client_order_id="x")
    Order.objects.filter(client_order_id="x").update(status=OrderStatus.CANCELLED)
    page = alice.get("/api/v1/orders/", {"status": "new", "page_size": 2}).json()
    assert [o["price"] for o in page["results"]] == ["10002.00", "10001.00"]
    rest = alice.get(page["next"]).json()
    assert [o["price"] for o in rest["results"]] == ["10000.00"] and rest["next"] is None
    assert alice.get("/api/v1/orders/", {"side": "sell"}).json()["results"] == []
    assert len(alice.get("/api/v1/orders/", {"market": "BTC-USD"}).json()["results"]) == 4
    assert alice.get("/api/v1/orders/", {"status": "sleeping"}).status_code == 400


def test_cancel_by_delete_by_post_and_all_in_a_market(market, alice):
    ids = [alice.post("/api/v1/orders/", order_body(client_order_id=f"c{i}", price=f"1000{i}.00"),
                      format="json").json()["id"] for i in range(4)]
    deleted = alice.delete(f"/api/v1/orders/{ids[0]}/")
    assert deleted.status_code == 200 and deleted.json()["status"] == "cancelled"
    posted = alice.post(f"/api/v1/orders/{ids[1]}/cancel/")
    assert posted.status_code == 200 and posted.json()["reason"] == "user_requested"
    everything = alice.post("/api/v1/orders/cancel-all/", {"market": "BTC-USD"}, format="json")
    assert sorted(o["id"] for o in everything.json()) == sorted(ids[2:])
    assert set(Order.objects.values_list("status", flat=True)) == {"cancelled"}


def test_fills_per_account_and_per_order(market, alice, bob):
    ask = place(bob.account, market, "sell", size="0.5", price="20000")
    match(market)
    bid = alice.post("/api/v1/orders/", order_body(), format="json").json()
    match(market)
    mine = alice.get("/api/v1/fills/").json()["results"]
    assert len(mine) == 1
    assert {k: mine[0][k] for k in ("order_id", "side", "liquidity", "price", "size", "fee", "settled_quote")} == {
        "order_id": bid["id"], "side": "buy", "liquidity": "taker", "price": "20000.00", "size": "0.50000000",
        "fee": "20.00", "settled_quote": "10020.00"}
    theirs = bob.get("/api/v1/fills/", {"side": "sell", "liquidity": "maker"}).json()["results"]
    assert [(f["order_id"], f["settled_quote"], f["fee"]) for f in theirs] == [(ask.pk, "9990.00", "10.00")]
    assert bob.get("/api/v1/fills/", {"side": "buy"}).json()["results"] == []
    assert len(alice.get(f"/api/v1/orders/{bid['id']}/fills/").json()["results"]) == 1
    filled = alice.get(f"/api/v1/orders/{bid['id']}/").json()
    assert (filled["status"], filled["settled_quote"], filled["fees_paid"]) == ("filled", "10020.00", "20.00")


def test_another_accounts_orders_and_fills_are_not_found(market, alice, bob):
    ask = place(bob.account, market, "sell", size="0.5", price="20000")
    match(market)
    place(alice.account, market, "buy", size="0.5", price="20000")
    match(market)
    stranger = api_client_for(role=Role.TRADER)
    for path in (f"/api/v1/orders/{ask.pk}/", f"/api/v1/orders/{ask.pk}/fills/"):
        assert stranger.get(path).status_code == 404
    assert stranger.delete(f"/api/v1/orders/{ask.pk}/").status_code == 404
    assert stranger.post(f"/api/v1/orders/{ask.pk}/cancel/").status_code == 404
    assert stranger.get("/api/v1/orders/").json()["results"] == []
    assert stranger.get("/api/v1/fills/").json()["results"] == []
    assert stranger.get("/api/v1/fills/", {"order": ask.pk}).json()["results"] == []
    assert stranger.post("/api/v1/orders/cancel-all/", {}, format="json").json() == []
    assert Order.objects.get(pk=ask.pk).status == OrderStatus.FILLED


def test_market_data_book_trades_and_ticker(market, alice, bob):
    place(bob.account, market, "sell", size="0.5", price="20000")
    place(bob.account, market, "sell", size="0.25", price="20000")
    place(bob.account, market, "sell", size="0.1", price="20100")
    place(alice.account, market, "buy", size="0.2", price="19000")
    match(market)
    place(alice.account, market, "buy", size="0.1", price="20000")
    match(market)

    markets = alice.get("/api/v1/markets/").json()
    assert [m["symbol"] for m in markets] == ["BTC-USD"] and markets[0]["tick_size"] == "0.01"
    book = alice.get("/api/v1/markets/BTC-USD/book/", {"depth": 1}).json()
    # "sequence": the book's version (README "Streams"): two matcher batches changed the book.
    assert book == {"market": "BTC-USD", "sequence": 2,
                    "bids": [{"price": "19000.00", "size": "0.20000000", "orders": 1}],
                    "asks": [{"price": "20000.00", "size": "0.65000000", "orders": 2}]}
    trades = alice.get("/api/v1/markets/BTC-USD/trades/").json()
    assert [(t["price"], t["size"], t["side"]) for t in trades] == [("20000.00", "0.10000000", "buy")]
    ticker = alice.get("/api/v1/markets/BTC-USD/ticker/").json()
    assert {k: ticker[k] for k in ("last_price", "best_bid", "best_ask", "volume_24h", "quote_volume_24h")} == {
        "last_price": "20000.00", "best_bid": "19000.00", "best_ask": "20000.00", "volume_24h": "0.10000000",
        "quote_volume_24h": "2000.00"}
    assert alice.get("/api/v1/markets/BTC-USD/book/", {"depth": "0"}).json()["field"] == "depth"
    assert alice.get("/api/v1/markets/NOPE/ticker/").status_code == 404


def test_market_data_is_public_but_orders_are_not(market):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/markets/").status_code == 200  # tests/trading/test_public_market_data.py
    assert APIClient().get("/api/v1/orders/").status_code == 401

