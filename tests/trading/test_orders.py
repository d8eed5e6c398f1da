"""Placing and cancelling orders: validation, holds, idempotency, audit."""

from decimal import Decimal

import pytest

from accounts.errors import AccountNotOperational
from accounts.models import AccountStatus, AssetLimit, KycStatus
from audit.models import AuditLog
from ledger.errors import InsufficientFunds
from ledger.models import Hold
from tests.factories import ClientAccountFactory, MarketFactory, StaffFactory, assert_balance, fund
from tests.trading.helpers import match, place, reloaded
from trading import services
from trading.errors import InvalidOrder, MarketNotOpen, OrderConflict, OrderNotOpen
from trading.models import MarketStatus, Order, OrderStatus

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def market():
    return MarketFactory(min_size=D("0.001"), max_size=D("10"))


@pytest.fixture
def trader():
    account = ClientAccountFactory()
    fund(account, "USD", "100000")
    fund(account, "BTC", "5")
    return account


@pytest.mark.parametrize(
    "kwargs, code, field",
    [
        ({"side": "buy", "size": "0.1", "price": "100.001"}, "invalid_tick", "price"),
        ({"side": "buy", "size": "0.123456789", "price": "100"}, "too_precise", "size"),
        ({"side": "buy", "size": "0.100005", "price": "100"}, "invalid_lot", "size"),
        ({"side": "buy", "size": "0.0005", "price": "100"}, "size_below_minimum", "size"),
        ({"side": "buy", "size": "11", "price": "100"}, "size_above_maximum", "size"),
        ({"side": "buy", "size": "-1", "price": "100"}, "not_positive", "size"),
        ({"side": "buy", "size": "0.1"}, "price_required", "price"),
        ({"side": "buy", "price": "100"}, "size_required", "size"),
        ({"side": "hold", "size": "0.1", "price": "100"}, "invalid_choice", "side"),
        ({"side": "buy", "size": "0.1", "price": "100", "funds": "10"}, "funds_not_allowed", "funds"),
        ({"side": "buy", "size": "0.1", "price": "100", "post_only": True, "time_in_force": "ioc"},
         "post_only_requires_gtc", "post_only"),
        ({"side": "buy", "type": "market", "size": "0.1", "price": "100"}, "price_not_allowed", "price"),
        ({"side": "buy", "type": "market"}, "size_or_funds", "size"),
        ({"side": "buy", "type": "market", "size": "0.1", "funds": "10"}, "size_or_funds", "size"),
        ({"side": "sell", "type": "market", "funds": "10"}, "funds_not_allowed", "funds"),
        ({"side": "buy", "type": "market", "funds": "10.001"}, "too_precise", "funds"),
        ({"side": "buy", "type": "market", "funds": "10", "time_in_force": "fok"}, "fok_requires_size",
         "time_in_force"),
        ({"side": "buy", "type": "market", "size": "0.1", "post_only": True}, "post_only_requires_limit",
         "post_only"),
    ],
)
def test_malformed_orders_are_refused_with_a_code_and_a_field(market, trader, kwargs, code, field):
    with pytest.raises(InvalidOrder) as refused:
        place(trader, market, **kwargs)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert not Order.objects.exists() and not Hold.objects.exists()


@pytest.mark.parametrize(
    "change, code",
    [
        ({"status": AccountStatus.FROZEN}, "account_frozen"),
        ({"status": AccountStatus.PENDING}, "account_not_active"),
        ({"kyc_status": KycStatus.PENDING}, "kyc_not_approved"),
        ({"can_trade": False}, "trading_disabled"),
    ],
)
def test_only_active_approved_trading_accounts_may_place_orders(market, trader, change, code):
    for name, value in change.items():
        setattr(trader, name, value)
    trader.save()
    with pytest.raises(AccountNotOperational) as refused:
        place(trader, market, "buy", size="0.1", price="100")
    assert refused.value.code == code


def test_per_asset_maximum_order_sizes_apply_to_size_and_notional(market, trader):
    AssetLimit.objects.create(account=trader, asset_id="BTC", max_order_size=D("0.5"))
    AssetLimit.objects.create(account=trader, asset_id="USD", max_order_size=D("1000"))
    with pytest.raises(InvalidOrder) as by_size:
        place(trader, market, "sell", size="0.6", price="100")
    with pytest.raises(InvalidOrder) as by_notional:
        place(trader, market, "buy", size="0.2", price="5000.01")
    with pytest.raises(InvalidOrder) as by_funds:
        place(trader, market, "buy", type="market", funds="1000.01")
    assert {by_size.value.code, by_notional.value.code, by_funds.value.code} == {"order_size_limit_exceeded"}
    assert place(trader, market, "buy", size="0.2", price="5000").status == OrderStatus.NEW


def test_orders_in_a_market_that_is_not_open_are_refused(market, trader):
    market.status = MarketStatus.CANCEL_ONLY
    market.save()
    with pytest.raises(MarketNotOpen):
        place(trader, market, "buy", size="0.1", price="100")


def test_a_buy_holds_its_worst_case_cost_and_a_sell_its_size(market, trader):
    buy = place(trader, market, "buy", size="0.123", price="20000.01")
    assert buy.hold.asset_id == "USD" and buy.hold.amount == D("2464.93")  # ceil(2460.00123 x 1.002)
    sell = place(trader, market, "sell", size="0.5", price="30000")
    assert sell.hold.asset_id == "BTC" and sell.hold.amount == D("0.5")
    assert_balance(trader, "USD", "100000", held="2464.93")
    assert_balance(trader, "BTC", "5", held="0.5")


def test_insufficient_available_balance_refuses_the_order_and_leaves_nothing(market):
    poor = ClientAccountFactory()
    fund(poor, "USD", "100")
    with pytest.raises(InsufficientFunds):
        place(poor, market, "buy", size="0.01", price="10000")  # needs 100.20
    assert not Order.objects.exists()
    assert_balance(poor, "USD", "100", held="0")


def test_the_same_client_order_id_returns_the_same_order_and_holds_once(market, trader):
    first = place(trader, market, "buy", size="0.1", price="100", client_order_id="abc-1")
    again = place(trader, market, "buy", size="0.10", price="100.00", client_order_id="abc-1")
    assert again.pk == first.pk
    assert Order.objects.count() == 1 and Hold.objects.count() == 1
    with pytest.raises(OrderConflict):
        place(trader, market, "buy", size="0.2", price="100", client_order_id="abc-1")


def test_a_client_order_id_has_at_most_64_characters(market, trader):
    with pytest.raises(InvalidOrder) as refused:
        place(trader, market, "buy", size="0.1", price="100", client_order_id="x" * 65)
    assert refused.value.field == "client_order_id"


def test_client_order_ids_are_per_account(market, trader):
    other = ClientAccountFactory()
    fund(other, "USD", "1000")
    mine = place(trader, market, "buy", size="0.1", price="100", client_order_id="same")
    theirs = place(other, market, "buy", size="0.1", price="100", client_order_id="same")
    assert mine.pk != theirs.pk


def test_placing_and_cancelling_are_audited(market, trader):
    staff = StaffFactory()
    order = place(trader, market, "buy", size="0.1", price="100")
    services.order_cancel(order=order, acting_user=staff, reason="client called the desk")
    actions = list(AuditLog.objects.filter(object_id=str(order.pk), object_type="trading.order")
                   .order_by("id").values_list("action", "actor_label"))
    assert actions == [("order.place", "system"), ("order.cancel", staff.username)]
    assert reloaded(order).reason == "client called the desk"


def test_cancel_is_idempotent_and_a_filled_order_cannot_be_cancelled(market, trader):
    order = place(trader, market, "buy", size="0.1", price="100")
    services.order_cancel(order=order, acting_user=None)
    assert services.order_cancel(order=order, acting_user=None).status == OrderStatus.CANCELLED
    assert AuditLog.objects.filter(action="order.cancel").count() == 1

    other = ClientAccountFactory()
    fund(other, "BTC", "1")
    ask = place(other, market, "sell", size="0.1", price="100")
    match(market)
    place(trader, market, "buy", size="0.1", price="100")
    match(market)
    with pytest.raises(OrderNotOpen):
        services.order_cancel(order=ask, acting_user=None)


def test_market_status_changes_need_the_permission_and_are_audited(market):
    with pytest.raises(Exception) as refused:
        services.market_status_set(market=market, status=MarketStatus.HALTED, acting_user=StaffFactory())
    assert refused.value.code == "permission_denied"
    services.market_status_set(market=market, status=MarketStatus.HALTED, acting_user=None, reason="incident 42")
    entry = AuditLog.objects.get(action="market.status_set")
    assert (entry.before, entry.after) == ({"status": "open"}, {"status": "halted", "reason": "incident 42"})
