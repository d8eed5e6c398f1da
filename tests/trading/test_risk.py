"""Pre-trade risk (issue 16, item 2): market modes, the price collar, notional caps per order and per client per
day, the open-order cap. Every refusal is a 4xx with a stable code and leaves nothing behind."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Role
from ledger.models import Hold
from tests.api import api_client_for
from tests.factories import ClientAccountFactory, MarketFactory, assert_balance, fund
from tests.reliability.invariants import assert_books_consistent
from tests.trading.helpers import match, place, reloaded
from trading import services
from trading.errors import KillSwitchEngaged, MarketNotOpen, RiskRefused
from trading.models import Market, MarketStatus, Order, OrderStatus
from trading.services import risk

pytestmark = pytest.mark.django_db
D = Decimal
ORDERS = reverse("order-list")


@pytest.fixture
def market():
    return MarketFactory(min_size=D("0.001"), max_size=D("100"))


@pytest.fixture
def trader():
    account = ClientAccountFactory()
    fund(account, "USD", "100000")
    fund(account, "BTC", "10")
    return account


@pytest.fixture
def maker():
    account = ClientAccountFactory()
    fund(account, "USD", "100000")
    fund(account, "BTC", "10")
    return account


def limits(market, **values) -> Market:
    """Set the market's risk limits directly (set-up; the four-eyes path is tested in test_risk_parameters)."""
    Market.objects.filter(pk=market.pk).update(**values)
    return Market.objects.select_related("base", "quote").get(pk=market.pk)


def book(market, maker, *, bid="100", ask="102", size="1"):
    """A resting bid and ask of ``maker`` (mid 101)."""
    orders = [place(maker, market, "buy", size=size, price=bid), place(maker, market, "sell", size=size, price=ask)]
    match(market)
    return orders


def nothing_left_behind(account, before_orders: int) -> None:
    assert Order.objects.filter(account=account).count() == before_orders
    assert not Hold.objects.filter(account__client=account, status="active").exists()
    assert_balance(account, "USD", "100000", held="0")
    assert_balance(account, "BTC", "10", held="0")


# --- market modes ------------------------------------------------------------------------------------------


def test_a_limit_only_market_refuses_market_orders_and_still_matches_limit_orders(market, trader, maker):
    services.market_status_set(market=market, status=MarketStatus.LIMIT_ONLY, acting_user=None)
    market.refresh_from_db()

    with pytest.raises(MarketNotOpen) as refused:
        place(trader, market, "buy", type="market", funds="100")
    resting = place(maker, market, "sell", size="1", price="100")
    taker = place(trader, market, "buy", size="1", price="100")
    match(market)

    assert (refused.value.code, refused.value.http_status, refused.value.field) == ("market_limit_only", 409, "type")
    assert reloaded(resting).status == reloaded(taker).status == OrderStatus.FILLED


def test_a_post_only_market_accepts_only_post_only_orders(market, trader, maker):
    services.market_status_set(market=market, status=MarketStatus.POST_ONLY, acting_user=None)
    market.refresh_from_db()

    with pytest.raises(MarketNotOpen) as plain:
        place(trader, market, "buy", size="1", price="100")
    with pytest.raises(MarketNotOpen) as market_order:
        place(trader, market, "buy", type="market", funds="100")
    maker_order = place(trader, market, "buy", size="1", price="100", post_only=True)
    match(market)

    assert plain.value.code == market_order.value.code == "market_post_only"
    assert reloaded(maker_order).status == OrderStatus.OPEN
    assert Order.objects.filter(account=trader).count() == 1


def test_the_api_answers_a_mode_refusal_with_its_code_and_leaves_nothing(market):
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "USD", "1000")
    services.market_status_set(market=market, status=MarketStatus.LIMIT_ONLY, acting_user=None)

    response = client.post(ORDERS, {"market": "BTC-USD", "side": "buy", "type": "market", "funds": "100"},
                           format="json")

    assert response.status_code == 409 and response.json()["code"] == "market_limit_only"
    assert not Order.objects.exists() and not Hold.objects.exists()


# --- the price collar ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("side, price, refused", [
    ("buy", "111.10", False),   # mid 101 + 10% = 111.10: at the collar is allowed
    ("buy", "111.11", True),
    ("sell", "90.90", False),   # 101 - 10.10
    ("sell", "90.89", True),
])
def test_a_taker_priced_more_than_the_collar_through_the_mid_is_refused(market, trader, maker, side, price, refused):
    book(market, maker)
    market = limits(market, price_collar_bps=D("1000"))
    count = Order.objects.filter(account=trader).count()

    if not refused:
        assert place(trader, market, side, size="0.5", price=price).status == OrderStatus.NEW
        return
    with pytest.raises(RiskRefused) as error:
        place(trader, market, side, size="0.5", price=price)
    assert (error.value.code, error.value.http_status, error.value.field) == ("price_collar", 400, "price")
    nothing_left_behind(trader, count)


def test_without_a_two_sided_book_the_collar_measures_from_the_last_trade(market, trader, maker):
    place(maker, market, "sell", size="1", price="200")
    place(trader, market, "buy", size="1", price="200")
    match(market)  # last trade 200, empty book
    market = limits(market, price_collar_bps=D("500"))

    with pytest.raises(RiskRefused):
        place(trader, market, "buy", size="0.1", price="210.01")
    assert place(trader, market, "buy", size="0.1", price="210.00").status == OrderStatus.NEW


def test_a_market_without_a_trade_or_a_two_sided_book_has_nothing_to_collar_against(market, trader):
    market = limits(market, price_collar_bps=D("100"))
    assert place(trader, market, "buy", size="0.1", price="5000").status == OrderStatus.NEW


def test_a_post_only_order_never_takes_so_the_collar_does_not_apply(market, trader, maker):
    book(market, maker)
    market = limits(market, price_collar_bps=D("100"))
    assert place(trader, market, "sell", size="0.1", price="500", post_only=True).status == OrderStatus.NEW


def test_a_market_order_that_would_walk_the_book_through_the_collar_is_refused(market, trader, maker):
    book(market, maker, bid="100", ask="102", size="1")
    place(maker, market, "sell", size="1", price="120")
    match(market)
    market = limits(market, price_collar_bps=D("1000"))  # mid 101: buys up to 111.10
    count = Order.objects.filter(account=trader).count()

    with pytest.raises(RiskRefused) as by_size:
        place(trader, market, "buy", type="market", size="1.5")  # reaches 120
    with pytest.raises(RiskRefused) as by_funds:
        place(trader, market, "buy", type="market", funds="150")  # 102 buys the first level, 48 more at 120
    nothing_left_behind(trader, count)
    allowed = place(trader, market, "buy", type="market", funds="102")  # exactly the first level

    assert by_size.value.code == by_funds.value.code == "price_collar"
    assert (by_size.value.field, by_funds.value.field) == ("size", "funds")
    assert allowed.status == OrderStatus.NEW


# --- notional caps -------------------------------------------------------------------------------------------


def test_a_limit_order_above_the_limit_order_notional_cap_is_refused(market, trader):
    market = limits(market, max_limit_order_notional=D("1000"))

    with pytest.raises(RiskRefused) as refused:
        place(trader, market, "buy", size="10.001", price="100")  # 1000.10
    nothing_left_behind(trader, 0)
    at_cap = place(trader, market, "buy", size="10", price="100")

    assert (refused.value.code, refused.value.field) == ("order_notional_exceeded", "size")
    assert at_cap.status == OrderStatus.NEW


def test_a_market_order_above_the_market_order_notional_cap_is_refused(market, trader, maker):
    book(market, maker, bid="100", ask="100.01", size="5")
    market = limits(market, max_market_order_notional=D("300"))
    count = Order.objects.filter(account=trader).count()

    with pytest.raises(RiskRefused) as by_funds:
        place(trader, market, "buy", type="market", funds="300.01")
    with pytest.raises(RiskRefused) as by_size:
        place(trader, market, "sell", type="market", size="3.001")  # 3.001 x 100 against the bid
    nothing_left_behind(trader, count)

    assert by_funds.value.code == by_size.value.code == "order_notional_exceeded"
    assert place(trader, market, "sell", type="market", size="3").status == OrderStatus.NEW
    # The limit-order cap is separate: none is set, so a large limit order passes.
    assert place(trader, market, "buy", size="50", price="100").status == OrderStatus.NEW


def test_the_daily_notional_cap_counts_what_was_traded_and_what_open_orders_commit(market, trader, maker):
    market = limits(market, max_daily_notional=D("1000"))
    resting = place(maker, market, "sell", size="3", price="100")
    taken = place(trader, market, "buy", size="3", price="100")  # 300 traded
    match(market)
    open_order = place(trader, market, "buy", size="5", price="90")  # 450 committed
    cancelled = place(trader, market, "buy", size="2", price="90")
    services.order_cancel(order=cancelled, acting_user=None)  # traded nothing: counts nothing

    assert risk.daily_notional_used(account=trader, market=market) == D("750")
    with pytest.raises(RiskRefused) as refused:
        place(trader, market, "sell", size="2.51", price="100")  # 750 + 251
    assert (refused.value.code, refused.value.field) == ("daily_notional_exceeded", "size")
    assert place(trader, market, "sell", size="2.5", price="100").status == OrderStatus.NEW  # exactly 1000
    assert reloaded(resting).status == reloaded(taken).status == OrderStatus.FILLED and open_order.pk


def test_orders_placed_more_than_24_hours_ago_leave_the_daily_cap(market, trader):
    market = limits(market, max_daily_notional=D("1000"))
    old = place(trader, market, "buy", size="9", price="100")
    Order.objects.filter(pk=old.pk).update(created_at=old.created_at - timedelta(hours=24, seconds=1))

    assert risk.daily_notional_used(account=trader, market=market) == 0
    assert place(trader, market, "buy", size="10", price="100").status == OrderStatus.NEW


# --- the open-order cap --------------------------------------------------------------------------------------


def test_the_open_order_cap_counts_the_clients_open_orders_in_the_market(market, trader, maker):
    market = limits(market, max_open_orders=2)
    first = place(trader, market, "buy", size="1", price="90")
    place(trader, market, "buy", size="1", price="91")
    place(maker, market, "buy", size="1", price="91")  # another client's order does not count

    with pytest.raises(RiskRefused) as refused:
        place(trader, market, "buy", size="1", price="92")
    assert refused.value.code == "open_order_limit_reached"
    assert Order.objects.filter(account=trader).count() == 2

    services.order_cancel(order=first, acting_user=None)
    assert place(trader, market, "buy", size="1", price="92").status == OrderStatus.NEW
    other = MarketFactory(symbol="ETH-USD", base_id="ETH")
    assert place(trader, other, "buy", size="1", price="10").status == OrderStatus.NEW  # another market


def test_refusals_leave_the_books_consistent(market, trader, maker):
    book(market, maker)
    market = limits(market, price_collar_bps=D("100"), max_limit_order_notional=D("50"), max_open_orders=1)
    for kwargs in ({"size": "1", "price": "150"}, {"size": "0.6", "price": "100"}):
        with pytest.raises(RiskRefused):
            place(trader, market, "buy", **kwargs)
    assert_books_consistent()


def test_a_kill_switch_refusal_comes_first(market, trader):
    services.kill_switch_engage(account=trader, acting_user=None, reason="test")
    with pytest.raises(KillSwitchEngaged) as refused:
        place(trader, market, "buy", size="1", price="100")
    assert (refused.value.code, refused.value.http_status) == ("kill_switch_engaged", 403)
    nothing_left_behind(trader, 0)


@pytest.mark.parametrize("limit, body, code", [
    ({"price_collar_bps": D("1000")}, {"size": "0.1", "price": "150"}, "price_collar"),
    ({"max_limit_order_notional": D("10")}, {"size": "0.2", "price": "101"}, "order_notional_exceeded"),
    ({"max_daily_notional": D("10")}, {"size": "0.2", "price": "101"}, "daily_notional_exceeded"),
    ({"max_open_orders": 1}, {"size": "0.01", "price": "90"}, "open_order_limit_reached"),
])
def test_the_api_answers_each_risk_refusal_with_a_400_and_its_code(market, maker, limit, body, code):
    client = api_client_for(role=Role.TRADER)
    fund(client.account, "USD", "1000")
    book(market, maker)
    place(client.account, market, "buy", size="0.01", price="90")
    limits(market, **limit)
    held = Hold.objects.filter(account__client=client.account).count()

    response = client.post(ORDERS, {"market": "BTC-USD", "side": "buy", **body}, format="json")

    assert response.status_code == 400 and response.json()["code"] == code, response.json()
    assert Order.objects.filter(account=client.account).count() == 1
    assert Hold.objects.filter(account__client=client.account).count() == held
