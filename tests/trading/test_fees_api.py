"""GET /api/v1/fees/ (issue 16, item 3): the caller's tier, maker/taker rates per market and 30-day volume."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Role, Tier
from tests.api import api_client_for
from tests.factories import ClientAccountFactory, MarketFactory, fund
from tests.trading.helpers import match, place
from trading.models import FeeSchedule, Fill

pytestmark = pytest.mark.django_db
D = Decimal
FEES = reverse("fees")


@pytest.fixture
def markets():
    return MarketFactory(), MarketFactory(symbol="ETH-USD", base_id="ETH", maker_fee_rate=D("0.0015"),
                                          taker_fee_rate=D("0.0025"))


def trade(buyer, market, *, size, price):
    seller = ClientAccountFactory()
    fund(seller, market.base_id, size)
    place(seller, market, "sell", size=size, price=price)
    place(buyer, market, "buy", size=size, price=price)
    match(market)


def test_a_standard_client_sees_the_markets_rates_and_its_30_day_volume(markets):
    btc, eth = markets
    client = api_client_for(role=Role.VIEWER)
    fund(client.account, "USD", "10000")
    trade(client.account, btc, size="0.5", price="100")  # 50
    trade(client.account, eth, size="2", price="10.01")  # 20.02
    trade(client.account, btc, size="1", price="100")
    Fill.objects.filter(pk=Fill.objects.order_by("-id").first().pk).update(
        created_at=Fill.objects.order_by("-id").first().created_at - timedelta(days=30, seconds=1))  # too old

    response = client.get(FEES)

    assert response.status_code == 200
    body = response.json()
    assert (body["tier"], body["volume_30d"]) == ("standard", [{"asset": "USD", "volume": "70.02"}])
    assert body["markets"] == [
        {"market": "BTC-USD", "maker_fee_rate": "0.001", "taker_fee_rate": "0.002"},
        {"market": "ETH-USD", "maker_fee_rate": "0.0015", "taker_fee_rate": "0.0025"},
    ]
    assert body["volume_since"].endswith("Z")


def test_a_tier_schedule_overrides_the_market_rates_market_specific_first(markets):
    btc, eth = markets
    client = api_client_for(role=Role.VIEWER)
    client.account.tier = Tier.VIP
    client.account.save()
    FeeSchedule.objects.create(tier=Tier.VIP, market=None, maker_fee_rate=D("0.0005"), taker_fee_rate=D("0.001"))
    FeeSchedule.objects.create(tier=Tier.VIP, market=eth, maker_fee_rate=D("0"), taker_fee_rate=D("0.0008"))

    body = client.get(FEES).json()

    assert body["tier"] == "vip" and body["volume_30d"] == []
    assert body["markets"] == [
        {"market": "BTC-USD", "maker_fee_rate": "0.0005", "taker_fee_rate": "0.001"},
        {"market": "ETH-USD", "maker_fee_rate": "0", "taker_fee_rate": "0.0008"},
    ]


def test_the_rates_shown_are_the_rates_the_next_order_gets(markets):
    btc, _ = markets
    client = api_client_for(role=Role.TRADER)
    client.account.tier = Tier.PROFESSIONAL
    client.account.save()
    fund(client.account, "USD", "1000")
    FeeSchedule.objects.create(tier=Tier.PROFESSIONAL, market=btc, maker_fee_rate=D("0.0007"),
                               taker_fee_rate=D("0.0009"))
    shown = next(m for m in client.get(FEES).json()["markets"] if m["market"] == "BTC-USD")
    order = place(client.account, btc, "buy", size="0.1", price="100")
    assert (D(shown["maker_fee_rate"]), D(shown["taker_fee_rate"])) == (order.maker_fee_rate, order.taker_fee_rate)
