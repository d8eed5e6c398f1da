"""Pre-trade risk meets the order types of issue 16: how a stop, a stop-limit and a waiting stop count.

- a stop-limit's limit price is collared against its stop price (where it will enter the book), not today's mid;
- a stop-market order names no price: no collar; its notional is its funds (a buy) or size x stop price (a sell);
- a stop-limit is a limit order for the caps and for a limit-only market;
- a stop waiting for its trigger is an open order for the open-order cap and the daily notional.
"""

from decimal import Decimal

import pytest

from tests.trading import test_risk
from tests.trading.helpers import place
from tests.trading.test_risk import book, limits
from trading import services
from trading.errors import RiskRefused
from trading.models import MarketStatus, Order, OrderStatus

pytestmark = pytest.mark.django_db
D = Decimal
# The desk of test_risk: a market with a 0.001 minimum, and two clients with 100,000 USD and 10 BTC each.
market = pytest.fixture(test_risk.market.__wrapped__)
trader = pytest.fixture(test_risk.trader.__wrapped__)
maker = pytest.fixture(test_risk.maker.__wrapped__)


def test_a_stop_limit_is_collared_against_its_stop_price_not_the_mid(market, trader, maker):
    book(market, maker)  # mid 101
    market = limits(market, price_collar_bps=D("100"))  # 1%

    # Far from today's mid but within 1% of its stop: accepted.
    accepted = place(trader, market, "sell", type="stop_limit", size="0.1", price="80.00", stop_price=D("80.50"))
    before = Order.objects.filter(account=trader).count()
    with pytest.raises(RiskRefused) as refused:  # a sell limit 2% under its stop price
        place(trader, market, "sell", type="stop_limit", size="0.1", price="78.00", stop_price=D("80.00"))

    assert accepted.status == OrderStatus.NEW  # accepted; the matcher parks it until its trigger
    assert (refused.value.code, refused.value.field) == ("price_collar", "price")
    assert Order.objects.filter(account=trader).count() == before


def test_a_stop_market_order_is_not_collared_and_counts_its_notional_at_the_stop_price(market, trader, maker):
    book(market, maker)
    market = limits(market, price_collar_bps=D("100"), max_market_order_notional=D("1000"))

    far_stop = place(trader, market, "sell", type="stop", size="1", stop_price=D("50.00"))  # 50 <= 1000
    with pytest.raises(RiskRefused) as refused:  # 11 x 95 = 1045 > 1000
        place(trader, market, "sell", type="stop", size="11", stop_price=D("95.00"))
    with pytest.raises(RiskRefused) as by_funds:
        place(trader, market, "buy", type="stop", funds="1000.01", stop_price=D("110.00"))

    assert far_stop.status == OrderStatus.NEW  # accepted; the matcher parks it until its trigger
    assert (refused.value.code, refused.value.field) == ("order_notional_exceeded", "size")
    assert (by_funds.value.code, by_funds.value.field) == ("order_notional_exceeded", "funds")


def test_a_stop_limit_takes_the_limit_order_cap_and_is_allowed_in_a_limit_only_market(market, trader, maker):
    market = limits(market, max_limit_order_notional=D("500"), max_market_order_notional=D("1"))
    services.market_status_set(market=market, status=MarketStatus.LIMIT_ONLY, acting_user=None)
    market.refresh_from_db()

    placed = place(trader, market, "buy", type="stop_limit", size="4", price="120.00", stop_price=D("119.00"))
    with pytest.raises(RiskRefused) as refused:  # 5 x 120 = 600 > 500
        place(trader, market, "buy", type="stop_limit", size="5", price="120.00", stop_price=D("119.00"))

    assert placed.status == OrderStatus.NEW  # accepted; the matcher parks it until its trigger
    assert (refused.value.code, refused.value.field) == ("order_notional_exceeded", "size")


def test_a_waiting_stop_counts_toward_the_open_order_cap_and_the_daily_notional(market, trader):
    market = limits(market, max_open_orders=2)
    place(trader, market, "sell", type="stop", size="1", stop_price=D("90.00"))
    place(trader, market, "buy", type="stop", funds="100.00", stop_price=D("110.00"))
    with pytest.raises(RiskRefused) as capped:
        place(trader, market, "buy", size="0.1", price="100.00")

    market = limits(market, max_open_orders=None, max_daily_notional=D("700"))
    place(trader, market, "buy", type="stop_limit", size="5", price="100.00", stop_price=D("99.00"))  # 100 + 500
    with pytest.raises(RiskRefused) as daily:  # 600 committed by the waiting stops + 2 x 100 > 700
        place(trader, market, "buy", size="2", price="100.00")

    assert capped.value.code == "open_order_limit_reached"
    assert daily.value.code == "daily_notional_exceeded"
