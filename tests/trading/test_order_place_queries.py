"""What one order placement over the API costs in queries, and that the cheaper paths keep the behaviour."""

from decimal import Decimal

import pytest

from accounts.models import AssetLimit
from audit.models import AuditLog
from ledger.models import Hold
from tests.factories import MarketFactory, assert_balance
from trading import selectors, services
from trading.api import OrderCreateSerializer, OrderSerializer
from trading.models import FeeSchedule, Market, MarketStatus, Order

pytestmark = pytest.mark.django_db
D = Decimal


def order_body(**overrides):
    return {"market": "BTC-USD", "side": "buy", "type": "limit", "size": "0.5", "price": "20000.00",
            "client_order_id": "o-1", **overrides}


def test_placing_an_order_takes_five_queries(market, alice, django_assert_max_num_queries,
                                              django_capture_on_commit_callbacks):
    # The warm-up records the key's use and puts the market in the process's market cache.
    alice.post("/api/v1/orders/", order_body(client_order_id="warm-up"), format="json")
    # key with user, membership, account and ledger account; BEGIN; market version, replay, limits, fees and the
    # new order's and hold's ids; one statement inserting the hold, the order, the audit row and the events
    # order.accepted and hold.placed, then reserving the funds (last: the balance row stays locked only until the
    # commit); COMMIT. The market and its assets come from the cache, and the response serializer reuses them.
    with django_assert_max_num_queries(5), django_capture_on_commit_callbacks() as wakeups:
        response = alice.post("/api/v1/orders/", order_body(), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["price"] == "20000.00" and response.json()["size"] == "0.50000000"
    assert len(wakeups) == 2  # the matcher's and the event sequencer's
    order = Order.objects.get(pk=response.json()["id"])
    assert order.hold.key == f"order:{alice.account.pk}:o-1" and order.hold.amount == D("10020.00")
    assert AuditLog.objects.filter(action="order.place", object_id=str(order.pk)).count() == 1
    assert_balance(alice.account, "USD", "50000", held=str(D("10020.00") + order_hold("warm-up")))


def order_hold(client_order_id: str) -> Decimal:
    return Order.objects.get(client_order_id=client_order_id).hold.amount


def test_a_replay_returns_the_stored_order_without_a_second_hold(market, alice):
    first = alice.post("/api/v1/orders/", order_body(), format="json").json()
    market.status = "halted"
    market.save()
    again = alice.post("/api/v1/orders/", order_body(), format="json")  # the replay wins over the halt
    assert again.status_code == 201 and again.json() == first
    assert Hold.objects.count() == 1


def test_insufficient_funds_names_the_order_field_and_holds_nothing(market, alice):
    response = alice.post("/api/v1/orders/", order_body(size="3"), format="json")
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("insufficient_funds", "size")
    by_funds = alice.post("/api/v1/orders/", {"market": "BTC-USD", "side": "buy", "type": "market",
                                              "funds": "60000.00", "client_order_id": "o-2"}, format="json")
    assert (by_funds.json()["code"], by_funds.json()["field"]) == ("insufficient_funds", "funds")
    assert not Hold.objects.exists()
    assert_balance(alice.account, "USD", "50000", held="0")


def test_limits_and_fee_tiers_read_in_the_shared_query_still_apply(market, alice):
    FeeSchedule.objects.create(tier=alice.account.tier, market=None, maker_fee_rate=D("0.0005"),
                               taker_fee_rate=D("0.0007"))
    FeeSchedule.objects.create(tier=alice.account.tier, market=market, maker_fee_rate=D("0.0001"),
                               taker_fee_rate=D("0.0002"))
    FeeSchedule.objects.create(tier="vip", market=market, maker_fee_rate=D("0"), taker_fee_rate=D("0"))
    placed = alice.post("/api/v1/orders/", order_body(), format="json").json()
    order = Order.objects.get(pk=placed["id"])
    assert (order.maker_fee_rate, order.taker_fee_rate) == (D("0.0001"), D("0.0002"))

    AssetLimit.objects.create(account=alice.account, asset_id="USD", max_order_size=D("1000"))
    AssetLimit.objects.create(account=alice.account, asset_id="ETH", max_order_size=D("0.0001"))  # other market
    refused = alice.post("/api/v1/orders/", order_body(client_order_id="o-2"), format="json")
    assert (refused.json()["code"], refused.json()["field"]) == ("order_size_limit_exceeded", "price")
    AssetLimit.objects.create(account=alice.account, asset_id="BTC", max_order_size=D("0.1"))
    refused = alice.post("/api/v1/orders/", order_body(client_order_id="o-3", price="100.00"), format="json")
    assert (refused.json()["code"], refused.json()["field"]) == ("order_size_limit_exceeded", "size")


# --- the market cache: a cached market is checked against the database inside the placement ----------------


def place(client, client_order_id: str, **overrides):
    return client.post("/api/v1/orders/", order_body(client_order_id=client_order_id, **overrides), format="json")


def test_a_halt_applies_at_once_to_a_cached_market(market, alice):
    assert place(alice, "o-1").status_code == 201  # the market is cached now
    services.market_status_set(market=market, status=MarketStatus.HALTED, acting_user=None)
    refused = place(alice, "o-2")
    assert (refused.status_code, refused.json()["code"], refused.json()["field"]) == (409, "market_not_open",
                                                                                      "market")
    services.market_status_set(market=market, status=MarketStatus.CANCEL_ONLY, acting_user=None)
    assert place(alice, "o-3").json()["code"] == "market_not_open"
    services.market_status_set(market=market, status=MarketStatus.OPEN, acting_user=None)
    assert place(alice, "o-4").status_code == 201
    assert set(Order.objects.values_list("client_order_id", flat=True)) == {"o-1", "o-4"}


def test_a_status_written_behind_the_cache_still_applies(market, alice):
    assert place(alice, "o-1").status_code == 201
    Market.objects.filter(pk=market.pk).update(status=MarketStatus.HALTED)  # not even updated_at changes
    assert place(alice, "o-2").json()["code"] == "market_not_open"


def test_edits_of_a_cached_market_apply_at_once(market, alice):
    assert place(alice, "o-1").status_code == 201
    market.min_size, market.maker_fee_rate, market.taker_fee_rate = D("0.6"), D("0.0003"), D("0.0004")
    market.save()  # as the admin does
    refused = place(alice, "o-2")
    assert (refused.json()["code"], refused.json()["field"]) == ("size_below_minimum", "size")
    placed = place(alice, "o-3", size="0.6")
    assert placed.status_code == 201, placed.json()
    order = Order.objects.get(pk=placed.json()["id"])
    assert (order.maker_fee_rate, order.taker_fee_rate) == (D("0.0003"), D("0.0004"))
    assert order.hold.amount == D("12004.80")  # 0.6 x 20000 plus the new taker rate


def test_a_market_deleted_or_recreated_behind_the_cache(alice):
    doomed = MarketFactory(symbol="ETH-USD", base_id="ETH")
    assert selectors.market_by_symbol("ETH-USD") == doomed  # cached
    doomed.delete()
    gone = place(alice, "o-1", market="ETH-USD", price="2000.00")
    assert (gone.status_code, gone.json()["code"], gone.json()["field"]) == (400, "does_not_exist", "market")

    assert selectors.market_by_symbol("ETH-USD") is None
    stale = MarketFactory(symbol="ETH-USD", base_id="ETH")
    assert selectors.market_by_symbol("ETH-USD") == stale
    stale.delete()
    fresh = MarketFactory(symbol="ETH-USD", base_id="ETH")  # same symbol, another id: the cache still has `stale`
    placed = place(alice, "o-2", market="ETH-USD", price="2000.00")
    assert placed.status_code == 201, placed.json()
    assert Order.objects.get(pk=placed.json()["id"]).market_id == fresh.pk
    assert place(alice, "o-2", market="ETH-USD", price="2000.00").json() == placed.json()  # replay


def test_a_replay_on_a_cached_market_is_found(market, alice):
    first = place(alice, "o-1")
    assert place(alice, "o-1").json() == first.json()
    assert Order.objects.count() == 1


def test_an_unknown_or_odd_market_keeps_its_error(alice):
    unknown = place(alice, "o-1", market="NOPE-USD")
    assert unknown.status_code == 400
    assert unknown.json() == {"code": "does_not_exist", "message": "Object with symbol=NOPE-USD does not exist.",
                              "field": "market",
                              "errors": {"market": ["Object with symbol=NOPE-USD does not exist."]}}
    for odd in (7, ["BTC-USD"], ""):
        response = place(alice, "o-2", market=odd)
        assert (response.status_code, response.json()["field"]) == (400, "market"), response.json()


def test_the_order_serializers_share_their_fields_but_not_their_data(market, alice):
    assert OrderCreateSerializer().fields is OrderCreateSerializer().fields
    bad = OrderCreateSerializer(data=order_body(side="short", leverage="3"))
    assert not bad.is_valid() and set(bad.errors) == {"leverage"}
    bad = OrderCreateSerializer(data=order_body(side="short"))
    assert not bad.is_valid() and set(bad.errors) == {"side"}
    good = OrderCreateSerializer(data=order_body())
    assert good.is_valid(), good.errors
    assert good.validated_data["market"].symbol == "BTC-USD" and good.validated_data["size"] == D("0.5")

    first = place(alice, "o-1").json()
    second = place(alice, "o-2", size="0.25").json()
    orders = Order.objects.filter(client_order_id__in=["o-1", "o-2"]).order_by("id")
    assert [OrderSerializer(order).data for order in orders] == [first, second]
    assert OrderSerializer(orders, many=True).data == [first, second]
