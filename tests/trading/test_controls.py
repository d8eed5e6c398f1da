"""A client's kill switch and dead-man switch (issue 16, item 2): both cancel every open order and release every
hold; the kill switch refuses new orders until released; the dead-man switch lapses on a controllable clock."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import Role
from audit.models import AuditLog
from console.roles import OPERATIONS
from events.models import Event
from ledger.models import Hold
from tests.api import api_client_for
from tests.factories import ClientAccountFactory, MarketFactory, StaffFactory, assert_balance, fund
from tests.reliability.invariants import assert_books_consistent
from tests.trading.helpers import match, place, reloaded
from trading import services
from trading.errors import KillSwitchEngaged
from trading.models import AccountTradingControl, KillSwitchHolder, Order, OrderStatus
from trading.services import controls
from trading.tasks import cancel_after_sweep

pytestmark = pytest.mark.django_db
D = Decimal
KILL_SWITCH = reverse("kill-switch")
CANCEL_AFTER = reverse("order-cancel-after")
ORDERS = reverse("order-list")


@pytest.fixture
def market():
    return MarketFactory()


@pytest.fixture
def admin_client():
    client = api_client_for(role=Role.ADMIN)
    fund(client.account, "USD", "10000")
    fund(client.account, "BTC", "2")
    return client


@pytest.fixture
def operator():
    user = StaffFactory(username="ops")
    user.groups.add(Group.objects.get(name=OPERATIONS))
    return user


def open_orders(account, market):
    """A resting buy, a resting partially filled sell and a ``new`` order: every kind of open order."""
    counterparty = ClientAccountFactory()
    fund(counterparty, "USD", "10000")
    resting_buy = place(account, market, "buy", size="0.5", price="100")
    partial_sell = place(account, market, "sell", size="1", price="200")
    place(counterparty, market, "buy", size="0.4", price="200")
    match(market)
    new = place(account, market, "buy", size="0.1", price="90")
    assert reloaded(partial_sell).status == OrderStatus.PARTIALLY_FILLED
    return [resting_buy, partial_sell, new]


def assert_all_cancelled(orders, reason):
    for order in orders:
        order = reloaded(order)
        assert (order.status, order.reason) == (OrderStatus.CANCELLED, reason)
        assert order.hold.status == "released"


# --- the kill switch ---------------------------------------------------------------------------------------


def test_the_clients_admin_engages_the_kill_switch_every_order_is_cancelled_and_new_ones_refused(admin_client,
                                                                                                 market):
    account = admin_client.account
    orders = open_orders(account, market)

    engaged = admin_client.post(KILL_SWITCH, {"engaged": True, "reason": "runaway bot"}, format="json")
    refused = admin_client.post(ORDERS, {"market": "BTC-USD", "side": "buy", "size": "0.1", "price": "100"},
                                format="json")

    assert engaged.status_code == 200, engaged.json()
    assert engaged.json() | {"kill_switch_at": None} == {
        "account": account.pk, "kill_switch": True, "kill_switch_by": "client", "kill_switch_reason": "runaway bot",
        "kill_switch_at": None, "cancel_after": None, "cancel_after_timeout": None}
    assert refused.status_code == 403 and refused.json()["code"] == "kill_switch_engaged"
    assert_all_cancelled(orders, controls.KILL_SWITCH)
    assert Order.objects.filter(account=account).count() == 3
    assert not Hold.objects.filter(account__client=account, status="active").exists()
    assert_balance(account, "USD", D("10000") + D("80") - D("0.08"), held="0")  # sold 0.4 @ 200, fee 0.1%
    event = Event.objects.filter(type="kill_switch.engaged").get()
    assert event.account_id == account.pk
    assert AuditLog.objects.filter(action="kill_switch.engage", account=account).count() == 1
    assert admin_client.get(KILL_SWITCH).json()["kill_switch"] is True
    assert_books_consistent()


def test_the_client_releases_its_own_kill_switch_and_may_trade_again(admin_client, market):
    admin_client.post(KILL_SWITCH, {"engaged": True}, format="json")

    released = admin_client.post(KILL_SWITCH, {"engaged": False, "reason": "bot fixed"}, format="json")
    placed = admin_client.post(ORDERS, {"market": "BTC-USD", "side": "buy", "size": "0.1", "price": "100"},
                               format="json")

    assert released.status_code == 200 and released.json()["kill_switch"] is False
    assert placed.status_code == 201
    assert list(Event.objects.filter(type__startswith="kill_switch.").values_list("type", flat=True)) == [
        "kill_switch.engaged", "kill_switch.released"]


def test_a_trader_cannot_engage_the_kill_switch_only_an_admin(market):
    trader = api_client_for(role=Role.TRADER)
    response = trader.post(KILL_SWITCH, {"engaged": True}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "account_admin_required"
    assert not AccountTradingControl.objects.exists()


def test_a_kill_switch_engaged_by_operations_is_released_only_by_operations(admin_client, market, operator):
    orders = open_orders(admin_client.account, market)
    services.kill_switch_engage(account=admin_client.account, acting_user=operator, reason="compromised key")

    by_client = admin_client.post(KILL_SWITCH, {"engaged": False}, format="json")
    control = services.kill_switch_release(account=admin_client.account, acting_user=operator, reason="cleared")

    assert by_client.status_code == 403 and by_client.json()["code"] == "kill_switch_held_by_operations"
    assert control.kill_switch is False
    assert_all_cancelled(orders, controls.KILL_SWITCH)


def test_operations_take_over_a_switch_the_client_engaged(admin_client, operator):
    admin_client.post(KILL_SWITCH, {"engaged": True}, format="json")
    control = services.kill_switch_engage(account=admin_client.account, acting_user=operator, reason="review")
    assert control.kill_switch_by == KillSwitchHolder.OPERATIONS
    assert admin_client.post(KILL_SWITCH, {"engaged": False}, format="json").status_code == 403


def test_staff_without_the_permission_cannot_engage_a_kill_switch(admin_client):
    with pytest.raises(Exception) as refused:
        services.kill_switch_engage(account=admin_client.account, acting_user=StaffFactory(), reason="x")
    assert refused.value.code == "permission_denied"


def test_operations_engage_a_kill_switch_in_the_console(client, admin_client, market, operator):
    orders = open_orders(admin_client.account, market)
    client.force_login(operator)

    response = client.post(reverse("admin:trading_accounttradingcontrol_add"),
                           {"account": admin_client.account.pk, "reason": "suspicious activity"}, follow=True)

    assert response.status_code == 200
    control = AccountTradingControl.objects.get(account=admin_client.account)
    assert (control.kill_switch, control.kill_switch_by) == (True, KillSwitchHolder.OPERATIONS)
    assert_all_cancelled(orders, controls.KILL_SWITCH)
    with pytest.raises(KillSwitchEngaged):
        place(admin_client.account, market, "buy", size="0.1", price="100")


# --- the dead-man switch (cancel-after) -------------------------------------------------------------------


def test_the_dead_man_switch_cancels_everything_when_it_lapses_and_not_a_microsecond_before(admin_client, market,
                                                                                           clock):
    orders = open_orders(admin_client.account, market)
    armed = admin_client.post(CANCEL_AFTER, {"timeout": 10}, format="json")
    deadline = clock.at + timedelta(seconds=10)

    clock.advance(seconds=10, microseconds=-1)
    before = cancel_after_sweep()
    clock.advance(microseconds=1)
    lapsed = cancel_after_sweep()

    assert armed.status_code == 200 and armed.json()["cancel_after_timeout"] == 10
    assert armed.json()["cancel_after"] == deadline.isoformat().replace("+00:00", "Z")
    assert before == [] and lapsed == [admin_client.account.pk]
    assert_all_cancelled(orders, controls.CANCEL_AFTER_LAPSED)
    assert AccountTradingControl.objects.get(account=admin_client.account).cancel_after is None
    assert cancel_after_sweep() == []  # fired once, then disarmed
    assert_books_consistent()


def test_renewing_the_dead_man_switch_pushes_the_deadline(admin_client, market, clock):
    order = place(admin_client.account, market, "buy", size="0.1", price="100")
    admin_client.post(CANCEL_AFTER, {"timeout": 10}, format="json")
    clock.advance(seconds=8)
    admin_client.post(CANCEL_AFTER, {"timeout": 10}, format="json")
    clock.advance(seconds=8)  # 16 s after arming, 8 s after renewing

    assert cancel_after_sweep() == []
    assert reloaded(order).status == OrderStatus.NEW
    clock.advance(seconds=2)
    assert cancel_after_sweep() == [admin_client.account.pk]


def test_a_zero_timeout_disarms_the_dead_man_switch(admin_client, market, clock):
    order = place(admin_client.account, market, "buy", size="0.1", price="100")
    admin_client.post(CANCEL_AFTER, {"timeout": 10}, format="json")
    disarmed = admin_client.post(CANCEL_AFTER, {"timeout": 0}, format="json")
    clock.advance(seconds=60)

    assert disarmed.json()["cancel_after"] is None
    assert cancel_after_sweep() == []
    assert reloaded(order).status == OrderStatus.NEW
    assert list(AuditLog.objects.filter(action__startswith="cancel_after.").values_list("action", flat=True)
                .order_by("id")) == ["cancel_after.arm", "cancel_after.disarm"]


@pytest.mark.parametrize("timeout, code", [(4, "invalid_timeout"), (86401, "max_value"), (-1, "min_value"),
                                           ("soon", "invalid")])
def test_a_timeout_out_of_range_is_refused(admin_client, timeout, code):
    response = admin_client.post(CANCEL_AFTER, {"timeout": timeout}, format="json")
    assert response.status_code == 400 and response.json()["code"] == code
    assert response.json()["field"] == "timeout"
    assert not AccountTradingControl.objects.filter(cancel_after__isnull=False).exists()


def test_a_trader_may_arm_the_dead_man_switch_a_read_only_key_may_not(market):
    trader = api_client_for(role=Role.TRADER)
    viewer = api_client_for(role=Role.VIEWER)
    assert trader.post(CANCEL_AFTER, {"timeout": 30}, format="json").status_code == 200
    assert viewer.post(CANCEL_AFTER, {"timeout": 30}, format="json").json()["code"] == "scope_required"


def test_the_kill_switch_also_refuses_quotes_and_their_execution(desk, clock):
    from tests.trading.quote_desk import client_with
    from trading.services import quotes

    alice = client_with(USD="1000")
    quote = quotes.quote_create(account=alice, market=desk, side="buy", size=D("0.1"), acting_user=None)
    services.kill_switch_engage(account=alice, acting_user=None, reason="stop")

    with pytest.raises(KillSwitchEngaged):
        quotes.quote_create(account=alice, market=desk, side="buy", size=D("0.1"), acting_user=None)
    with pytest.raises(KillSwitchEngaged):
        quotes.quote_execute(quote=quote, idempotency_key="k", acting_user=None)


def test_the_clients_activity_shows_its_trading_controls_without_an_operations_reason(admin_client, operator):
    admin_client.post(CANCEL_AFTER, {"timeout": 60}, format="json")
    services.kill_switch_engage(account=admin_client.account, acting_user=operator, reason="AML hold, do not tell")

    rows = admin_client.get("/api/v1/audit-log/?limit=50").json()["results"]

    by_action = {row["action"]: row for row in rows}
    assert {"cancel_after.arm", "kill_switch.engage"} <= set(by_action)
    engaged = by_action["kill_switch.engage"]["after"]
    assert (engaged["kill_switch"], engaged["kill_switch_by"]) == (True, "operations")
    assert "AML hold" not in str(rows)
