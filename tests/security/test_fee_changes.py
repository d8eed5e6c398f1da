"""Issue 18, finding 9 (first half): "Fee rates have no upper bound: a supervisor set 1.5".

Fee rates are bounded (0 to 5%) by validation with a code and by the database; fee-rate and market-parameter
changes are proposed by one supervisor and applied only when another approves (four eyes, in the service and
the database). Through the console, as a supervisor would do it.
"""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from accounts.models import Tier
from audit.models import AuditLog
from tests.factories import ClientAccountFactory, MarketFactory, fund
from tests.trading.helpers import place
from trading import services
from trading.errors import ParameterError
from trading.models import FeeSchedule, Market, ParameterChange, ParameterChangeStatus

pytestmark = pytest.mark.django_db
D = Decimal
PROPOSE = reverse("admin:trading_parameterchange_add")


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def propose(client, market, **values):
    data = {"market": market.pk if market else "", "tier": "", "maker_fee_rate": "", "taker_fee_rate": "",
            "min_size": "", "max_size": "", "reason": "Fee review Q3", **values}
    return client.post(PROPOSE, data, follow=True)


def decide(client, change, action, **extra):
    return client.post(reverse("admin:trading_parameterchange_changelist"),
                       {"action": action, ACTION_CHECKBOX_NAME: [change.pk], **extra}, follow=True)


def test_a_fee_rate_of_150_percent_is_refused_with_a_code_everywhere(client, supervisor):
    market = MarketFactory()
    client.force_login(supervisor)

    page = propose(client, market, taker_fee_rate="1.5")
    with pytest.raises(ParameterError) as refused:
        services.parameter_change_propose(market=market, values={"taker_fee_rate": "1.5"}, reason="x",
                                          acting_user=supervisor)
    new_market = client.post(reverse("admin:trading_market_add"), {
        "symbol": "ETH-USD", "base": "ETH", "quote": "USD", "tick_size": "0.01", "lot_size": "0.0001",
        "min_size": "0.0001", "max_size": "100", "maker_fee_rate": "0.001", "taker_fee_rate": "1.5"})

    assert "A fee rate must be between 0 and 0.05 (5%)." in page.context["form"].errors["taker_fee_rate"]
    assert (refused.value.code, refused.value.field) == ("fee_rate_out_of_range", "taker_fee_rate")
    assert new_market.status_code == 200 and "taker_fee_rate" in new_market.context["adminform"].form.errors
    assert not ParameterChange.objects.exists() and not Market.objects.filter(symbol="ETH-USD").exists()
    assert Market.objects.get(pk=market.pk).taker_fee_rate == D("0.002")


@pytest.mark.parametrize("statement", [
    "UPDATE trading_market SET taker_fee_rate = 1.5",
    "UPDATE trading_market SET maker_fee_rate = -0.001",
    "INSERT INTO trading_feeschedule (tier, market_id, maker_fee_rate, taker_fee_rate) VALUES ('vip', NULL, 0, 0.06)",
])
def test_the_database_refuses_a_fee_rate_out_of_bounds(statement):
    MarketFactory()
    with pytest.raises(IntegrityError, match="rates_bounded"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)


def test_a_fee_change_applies_only_when_a_second_supervisor_approves(client, supervisor, other_supervisor):
    market = MarketFactory()
    buyer = ClientAccountFactory()
    fund(buyer, "USD", "10000")
    client.force_login(supervisor)

    proposed = propose(client, market, taker_fee_rate="0.0035")
    change = ParameterChange.objects.get()
    own = decide(client, change, "approve_selected")

    assert "another supervisor must approve it" in " ".join(messages_of(proposed))
    assert "Four-eyes rule" in " ".join(messages_of(own))
    assert Market.objects.get(pk=market.pk).taker_fee_rate == D("0.002")  # nothing applied yet
    assert place(buyer, market, "buy", size="1", price="100").taker_fee_rate == D("0.002")

    client.force_login(other_supervisor)
    approved = decide(client, change, "approve_selected")

    assert "Approved and applied: 1 of 1" in " ".join(messages_of(approved))
    assert Market.objects.get(pk=market.pk).taker_fee_rate == D("0.0035")
    assert place(buyer, market, "buy", size="1", price="100").taker_fee_rate == D("0.0035")  # the next order
    change.refresh_from_db()
    assert (change.status, change.proposed_by, change.decided_by) == ("approved", supervisor, other_supervisor)
    assert change.before["taker_fee_rate"] == "0.00200000" and change.values == {"taker_fee_rate": "0.0035"}
    applied = AuditLog.objects.get(action="market.change")
    assert (applied.before["taker_fee_rate"], applied.after["taker_fee_rate"]) == ("0.00200000", "0.0035")
    assert applied.actor == other_supervisor and applied.after["parameter_change"] == change.pk


def test_the_market_page_no_longer_edits_fees_directly(client, supervisor):
    market = MarketFactory()
    client.force_login(supervisor)
    url = reverse("admin:trading_market_change", args=[market.pk])

    page = client.get(url).content.decode()
    client.post(url, {"maker_fee_rate": "0.04", "taker_fee_rate": "0.04", "min_size": "1", "max_size": "2"})

    assert 'name="taker_fee_rate"' not in page and 'id="propose-market-change"' in page
    assert (Market.objects.get(pk=market.pk).taker_fee_rate, Market.objects.get(pk=market.pk).min_size) == \
        (D("0.002"), D("0.00001"))
    assert client.get(reverse("admin:trading_feeschedule_add")).status_code == 403


def test_a_tier_fee_schedule_is_created_under_four_eyes(supervisor, other_supervisor):
    market = MarketFactory()
    with pytest.raises(ParameterError, match="needs both"):
        services.parameter_change_propose(market=market, tier=Tier.VIP, values={"maker_fee_rate": "0"},
                                          reason="VIP launch", acting_user=supervisor)
    change = services.parameter_change_propose(market=None, tier=Tier.VIP,
                                               values={"maker_fee_rate": "0", "taker_fee_rate": "0.0005"},
                                               reason="VIP launch", acting_user=supervisor)
    assert not FeeSchedule.objects.exists()

    services.parameter_change_approve(change=change, acting_user=other_supervisor)

    schedule = FeeSchedule.objects.get()
    assert (schedule.tier, schedule.market, schedule.maker_fee_rate, schedule.taker_fee_rate) == \
        ("vip", None, D("0"), D("0.0005"))
    vip = ClientAccountFactory(tier=Tier.VIP)
    fund(vip, "USD", "1000")
    assert place(vip, market, "buy", size="1", price="100").taker_fee_rate == D("0.0005")


def test_market_sizes_change_under_four_eyes_and_stay_consistent(supervisor, other_supervisor):
    market = MarketFactory()  # lot 0.00001, sizes 0.00001 to 1000
    with pytest.raises(ParameterError) as not_a_lot:
        services.parameter_change_propose(market=market, values={"min_size": "0.000015"}, reason="x",
                                          acting_user=supervisor)
    with pytest.raises(ParameterError) as inverted:
        services.parameter_change_propose(market=market, values={"min_size": "0.001", "max_size": "0.0005"},
                                          reason="x", acting_user=supervisor)
    change = services.parameter_change_propose(market=market, values={"min_size": "0.001", "max_size": "50"},
                                               reason="Dust orders", acting_user=supervisor)
    services.parameter_change_approve(change=change, acting_user=other_supervisor)

    assert (not_a_lot.value.code, inverted.value.code, inverted.value.field) == \
        ("invalid_lot", "invalid_parameter", "max_size")
    assert (Market.objects.get(pk=market.pk).min_size, Market.objects.get(pk=market.pk).max_size) == \
        (D("0.001"), D("50"))


def test_operations_cannot_propose_and_nobody_decides_twice(client, operator, supervisor, other_supervisor):
    market = MarketFactory()
    client.force_login(operator)
    assert client.get(PROPOSE).status_code == 403
    change = services.parameter_change_propose(market=market, values={"maker_fee_rate": "0.0005"}, reason="x",
                                               acting_user=supervisor)
    services.parameter_change_reject(change=change, acting_user=other_supervisor, reason="Not this quarter")
    with pytest.raises(Exception, match="already rejected"):
        services.parameter_change_approve(change=change, acting_user=other_supervisor)
    assert Market.objects.get(pk=market.pk).maker_fee_rate == D("0.001")


def test_the_database_refuses_a_proposer_deciding_their_own_change(supervisor):
    change = services.parameter_change_propose(market=MarketFactory(), values={"maker_fee_rate": "0.0005"},
                                               reason="x", acting_user=supervisor)
    with pytest.raises(IntegrityError, match="parameter_change_four_eyes"), transaction.atomic():
        ParameterChange.objects.filter(pk=change.pk).update(decided_by=supervisor,
                                                            status=ParameterChangeStatus.APPROVED)
