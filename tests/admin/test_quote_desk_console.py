"""The quoting desk in the operations console: spreads under maker-checker, market pricing and inventory funding
through the services (audited), and the inventory page with its exposure table and daily P&L chart."""

from decimal import Decimal as D

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from audit.models import AuditLog
from console.roles import COMPLIANCE
from tests.admin.conftest import staff_in
from tests.factories import StaffFactory
from tests.trading.quote_desk import client_with, inventory, limits_set
from trading.models import ChangeStatus, InventoryFunding, MarketPricing, QuoteSpread, SpreadChange
from trading.services import quotes

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def propose(client, **data):
    return client.post(reverse("admin:trading_spreadchange_add"),
                       {"tier": "vip", "spread_bps": "12.5", "reason": "VIP pricing", **data}, follow=True)


def test_a_spread_is_proposed_by_one_user_and_applied_by_another(client, desk, operator, supervisor):
    client.force_login(operator)
    response = propose(client, market=desk.pk)
    change = SpreadChange.objects.get()
    assert response.status_code == 200 and change.status == ChangeStatus.PROPOSED and change.proposed_by == operator
    assert not QuoteSpread.objects.exists()
    refused = client.post(reverse("admin:trading_spreadchange_approve", args=[change.pk]), follow=True)
    assert any("permission" in m for m in messages_of(refused))  # operations cannot decide

    client.force_login(supervisor)
    page = client.get(reverse("admin:trading_spreadchange_change", args=[change.pk]))
    assert b'id="approve-spreadchange"' in page.content
    client.post(reverse("admin:trading_spreadchange_approve", args=[change.pk]), follow=True)

    change.refresh_from_db()
    assert (change.status, change.decided_by) == (ChangeStatus.APPROVED, supervisor)
    assert QuoteSpread.objects.get(tier="vip", market=desk).spread_bps == D("12.5")
    assert list(AuditLog.objects.filter(action__startswith="spread_change.").order_by("id")
                .values_list("action", "actor")) == [("spread_change.propose", operator.pk),
                                                     ("spread_change.approve", supervisor.pk)]


def test_the_proposer_cannot_decide_their_own_spread_change(client, desk, supervisor, other_supervisor):
    client.force_login(supervisor)
    propose(client)
    change = SpreadChange.objects.get()
    response = client.post(reverse("admin:trading_spreadchange_approve", args=[change.pk]), follow=True)
    assert any("Four-eyes" in m for m in messages_of(response))
    change.refresh_from_db()
    assert change.status == ChangeStatus.PROPOSED and not QuoteSpread.objects.exists()

    client.force_login(other_supervisor)
    client.post(reverse("admin:trading_spreadchange_reject", args=[change.pk]), {"reason": "too tight"})
    change.refresh_from_db()
    assert (change.status, change.decision_reason) == (ChangeStatus.REJECTED, "too tight")
    assert not QuoteSpread.objects.exists()


def test_a_bad_proposal_shows_on_the_form(client, desk, operator):
    client.force_login(operator)
    response = propose(client, spread_bps="10000")
    assert response.status_code == 200 and not SpreadChange.objects.exists()
    assert b"basis points" in response.content


def test_market_pricing_is_saved_through_the_service(client, desk, supervisor, clock):
    client.force_login(supervisor)
    response = client.post(reverse("admin:trading_marketpricing_add"),
                           {"market": desk.pk, "fallback_price": "100.00", "skew_bps": "5", "tolerance_bps": "50"},
                           follow=True)
    assert response.status_code == 200
    row = MarketPricing.objects.get()
    assert (row.fallback_price, row.fallback_set_at, row.skew_bps, row.tolerance_bps) == (
        D("100"), clock.at, D("5"), D("50"))
    clock.advance(minutes=5)
    client.post(reverse("admin:trading_marketpricing_change", args=[row.pk]),
                {"fallback_price": "100.00", "skew_bps": "7", "tolerance_bps": "50"}, follow=True)
    row.refresh_from_db()
    assert row.skew_bps == D("7") and row.fallback_set_at == clock.at.replace(minute=0)  # not re-stamped
    bad = client.post(reverse("admin:trading_marketpricing_change", args=[row.pk]),
                      {"fallback_price": "100.001", "skew_bps": "7", "tolerance_bps": "50"}, follow=True)
    assert any("tick" in m for m in messages_of(bad))
    assert AuditLog.objects.filter(action="market_pricing.set").count() == 2


def test_inventory_funding_from_the_console(client, desk, supervisor, operator):
    client.force_login(supervisor)
    response = client.post(reverse("admin:trading_inventoryfunding_add"),
                           {"asset": "BTC", "amount": "2.5", "reference": "tx-abc", "reason": "top up"}, follow=True)
    assert response.status_code == 200
    assert InventoryFunding.objects.get(reference="tx-abc").amount == D("2.5") and inventory("BTC") == D("12.5")
    beyond = client.post(reverse("admin:trading_inventoryfunding_add"),
                         {"asset": "BTC", "amount": "100", "reference": "tx-def", "reason": "too much"})
    assert b"beyond its long limit" in beyond.content and not InventoryFunding.objects.filter(reference="tx-def")
    client.force_login(operator)
    assert client.get(reverse("admin:trading_inventoryfunding_add")).status_code == 403


def test_the_inventory_page_shows_exposure_and_the_daily_spread_captured(client, desk, clock):
    alice = client_with(USD="1000")
    quote = quotes.quote_create(account=alice, market=desk, side="buy", size=D("1"), acting_user=None)
    quotes.quote_execute(quote=quote, idempotency_key="k", acting_user=None)
    limits_set("USD", max_long="50000")  # the firm now holds 100,100.76 USD: beyond the lowered limit
    client.force_login(staff_in(COMPLIANCE))

    page = client.get(reverse("admin:inventory"))

    assert page.status_code == 200
    rows = {row.asset: row for row in page.context["exposures"]}
    assert (rows["BTC"].position, rows["BTC"].max_long, rows["BTC"].utilisation) == (D("9"), D("100"), D("9.0"))
    assert not rows["USD"].within_limits
    assert b'class="num breach"' in page.content
    [day] = page.context["days"]
    assert (day.quotes, day.volume, day.spread_captured, day.fees) == (1, D("100.76"), D("0.26"), D("0.21"))
    assert page.content.count(b"<rect ") == 30 and b"<svg" in page.content
    dashboard = client.get(reverse("admin:index"))
    assert b'id="inventory-link"' in dashboard.content


def test_the_inventory_page_needs_a_view_permission(client, desk):
    client.force_login(StaffFactory())
    assert client.get(reverse("admin:inventory")).status_code == 403
