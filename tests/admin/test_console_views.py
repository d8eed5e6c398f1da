"""The operations console through Django's test client: pages render, actions go through the services (and so
the audit log), refusals show as messages or form errors, and the groups' permissions hold."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import AccountStatus, ApiKey, ClientAccount, Deposit, FundingStatus, Withdrawal
from audit.models import AuditLog
from ledger import services as ledger_services
from ledger.models import Adjustment, AdjustmentStatus, Balance, JournalEntry, ReconciliationRun
from tests.api import api_client_for
from tests.factories import (
    ClientAccountFactory,
    MarketFactory,
    MembershipFactory,
    UserFactory,
    allow_destination,
    assert_balance,
    fund,
    ledger_account_of,
)
from tests.trading.helpers import match, place, reloaded
from trading.models import MarketStatus, OrderStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def logged_in(client, user):
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def run_action(client, model_path: str, action: str, objects, **extra):
    url = reverse(f"admin:{model_path}_changelist")
    data = {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects], **extra}
    return client.post(url, data, follow=True)


@pytest.fixture
def traded_market(db):
    """A market with one fill and one resting order, two funded clients, a proposal and a withdrawal pending."""
    market = MarketFactory()
    seller, buyer = ClientAccountFactory(legal_name="Seller Ltd"), ClientAccountFactory(legal_name="Buyer Ltd")
    fund(seller, "BTC", "2")
    fund(buyer, "USD", "100000")
    place(seller, market, "sell", size="1", price="30000")
    place(buyer, market, "buy", size="0.5", price="30000")
    resting = place(buyer, market, "buy", size="0.1", price="29000")
    match(market)
    return market, seller, buyer, resting


# --- every page renders -----------------------------------------------------------------------------------------


def test_every_registered_page_renders(client, superuser, traded_market, operator):
    market, seller, buyer, resting = traded_market
    ledger_services.adjustment_propose(account=ledger_account_of(seller), asset="BTC", amount=Decimal("0.1"),
                                       reason="test", acting_user=operator)
    ReconciliationRun.objects.create(ok=True, finished_at=timezone.now())
    logged_in(client, superuser)

    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"), {"q": "1"})
        assert changelist.status_code == 200, opts.label
        obj = model_admin.get_queryset(changelist.wsgi_request).first()
        if obj is not None:
            change = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
            assert change.status_code == 200, opts.label
        if model_admin.has_add_permission(changelist.wsgi_request):
            assert client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 200

    assert client.get(reverse("admin:trial_balance")).status_code == 200
    assert client.get(reverse("admin:account_statement", args=[ledger_account_of(buyer).pk])).status_code == 200


def test_dashboard_shows_open_orders_volume_and_what_waits(client, superuser, traded_market, operator):
    market, seller, buyer, resting = traded_market
    ledger_services.adjustment_propose(account=ledger_account_of(seller), asset="BTC", amount=Decimal("0.1"),
                                       reason="Missing credit", acting_user=operator)
    run = ReconciliationRun.objects.create(ok=True, finished_at=timezone.now())

    page = logged_in(client, superuser).get(reverse("admin:index"))

    assert page.status_code == 200
    activity = {row.market.symbol: row for row in page.context["market_activity"]}
    # The seller's remaining 0.5 and the resting bid are open; one fill of 0.5 BTC for 15,000 USD today.
    assert activity["BTC-USD"].open_orders == 2
    assert (activity["BTC-USD"].fills_today, activity["BTC-USD"].base_volume) == (1, Decimal("0.5"))
    assert activity["BTC-USD"].quote_volume == Decimal("15000")
    assert [a.reason for a in page.context["awaiting_adjustments"]] == ["Missing credit"]
    assert page.context["reconciliation"] == run
    html = page.content.decode()
    assert 'id="run-reconciliation"' in html and "no breaks" in html


def test_run_reconciliation_from_the_dashboard(client, supervisor, compliance_officer,
                                               django_capture_on_commit_callbacks):
    url = reverse("admin-reconciliation-run")
    refused = logged_in(client, compliance_officer).post(url, {"next": "/admin/"})
    assert refused.status_code == 403
    assert 'id="run-reconciliation"' not in client.get(reverse("admin:index")).content.decode()

    with django_capture_on_commit_callbacks(execute=True):  # the button queues the run once the request commits
        logged_in(client, supervisor).post(url, {"next": reverse("admin:index")})
    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    run = ReconciliationRun.objects.get()
    assert run.ok is True and run.triggered_by == supervisor
    assert f"#{run.pk}" in response.content.decode()


# --- ledger: read-only books, trial balance, statement ---------------------------------------------------------


def test_ledger_entries_are_read_only_even_for_a_superuser(client, superuser):
    account = ClientAccountFactory()
    fund(account, "USD", "250")
    entry = JournalEntry.objects.get()
    logged_in(client, superuser)

    page = client.get(reverse("admin:ledger_journalentry_change", args=[entry.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "250" in html and 'name="_save"' not in html and 'name="postings-0-amount"' not in html
    assert client.get(reverse("admin:ledger_journalentry_add")).status_code == 403
    assert client.post(reverse("admin:ledger_journalentry_change", args=[entry.pk]), {"memo": "x"}).status_code == 403
    assert client.post(reverse("admin:ledger_journalentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert JournalEntry.objects.get().memo == entry.memo


def test_trial_balance_per_asset_balances(client, compliance_officer):
    fund(ClientAccountFactory(), "USD", "250.25")
    fund(ClientAccountFactory(), "USD", "100")

    page = logged_in(client, compliance_officer).get(reverse("admin:trial_balance"), {"asset": "USD"})

    assert page.status_code == 200
    [usd] = page.context["trial_balances"]
    assert usd.balanced and usd.total_debit == usd.total_credit == Decimal("350.25")
    assert {line.account.code: line.debit for line in usd.lines}["firm:custody"] == Decimal("350.25")


def test_trial_balance_rejects_a_bad_date_without_failing(client, compliance_officer):
    page = logged_in(client, compliance_officer).get(reverse("admin:trial_balance"), {"at": "yesterday-ish"})
    assert page.status_code == 200 and page.context["trial_balances"] == []
    assert page.context["form"].errors


def test_statement_shows_opening_postings_and_closing(client, compliance_officer):
    account = ClientAccountFactory()
    fund(account, "USD", "100")
    fund(account, "USD", "20.5")
    today = timezone.now().date()
    url = reverse("admin:account_statement", args=[ledger_account_of(account).pk])

    page = logged_in(client, compliance_officer).get(url, {"asset": "USD", "start": today, "end": today})

    statement = page.context["statement"]
    assert (statement.opening, statement.closing) == (Decimal(0), Decimal("120.5"))
    assert [line.amount for line in statement.lines] == [Decimal("100"), Decimal("20.5")]
    tomorrow = today + timedelta(days=1)
    later = client.get(url, {"asset": "USD", "start": tomorrow, "end": tomorrow}).context["statement"]
    assert (later.opening, later.closing, later.lines) == (Decimal("120.5"), Decimal("120.5"), [])
    backwards = client.get(url, {"asset": "USD", "start": tomorrow, "end": today})
    assert backwards.status_code == 200 and backwards.context["statement"] is None
    last_day = client.get(url, {"asset": "USD", "start": today, "end": "9999-12-31"})
    assert last_day.status_code == 200 and last_day.context["statement"] is None
    assert "end" in last_day.context["form"].errors


# --- adjustments: maker-checker in the admin --------------------------------------------------------------------


def propose_in_admin(client, account, amount="42.00", asset="USD"):
    return client.post(
        reverse("admin:ledger_adjustment_add"),
        {"account": ledger_account_of(account).pk, "asset": asset, "amount": amount, "reason": "Fee refund"},
        follow=True,
    )


def test_maker_checker_in_the_admin(client, operator, supervisor, other_supervisor):
    account = ClientAccountFactory()
    response = propose_in_admin(logged_in(client, operator), account)
    adjustment = Adjustment.objects.get()
    assert response.status_code == 200 and adjustment.status == AdjustmentStatus.PROPOSED
    approve_url = reverse("admin:ledger_adjustment_approve", args=[adjustment.pk])

    refused = client.post(approve_url, follow=True)  # operations may propose but not approve
    assert any("permission" in m for m in messages_of(refused))

    approved = logged_in(client, supervisor).post(approve_url, follow=True)

    assert approved.status_code == 200
    assert any("approved and posted" in m for m in messages_of(approved))
    adjustment.refresh_from_db()
    assert adjustment.status == AdjustmentStatus.APPROVED and adjustment.decided_by == supervisor
    assert_balance(account, "USD", "42.00")
    assert AuditLog.objects.filter(action__startswith="adjustment.").count() == 2


def test_proposer_sees_an_error_when_approving_their_own(client, supervisor):
    account = ClientAccountFactory()
    propose_in_admin(logged_in(client, supervisor), account)
    adjustment = Adjustment.objects.get()

    page = client.get(reverse("admin:ledger_adjustment_change", args=[adjustment.pk]))
    assert "requires another user to decide it" in page.content.decode()
    response = client.post(reverse("admin:ledger_adjustment_approve", args=[adjustment.pk]), follow=True)

    assert response.status_code == 200
    assert any("Four-eyes rule" in m for m in messages_of(response))
    assert Adjustment.objects.get().status == AdjustmentStatus.PROPOSED
    assert not JournalEntry.objects.exists()

    bulk = run_action(client, "ledger_adjustment", "approve_selected", [adjustment])
    assert any("Four-eyes rule" in m for m in messages_of(bulk))
    assert Adjustment.objects.get().status == AdjustmentStatus.PROPOSED


def test_rejecting_in_the_admin_needs_a_reason(client, operator, supervisor):
    account = ClientAccountFactory()
    propose_in_admin(logged_in(client, operator), account)
    adjustment = Adjustment.objects.get()
    url = reverse("admin:ledger_adjustment_reject", args=[adjustment.pk])
    logged_in(client, supervisor)

    no_reason = client.post(url, {"reason": ""}, follow=True)
    assert any("Say why" in m for m in messages_of(no_reason))
    client.post(url, {"reason": "Duplicate of #1"}, follow=True)

    assert Adjustment.objects.get().status == AdjustmentStatus.REJECTED


def test_an_invalid_proposal_is_a_form_error(client, operator):
    response = propose_in_admin(logged_in(client, operator), ClientAccountFactory(), amount="0.001")
    assert response.status_code == 200
    assert "more than 2 decimal places" in str(response.context["form"].errors["amount"])
    assert not Adjustment.objects.exists()


def test_compliance_can_view_but_not_propose_or_approve(client, compliance_officer, operator):
    account = ClientAccountFactory()
    adjustment = ledger_services.adjustment_propose(
        account=ledger_account_of(account), asset="USD", amount=Decimal("5"), reason="x", acting_user=operator
    )
    logged_in(client, compliance_officer)

    assert client.get(reverse("admin:ledger_adjustment_changelist")).status_code == 200
    page = client.get(reverse("admin:ledger_adjustment_change", args=[adjustment.pk]))
    assert page.status_code == 200 and 'id="approve-adjustment"' not in page.content.decode()
    assert client.get(reverse("admin:ledger_adjustment_add")).status_code == 403
    response = client.post(reverse("admin:ledger_adjustment_approve", args=[adjustment.pk]), follow=True)
    assert any("permission" in m for m in messages_of(response))
    assert Adjustment.objects.get().status == AdjustmentStatus.PROPOSED


# --- client accounts --------------------------------------------------------------------------------------------


def test_account_page_shows_balances_users_and_keys(client, operator):
    market = MarketFactory()
    api = api_client_for()
    fund(api.account, "USD", "1000")
    place(api.account, market, "buy", size="0.01", price="20000")  # holds 200 USD plus the fee

    page = logged_in(client, operator).get(reverse("admin:accounts_clientaccount_change", args=[api.account.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert "<td>USD</td><td class=\"num\">1000</td><td class=\"num\">200.4</td><td class=\"num\">799.6</td>" in html
    assert api.user.username in html and api.api_key.prefix in html


def test_freeze_asks_why_goes_through_the_service_and_is_audited(client, operator):
    account = ClientAccountFactory()
    logged_in(client, operator)

    confirm = run_action(client, "accounts_clientaccount", "freeze", [account])
    assert confirm.status_code == 200 and "Reason" in confirm.content.decode()
    assert ClientAccount.objects.get().status == AccountStatus.ACTIVE

    done = run_action(client, "accounts_clientaccount", "freeze", [account], apply="Confirm", reason="AML alert 7")

    assert any("Frozen: 1 of 1" in m for m in messages_of(done))
    assert ClientAccount.objects.get().status == AccountStatus.FROZEN
    audit = AuditLog.objects.get(action="account.freeze")
    assert audit.actor == operator and audit.after["reason"] == "AML alert 7"


def test_close_is_refused_while_money_remains(client, operator):
    account = ClientAccountFactory()
    fund(account, "BTC", "0.1")

    response = run_action(logged_in(client, operator), "accounts_clientaccount", "close", [account],
                          apply="Confirm", reason="Client left")

    assert response.status_code == 200
    assert any("cannot be closed" in m for m in messages_of(response))
    assert ClientAccount.objects.get().status == AccountStatus.ACTIVE


def test_revoke_keys_from_the_account_and_the_key_list(client, operator):
    first, second = api_client_for(), api_client_for()
    logged_in(client, operator)

    run_action(client, "accounts_clientaccount", "revoke_all_keys", [first.account])
    run_action(client, "accounts_apikey", "revoke", [second.api_key])

    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 2
    assert AuditLog.objects.filter(action="api_key.revoke", actor=operator).count() == 2


def test_compliance_cannot_change_an_account(client, compliance_officer):
    account = ClientAccountFactory(tier="standard")
    logged_in(client, compliance_officer)
    url = reverse("admin:accounts_clientaccount_change", args=[account.pk])

    page = client.get(url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(url, {"legal_name": "Renamed", "tier": "vip"}).status_code == 403
    run_action(client, "accounts_clientaccount", "freeze", [account], apply="Confirm", reason="x")

    assert ClientAccount.objects.get().status == AccountStatus.ACTIVE
    changelist = client.get(reverse("admin:accounts_clientaccount_changelist"))
    actions = [name for name, _ in changelist.context["action_form"].fields["action"].choices if name]
    assert changelist.status_code == 200 and actions == ["approve_kyc"]  # KYC approval, a second person's part


def test_operations_edits_an_account_through_the_service(client, operator):
    account = ClientAccountFactory(tier="standard")
    url = reverse("admin:accounts_clientaccount_change", args=[account.pk])
    data = {"legal_name": account.legal_name, "kyc_status": "approved", "tier": "vip", "can_trade": "on",
            "can_withdraw": "on"}
    for prefix in ("memberships", "api_keys", "asset_limits"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})

    response = logged_in(client, operator).post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert ClientAccount.objects.get().tier == "vip"
    audit = AuditLog.objects.get(action="account.update")
    assert (audit.actor, audit.before["tier"], audit.after["tier"]) == (operator, "standard", "vip")


def test_open_an_account_through_the_service_form(client, operator):
    response = logged_in(client, operator).post(
        reverse("admin:accounts_clientaccount_add"), {"legal_name": "New Client AG", "kind": "institution",
                                                      "tier": "standard"}
    )
    account = ClientAccount.objects.get(legal_name="New Client AG")
    assert response.status_code == 302 and account.status == AccountStatus.PENDING
    assert ledger_account_of(account) is not None
    assert AuditLog.objects.filter(action="account.create", actor=operator).exists()


# --- orders and markets -----------------------------------------------------------------------------------------


def test_cancel_selected_orders_releases_holds(client, operator, traded_market):
    market, seller, buyer, resting = traded_market
    held_before = Balance.objects.get(account=ledger_account_of(buyer), asset_id="USD").held
    assert held_before > 0
    filled = buyer.orders.exclude(pk=resting.pk).get()

    response = run_action(logged_in(client, operator), "trading_order", "cancel_orders", [resting, filled])

    assert reloaded(resting).status == OrderStatus.CANCELLED
    assert reloaded(filled).status == OrderStatus.FILLED
    assert_balance(buyer, "USD", str(Decimal("100000") - Decimal("15000") - reloaded(filled).fees_paid), held="0")
    assert any("cannot be cancelled" in m for m in messages_of(response))
    assert AuditLog.objects.get(action="order.cancel").actor == operator


def test_order_search_and_filters(client, compliance_officer, traded_market):
    market, seller, buyer, resting = traded_market
    logged_in(client, compliance_officer)
    url = reverse("admin:trading_order_changelist")

    by_client_id = client.get(url, {"q": resting.client_order_id})
    by_account = client.get(url, {"q": "Seller"})
    open_ones = client.get(url, {"status__exact": "open"})

    assert [o.pk for o in by_client_id.context["cl"].result_list] == [resting.pk]
    assert {o.account_id for o in by_account.context["cl"].result_list} == {seller.pk}
    assert {o.status for o in open_ones.context["cl"].result_list} == {"open"}


def test_supervisor_halts_cancel_onlys_and_reopens_a_market(client, supervisor, operator):
    market = MarketFactory()

    refused = run_action(logged_in(client, operator), "trading_market", "halt", [market])
    assert refused.status_code == 200 and reloaded(market).status == MarketStatus.OPEN

    logged_in(client, supervisor)
    for action, status in (("halt", "halted"), ("cancel_only", "cancel_only"), ("reopen", "open")):
        run_action(client, "trading_market", action, [market])
        assert reloaded(market).status == status
    assert AuditLog.objects.filter(action="market.status_set", actor=supervisor).count() == 3


# --- withdrawals: four eyes above the threshold ------------------------------------------------------------------


def test_large_withdrawal_needs_two_different_approvers(client, settings, supervisor, other_supervisor):
    settings.WITHDRAWAL_FOUR_EYES_THRESHOLDS = {"USD": Decimal("10000")}
    membership = MembershipFactory(role="admin")
    fund(membership.account, "USD", "20000")
    allow_destination(membership.account, "USD", "IBAN X")
    withdrawal = accounts_services.withdrawal_request(
        account=membership.account, asset="USD", amount="15000", idempotency_key="w1", bank_reference="IBAN X",
        acting_user=membership.user,
    )
    assert withdrawal.requires_four_eyes

    logged_in(client, supervisor)
    run_action(client, "accounts_withdrawal", "approve", [withdrawal])
    again = run_action(client, "accounts_withdrawal", "approve", [withdrawal])
    assert any("second approval by a different user" in m for m in messages_of(again))
    assert Withdrawal.objects.get().status == FundingStatus.REQUESTED

    logged_in(client, other_supervisor)
    run_action(client, "accounts_withdrawal", "approve", [withdrawal])

    approved = Withdrawal.objects.get()
    assert approved.status == FundingStatus.APPROVED
    assert (approved.approved_by, approved.second_approved_by) == (supervisor, other_supervisor)


# --- audit log --------------------------------------------------------------------------------------------------


def test_audit_log_is_read_only(client, superuser, operator):
    account = ClientAccountFactory()
    accounts_services.account_freeze(account=account, acting_user=operator, reason="x")
    row = AuditLog.objects.get()
    logged_in(client, superuser)

    page = client.get(reverse("admin:audit_auditlog_change", args=[row.pk]))
    assert page.status_code == 200 and "account.freeze" in page.content.decode()
    assert client.get(reverse("admin:audit_auditlog_add")).status_code == 403
    assert client.post(reverse("admin:audit_auditlog_change", args=[row.pk]), {"action": "x"}).status_code == 403
    assert client.post(reverse("admin:audit_auditlog_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    assert AuditLog.objects.get().action == "account.freeze"


# --- funding and access ----------------------------------------------------------------------------------------


def test_one_operations_user_alone_cannot_credit_a_client(client, operator, supervisor):
    """Issue 18 #3: one operations user created, approved and completed a 1,000,000 USD deposit. Now the
    requester cannot approve it, and the approver cannot complete it."""
    account = ClientAccountFactory()
    logged_in(client, operator)

    response = client.post(reverse("admin:accounts_deposit_add"), {"account": account.pk, "asset": "USD",
                                                                   "amount": "1000000.00", "bank_reference": "WIRE-1"})
    deposit = Deposit.objects.get()
    assert response.status_code == 302 and deposit.requested_by == operator
    completed_early = run_action(client, "accounts_deposit", "complete", [deposit])
    assert any("Cannot complete" in m for m in messages_of(completed_early))
    self_approved = run_action(client, "accounts_deposit", "approve", [deposit])
    assert any("requester of a deposit cannot approve it" in m for m in messages_of(self_approved))
    assert reloaded(deposit).status == FundingStatus.REQUESTED

    logged_in(client, supervisor)
    run_action(client, "accounts_deposit", "approve", [deposit])
    completed_by_approver = run_action(client, "accounts_deposit", "complete", [deposit])
    assert any("someone other than its approver" in m for m in messages_of(completed_by_approver))
    assert_balance(account, "USD", "0")

    logged_in(client, operator)
    run_action(client, "accounts_deposit", "complete", [deposit])

    deposit = reloaded(deposit)
    assert (deposit.status, deposit.requested_by, deposit.approved_by, deposit.completed_by) == (
        FundingStatus.COMPLETED, operator, supervisor, operator)
    assert_balance(account, "USD", "1000000.00")
    assert list(AuditLog.objects.filter(object_type="accounts.deposit").order_by("id")
                .values_list("action", "actor__username")) == [
        ("deposit.request", "operator"), ("deposit.approve", "supervisor"), ("deposit.complete", "operator")]


def test_a_deposit_recorded_in_the_console_needs_its_reference(client, operator):
    account = ClientAccountFactory()
    logged_in(client, operator)
    response = client.post(reverse("admin:accounts_deposit_add"),
                           {"account": account.pk, "asset": "USD", "amount": "500.00"})
    assert response.status_code == 200 and "bank reference" in response.content.decode()
    assert not Deposit.objects.exists()


def test_console_pages_need_staff_and_the_view_permission(client):
    ledger_account = ledger_account_of(ClientAccountFactory())
    pages = [reverse("admin:index"), reverse("admin:trial_balance"),
             reverse("admin:account_statement", args=[ledger_account.pk])]
    for url in pages:
        assert client.get(url).status_code == 302  # to the login page

    logged_in(client, UserFactory(is_staff=True))  # staff, but in no group
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:trial_balance")).status_code == 403
    assert client.get(reverse("admin:account_statement", args=[ledger_account.pk])).status_code == 403


def test_a_refused_edit_is_a_message_not_a_server_error(client, operator):
    account = ClientAccountFactory()
    limit = accounts_services.asset_limit_set(account=account, asset="BTC", acting_user=operator,
                                              max_order_size=Decimal("2"))
    url = reverse("admin:accounts_assetlimit_change", args=[limit.pk])

    response = logged_in(client, operator).post(url, {"max_order_size": "-1", "daily_withdrawal_limit": ""},
                                                follow=True)

    assert response.status_code == 200
    assert any(m.startswith("Not saved:") for m in messages_of(response))
    limit.refresh_from_db()
    assert limit.max_order_size == Decimal("2")
