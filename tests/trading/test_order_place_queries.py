"""What one order placement over the API costs in queries, and that the cheaper paths keep the behaviour."""

from decimal import Decimal

import pytest

from accounts.models import AssetLimit, AuditLog, Role
from ledger.models import Hold
from tests.api import api_client_for
from tests.factories import MarketFactory, assert_balance, fund
from trading.models import FeeSchedule, Order

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def market():
    return MarketFactory()


@pytest.fixture
def alice():
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "USD", "50000")
    return client


def order_body(**overrides):
    return {"market": "BTC-USD", "side": "buy", "type": "limit", "size": "0.5", "price": "20000.00",
            "client_order_id": "o-1", **overrides}


def test_placing_an_order_takes_nine_queries(market, alice, django_assert_max_num_queries,
                                             django_capture_on_commit_callbacks):
    alice.post("/api/v1/orders/", order_body(client_order_id="warm-up"), format="json")  # records the key's use
    # key with user, membership, account and ledger account; market; BEGIN; replay, limits and fees; hold;
    # order; audit row; balance reservation (last: the balance row stays locked only until the commit); COMMIT.
    # The response serializer reuses the loaded market and assets.
    with django_assert_max_num_queries(9), django_capture_on_commit_callbacks() as wakeups:
        response = alice.post("/api/v1/orders/", order_body(), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["price"] == "20000.00" and response.json()["size"] == "0.50000000"
    assert len(wakeups) == 1
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
