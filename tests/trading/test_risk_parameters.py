"""Risk limits change under four eyes (issue 16, item 2): proposed by one supervisor, applied only when another
approves, audited; a limit can be removed; bad values are refused with a code. Through the console too."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from audit.models import AuditLog
from tests.admin.conftest import staff_in
from tests.factories import ClientAccountFactory, MarketFactory, fund
from tests.trading.helpers import place
from trading import services
from trading.errors import ParameterError, RiskRefused
from trading.models import Market, ParameterChange, ParameterChangeStatus

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def supervisors():
    from console.roles import SUPERVISORS

    return staff_in(SUPERVISORS, username="sup-a"), staff_in(SUPERVISORS, username="sup-b")


def test_risk_limits_apply_only_when_a_second_supervisor_approves(supervisors):
    proposer, approver = supervisors
    market = MarketFactory()
    trader = ClientAccountFactory()
    fund(trader, "USD", "100000")

    change = services.parameter_change_propose(market=market, values={
        "max_limit_order_notional": "1000", "max_open_orders": "3", "price_collar_bps": "1500"},
        reason="Paxos-like limits", acting_user=proposer)
    assert place(trader, market, "buy", size="20", price="100").status == "new"  # not applied yet

    with pytest.raises(Exception) as own:
        services.parameter_change_approve(change=change, acting_user=proposer)
    services.parameter_change_approve(change=change, acting_user=approver)
    market = Market.objects.select_related("base", "quote").get(pk=market.pk)

    assert own.value.code == "four_eyes"
    assert (market.max_limit_order_notional, market.max_open_orders, market.price_collar_bps) == (
        D("1000"), 3, D("1500"))
    assert change.before["max_open_orders"] is None
    with pytest.raises(RiskRefused) as refused:
        place(trader, market, "buy", size="20", price="100")
    assert refused.value.code == "order_notional_exceeded"
    assert AuditLog.objects.filter(action="market.change").count() == 1


def test_a_risk_limit_is_removed_by_proposing_none(supervisors):
    proposer, approver = supervisors
    market = MarketFactory(max_open_orders=1)
    change = services.parameter_change_propose(market=market, values={"max_open_orders": None},
                                               reason="lift the cap", acting_user=proposer)
    services.parameter_change_approve(change=change, acting_user=approver)
    assert change.values == {"max_open_orders": None} and change.before["max_open_orders"] == "1"
    assert Market.objects.get(pk=market.pk).max_open_orders is None


@pytest.mark.parametrize("values, code, field", [
    ({"price_collar_bps": "0"}, "not_positive", "price_collar_bps"),
    ({"price_collar_bps": "10000.5"}, "invalid_parameter", "price_collar_bps"),
    ({"max_daily_notional": "-5"}, "not_positive", "max_daily_notional"),
    ({"max_open_orders": "2.5"}, "invalid_parameter", "max_open_orders"),
    ({"max_market_order_notional": "lots"}, "invalid_parameter", "max_market_order_notional"),
])
def test_bad_risk_limits_are_refused_with_a_code(supervisors, values, code, field):
    with pytest.raises(ParameterError) as refused:
        services.parameter_change_propose(market=MarketFactory(), values=values, reason="x",
                                          acting_user=supervisors[0])
    assert (refused.value.code, refused.value.field) == (code, field)
    assert not ParameterChange.objects.exists()


def test_the_database_refuses_a_risk_limit_the_service_would(supervisors):
    from django.db import IntegrityError, transaction

    market = MarketFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Market.objects.filter(pk=market.pk).update(price_collar_bps=D("0"))


def test_supervisors_propose_and_approve_risk_limits_in_the_console(client, supervisors):
    proposer, approver = supervisors
    market = MarketFactory(max_daily_notional=D("5000"))
    client.force_login(proposer)
    client.post(reverse("admin:trading_parameterchange_add"), {
        "market": market.pk, "tier": "", "price_collar_bps": "1500", "max_market_order_notional": "500000",
        "max_limit_order_notional": "1500000", "remove_limits": ["max_daily_notional"], "reason": "Paxos limits"},
        follow=True)
    change = ParameterChange.objects.get()
    assert change.values == {"price_collar_bps": "1500", "max_market_order_notional": "500000",
                             "max_limit_order_notional": "1500000", "max_daily_notional": None}

    client.force_login(approver)
    client.post(reverse("admin:trading_parameterchange_changelist"),
                {"action": "approve_selected", ACTION_CHECKBOX_NAME: [change.pk]}, follow=True)

    market.refresh_from_db()
    assert ParameterChange.objects.get().status == ParameterChangeStatus.APPROVED
    assert (market.price_collar_bps, market.max_market_order_notional, market.max_limit_order_notional,
            market.max_daily_notional) == (D("1500"), D("500000"), D("1500000"), None)


def test_the_change_page_decides_a_proposal_with_four_eyes(client, supervisors):
    proposer, approver = supervisors
    market = MarketFactory()
    change = services.parameter_change_propose(market=market, tier="", values={"max_open_orders": 50},
                                               reason="runaway bots", acting_user=proposer)
    page = reverse("admin:trading_parameterchange_change", args=[change.pk])
    approve = reverse("admin:trading_parameterchange_approve", args=[change.pk])

    client.force_login(proposer)
    assert b'id="approve-parameterchange"' in client.get(page).content
    refused = client.post(approve, follow=True)
    assert "four-eyes" in refused.content.decode().lower() or "four eyes" in refused.content.decode().lower()
    assert ParameterChange.objects.get().status == ParameterChangeStatus.PROPOSED

    client.force_login(approver)
    client.post(approve, follow=True)
    market.refresh_from_db()
    assert (ParameterChange.objects.get().status, market.max_open_orders) == (ParameterChangeStatus.APPROVED, 50)
